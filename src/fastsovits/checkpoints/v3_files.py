"""Which SoVITS file is which, and one entry point that loads a v3/v4 model from any of its forms.

* :func:`inspect_sovits` reads an official SoVITS ``.pth`` once and says what it is: the official
  detection, whether it holds v3/v4 (``cfm.*``) weights, LoRA and its rank, the version its config
  records. ``fastsovits detect`` and ``fastsovits info`` print it.
* :func:`v3_version_of` decides whether a SoVITS file goes to the v3/v4 loader, and which version it is.
* :func:`resolve_v3` loads a v3/v4 SoVITS model and its vocoder from a converted folder, an official
  ``pretrained_models`` folder, or official files (a LoRA file over its base), without any engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fastsovits.errors import CheckpointError, InvalidParameter, MissingResource
from fastsovits.models.sovits_v3 import V3_VERSIONS, SovitsV3Config, SynthesizerV3

if TYPE_CHECKING:
    from fastsovits.checkpoints.common import TorchFile

LORA_TAGS = ("03", "04")


@dataclass(frozen=True)
class SovitsFileInfo:
    """What an official SoVITS ``.pth`` is."""

    symbol_version: str  # "v1" / "v2"
    model_version: str | None  # None: v3/v4 weights the official detection cannot tell apart (give the version)
    is_lora: bool
    is_v3: bool  # v3/v4 weights (a CFM); otherwise v1/v2/v2Pro/v2ProPlus
    lora_rank: int | None
    official_detection: str  # what the official detection (hash, header, size, rows) calls it
    recorded_version: str | None  # what the file's own config says (the official loader ignores it)
    info: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol_version": self.symbol_version,
            "model_version": self.model_version,
            "lora": self.is_lora,
            "lora_rank": self.lora_rank,
            "family": "v3/v4" if self.is_v3 else "v1-v2ProPlus",
            "official_detection": self.official_detection,
            "recorded_version": self.recorded_version,
        }


def inspect_sovits(path: str | Path, loaded: TorchFile | None = None) -> SovitsFileInfo:
    """Read ``path`` (restricted unpickler; ``loaded``: already read) and describe it; ``CheckpointError``
    if it is no SoVITS file."""
    from fastsovits.checkpoints.common import HPARAMS_GLOBAL, HParamsStandIn, read_torch_file
    from fastsovits.checkpoints.sovits import _describe_kind, _refine, detect_sovits_version_fast
    from fastsovits.checkpoints.sovits_v3 import certain_version, recorded_version

    path = Path(path)
    fast = detect_sovits_version_fast(path)
    loaded = loaded or read_torch_file(path, extra={HPARAMS_GLOBAL: HParamsStandIn})
    obj = loaded.obj
    weight = obj.get("weight") if isinstance(obj, Mapping) else None
    is_v3 = isinstance(weight, Mapping) and any(str(k).startswith("cfm.") for k in weight)
    if not is_v3:
        problem = _describe_kind(obj)
        if problem is not None:
            raise CheckpointError(f"{path.name!r} is not an official SoVITS (s2) file: {problem}")
    elif not isinstance(obj.get("config"), (HParamsStandIn, Mapping)):
        raise CheckpointError(f"{path.name!r}: its 'config' is not the official utils.HParams object")
    assert isinstance(weight, Mapping)
    symbols, official, is_lora = _refine(fast, weight)
    rank = obj.get("lora_rank")
    is_lora = is_lora or loaded.header_tag in LORA_TAGS or "lora_rank" in obj
    model_version: str | None = official
    if is_v3:
        model_version = certain_version(path) if official in V3_VERSIONS else None
        if model_version is None and official in V3_VERSIONS:  # the size rule: large PK files are v3
            model_version = official
    info = obj.get("info")
    return SovitsFileInfo(
        symbol_version=symbols,
        model_version=model_version,
        is_lora=is_lora,
        is_v3=is_v3,
        lora_rank=rank if isinstance(rank, int) and not isinstance(rank, bool) else None,
        official_detection=official,
        recorded_version=recorded_version(obj),
        info=str(info) if info is not None else None,
    )


def v3_version_of(sovits: str | Path, version: str | None = None) -> str | None:
    """The v3/v4 version of ``sovits``, or None for a v1-v2ProPlus file (which goes to ``load_sovits``).

    A given ``version`` decides the route (v3/v4 or not; the loader checks it against the file). A small
    ``PK`` file with v3/v4 weights, which the official detection calls v1/v2, needs it: ``CheckpointError``
    (naming ``sovits_version=`` and what the file's config records) otherwise.
    """
    from fastsovits.checkpoints.sovits import HEADER_VERSIONS, detect_sovits_version_fast

    if version is not None:
        return version if version in V3_VERSIONS else None
    _, detected, _ = detect_sovits_version_fast(sovits)
    if detected in V3_VERSIONS:
        return detected
    with open(sovits, "rb") as f:
        if f.read(2) in HEADER_VERSIONS:  # 00/01/05/06: a v1-v2ProPlus tag
            return None
    found = inspect_sovits(sovits)  # a small PK file: read it to see whether it holds a CFM
    if not found.is_v3:
        return None
    hint = f" (its config records {found.recorded_version!r})" if found.recorded_version else ""
    raise CheckpointError(
        f"{Path(sovits).name!r} holds SoVITS v3/v4 weights, but the official detection cannot tell which "
        f"(it calls the file {found.official_detection}){hint}; pass sovits_version='v3' or 'v4'"
    )


@dataclass
class V3Model:
    """A loaded v3/v4 SoVITS model with its vocoder (what :func:`resolve_v3` returns)."""

    model: SynthesizerV3
    config: SovitsV3Config
    vocoder: nn.Module  # BigVGAN (v3) or HifiGan (v4)
    version: str  # "v3" / "v4"
    is_lora: bool  # the SoVITS weights are a LoRA fine-tune merged over its base
    source: str  # "converted", "pretrained" (official folder) or "files"
    gpt: Path | None = None  # the official GPT file of a pretrained_models folder (converted: gpt.safetensors)
    hubert_dir: Path | None = None  # from the pretrained folder or the converted config.json
    bert_dir: Path | None = None


def _need(value: str | Path | None, name: str) -> Path | None:
    if value is None:
        return None
    p = Path(value)
    if not p.exists():
        raise MissingResource(f"{name}={p.name}: not found")
    return p


def _check_version(version: str | None) -> None:
    if version is not None and version not in V3_VERSIONS:
        raise InvalidParameter(f"version must be one of {V3_VERSIONS} for a v3/v4 model, got {version!r}")


def resolve_v3(
    path: str | Path | None = None,
    *,
    sovits: str | Path | None = None,
    base: str | Path | None = None,
    vocoder: str | Path | None = None,
    version: str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> V3Model:
    """Load a v3/v4 SoVITS model and its vocoder (required) from one of:

    * ``path`` = a converted folder (``sovits_v3.json``, written by ``fastsovits convert``); ``vocoder=``
      replaces or supplies its vocoder;
    * ``path`` = an official ``pretrained_models`` folder: its v3/v4 model (``version``, else v4 when
      complete, else v3) with its vocoder; with ``sovits=`` a fine-tune (e.g. a LoRA) whose base and
      vocoder default to the folder's files of that version;
    * ``sovits=`` an official ``.pth`` (plain, or LoRA with ``base=``) and ``vocoder=``.

    ``version`` is needed only for files the official detection cannot tell (small ``PK`` files) and must
    agree with a converted folder. Errors: ``MissingResource`` (missing vocoder, base or file),
    ``CheckpointError`` (wrong kind, wrong version, corrupt), ``InvalidParameter`` (contradicting arguments).
    """
    from fastsovits.checkpoints.sovits_v3 import load_sovits_v3
    from fastsovits.checkpoints.vocoders import load_vocoder

    _check_version(version)
    root = _need(path, "path")
    sovits_p, base_p, vocoder_p = _need(sovits, "sovits"), _need(base, "base"), _need(vocoder, "vocoder")
    if root is not None and root.is_file():
        if sovits_p is not None:
            raise InvalidParameter("give the SoVITS file once: as path or as sovits=")
        root, sovits_p = None, root
    if root is not None and (root / "sovits_v3.json").is_file():
        if sovits_p is not None or base_p is not None:
            raise InvalidParameter(
                "a converted folder holds its SoVITS model (a LoRA already merged): drop sovits=/base="
            )
        return _from_converted(root, vocoder_p, version, device, dtype)
    gpt = hubert = bert = None
    source = "files"
    if root is not None:
        from fastsovits.checkpoints.convert import CONFIG_FILE

        if (root / CONFIG_FILE).is_file():
            raise CheckpointError(f"converted folder {root.name!r} holds no v3/v4 SoVITS model (no sovits_v3.json)")
        if sovits_p is not None:  # a fine-tune: the folder's files of its version
            version = v3_version_of(sovits_p, version) or version
        found = _pretrained(root, version)
        version = found.version
        gpt, hubert, bert = found.gpt, found.hubert_dir, found.bert_dir
        vocoder_p = vocoder_p or found.vocoder
        if sovits_p is None:
            sovits_p = found.sovits
        elif base_p is None and is_lora_file(sovits_p):
            base_p = found.sovits  # the official base of a fine-tune of this version
        source = "pretrained"
    if sovits_p is None:
        raise MissingResource("resolve_v3 needs a model folder (path) or a SoVITS file (sovits=)")
    check_base_use(sovits_p, base_p)
    file_version = v3_version_of(sovits_p, version)
    if file_version is None:
        raise CheckpointError(f"{sovits_p.name!r} is not a SoVITS v3/v4 file (version {version or 'detected'})")
    if vocoder_p is None:
        raise MissingResource(
            f"a SoVITS {file_version} model needs its vocoder: pass vocoder=... "
            f"({'the BigVGAN folder' if file_version == 'v3' else 'gsv-v4-pretrained/vocoder.pth'})"
        )
    voc = load_vocoder(vocoder_p, file_version, device=device, dtype=dtype)  # cheap checks before the big file
    model, config, info = load_sovits_v3(sovits_p, file_version, base=base_p, device=device, dtype=dtype)
    return V3Model(model, config, voc, config.version, info.is_lora, source, gpt, hubert, bert)


def is_lora_file(path: str | Path) -> bool:
    """Whether ``path`` starts with an official LoRA tag (``03`` v3, ``04`` v4)."""
    with open(path, "rb") as f:
        return f.read(2).decode("latin-1") in LORA_TAGS


def check_base_use(sovits: Path, base: Path | None) -> None:
    """A base is for LoRA files only: refuse one given with a plain model (it would be ignored)."""
    if base is not None and not is_lora_file(sovits):
        raise InvalidParameter(f"base= is only for LoRA files; {sovits.name!r} is a plain (complete) model")


def _pretrained(root: Path, version: str | None) -> Any:
    from fastsovits.checkpoints.discovery import available_versions, discover

    if version is None:
        complete = [v for v in available_versions(root) if v in V3_VERSIONS]
        version = complete[-1] if complete else "v4"  # discover lists what is missing
    return discover(root, version)


def _from_converted(
    root: Path, vocoder: Path | None, version: str | None, device: torch.device | str, dtype: torch.dtype
) -> V3Model:
    from fastsovits.checkpoints.convert import CONFIG_FILE, read_config
    from fastsovits.checkpoints.convert_v3 import load_converted_v3
    from fastsovits.checkpoints.vocoders import load_vocoder

    loaded = load_converted_v3(root, device=device, dtype=dtype)
    found = loaded.config.version
    if version is not None and version != found:
        raise CheckpointError(f"converted folder {root.name!r} holds a SoVITS {found} model, not {version}")
    voc = load_vocoder(vocoder, found, device=device, dtype=dtype) if vocoder is not None else loaded.vocoder
    if voc is None:
        raise MissingResource(
            f"converted folder {root.name!r} has no vocoder: convert it again with one, or pass vocoder=..."
        )
    paths: dict[str, str] = read_config(root).get("paths", {}) if (root / CONFIG_FILE).is_file() else {}
    hubert, bert = paths.get("hubert_dir"), paths.get("bert_dir")
    return V3Model(
        loaded.model,
        loaded.config,
        voc,
        found,
        bool(loaded.meta["sovits"].get("is_lora")),
        "converted",
        None,
        Path(hubert) if hubert else None,
        Path(bert) if bert else None,
    )
