"""Find the official pretrained files in an official ``GPT_SoVITS/pretrained_models/`` folder.

File names per version are those of the official release (the hub repository ``lj1995/GPT-SoVITS``
has the same layout). v3/v4 also need their vocoder: v3 the BigVGAN hub folder (``config.json`` +
``bigvgan_generator.pt``), v4 ``gsv-v4-pretrained/vocoder.pth``; their SoVITS file is also the base
of v3/v4 LoRA fine-tunes. ``TTS`` serves v1/v2/v2Pro/v2ProPlus (``LOADABLE_VERSIONS``); a v3/v4 model
and its vocoder load through ``checkpoints.v3_files.resolve_v3``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastsovits.errors import InvalidParameter, MissingResource

HUBERT = "chinese-hubert-base"
BERT = "chinese-roberta-wwm-ext-large"
SV = "sv/pretrained_eres2netv2w24s4ep4.ckpt"
# The files of the two Hugging Face folders (what the official release ships in them).
HUBERT_FILES = ("config.json", "preprocessor_config.json", "pytorch_model.bin")
BERT_FILES = ("config.json", "tokenizer.json", "pytorch_model.bin")
LOADABLE_VERSIONS = ("v1", "v2", "v2Pro", "v2ProPlus")

# version -> (GPT file, SoVITS file, needs the speaker-verification model)
OFFICIAL_FILES: dict[str, tuple[str, str, bool]] = {
    "v1": ("s1bert25hz-2kh-longer-epoch=68e-step=50232.ckpt", "s2G488k.pth", False),
    "v2": (
        "gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt",
        "gsv-v2final-pretrained/s2G2333k.pth",
        False,
    ),
    "v2Pro": ("s1v3.ckpt", "v2Pro/s2Gv2Pro.pth", True),
    "v2ProPlus": ("s1v3.ckpt", "v2Pro/s2Gv2ProPlus.pth", True),
    "v3": ("s1v3.ckpt", "s2Gv3.pth", False),
    "v4": ("s1v3.ckpt", "gsv-v4-pretrained/s2Gv4.pth", False),
}

BIGVGAN_DIR = "models--nvidia--bigvgan_v2_24khz_100band_256x"
BIGVGAN_FILES = ("config.json", "bigvgan_generator.pt")
# version -> vocoder file or folder (v1-v2ProPlus carry theirs inside the SoVITS file)
VOCODER_FILES: dict[str, str] = {"v3": BIGVGAN_DIR, "v4": "gsv-v4-pretrained/vocoder.pth"}


@dataclass(frozen=True)
class PretrainedSet:
    """The files one model version needs (``sv`` is None for versions without a speaker model)."""

    version: str
    gpt: Path
    sovits: Path
    hubert_dir: Path
    bert_dir: Path
    sv: Path | None
    vocoder: Path | None = None  # v3: the BigVGAN folder, v4: vocoder.pth


def discover(folder: str | Path, version: str = "v2ProPlus") -> PretrainedSet:
    """The official files of ``version`` inside ``folder``; ``MissingResource`` lists what is missing."""
    if version not in OFFICIAL_FILES:
        raise InvalidParameter(f"unknown model version {version!r}; expected one of {list(OFFICIAL_FILES)}")
    root = Path(folder)
    if not root.is_dir():
        raise MissingResource(f"pretrained models folder {root} does not exist")
    gpt_name, sovits_name, needs_sv = OFFICIAL_FILES[version]
    found = PretrainedSet(
        version=version,
        gpt=root / gpt_name,
        sovits=root / sovits_name,
        hubert_dir=root / HUBERT,
        bert_dir=root / BERT,
        sv=root / SV if needs_sv else None,
        vocoder=root / VOCODER_FILES[version] if version in VOCODER_FILES else None,
    )
    missing = [str(p) for p in (found.gpt, found.sovits, found.sv) if p is not None and not p.is_file()]
    if version == "v3" and found.vocoder is not None:
        missing += [str(found.vocoder / f) for f in BIGVGAN_FILES if not (found.vocoder / f).is_file()]
    elif found.vocoder is not None and not found.vocoder.is_file():
        missing.append(str(found.vocoder))
    missing += [str(p) for p in (found.hubert_dir, found.bert_dir) if not (p / "config.json").is_file()]
    if missing:
        raise MissingResource(f"{version} files missing in {root}: " + ", ".join(missing))
    return found


def available_versions(folder: str | Path) -> list[str]:
    """Versions whose complete file set is present in ``folder``."""
    out = []
    for version in OFFICIAL_FILES:
        try:
            discover(folder, version)
        except MissingResource:
            continue
        out.append(version)
    return out
