"""Full-size random official-format model files for the benchmarks (throughput, load).

    python benchmarks/fullsize.py DIR        # writes (once) and prints the paths as JSON
    python benchmarks/fullsize.py DIR --v3v4 # also the v3/v4 files below

Writes into DIR (skipped when DIR/.complete exists):
  s1v2_random.ckpt          v2 GPT (24 layers, d512), official layout; the EOS row of the output head zeroed, so with
                            top_k <= 15 EOS is never among the candidates and every sentence runs exactly the
                            requested number of tokens (``max_new_tokens``)
  s2v2ProPlus_random.pth    v2ProPlus SoVITS, official layout and version header
  chinese-hubert-base/      full-size HuBERT (transformers folder)
  sv/pretrained_eres2netv2w24s4ep4.ckpt   full-size ERes2NetV2 speaker model (plain state dict)
  ref.wav, ref.txt          a 3-10 s English reference clip (espeak-ng when installed, else a synthetic voiced signal)
  sentences.txt             English sentences, one per line
With --v3v4 (skipped when DIR/.complete_v3v4 exists; about 2.3 GB):
  s2v3_random.pth, s2v4_random.pth   SynthesizerTrnV3 with the layout of manifests/s2_v3.json / s2_v4.json
                            (fp16, header PK; load the v4 one with version="v4": by size the official rule says v3)
  vocoder_v4_random.pth     the v4 vocoder (manifests/vocoder_v4.json), fp32 state dict
  models--nvidia--bigvgan_v2_24khz_100band_256x/   BigVGAN v2 24 kHz 100-band 256x in its hub layout
                            (config.json + bigvgan_generator.pt with weight norm)
Random weights: the audio is noise; the work per token is the real models' work.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF_TEXT = "This is the reference clip that gives the benchmark its voice."
SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Batching many sentences together keeps every core of the machine busy.",
    "A voice clone needs only a few seconds of clean reference audio.",
    "Please remember to bring your umbrella, the forecast says it will rain.",
    "Continuous batching lets a new sentence start as soon as a slot is free.",
    "She sells sea shells by the sea shore on a bright summer morning.",
    "The engine never grows its cache; every slot is allocated once.",
    "Numbers such as twenty one or three hundred are read out in full.",
]


@dataclass(frozen=True)
class ModelFiles:
    gpt: str
    sovits: str
    hubert: str
    sv: str
    ref: str
    ref_text: str
    sentences: str


def _reference_wav(path: Path) -> None:
    import numpy as np
    import soundfile as sf

    if shutil.which("espeak-ng"):
        subprocess.run(
            ["espeak-ng", "-v", "en+m3", "-s", "150", "-w", str(path), REF_TEXT], check=True, capture_output=True
        )
        wav, sr = sf.read(str(path), dtype="float32")
        if 3.0 <= len(wav) / sr <= 10.0:
            return
    sr = 32000  # synthetic fallback: a voiced, amplitude-modulated harmonic signal of 5 s
    t = np.arange(5 * sr) / sr
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wav = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * 0.2
    sf.write(str(path), wav.astype(np.float32), sr)


def write_models(d: str | Path) -> ModelFiles:
    import torch
    from transformers import HubertConfig, HubertModel

    from fastsovits.checkpoints.gpt import export_gpt
    from fastsovits.checkpoints.sovits import export_sovits
    from fastsovits.models.sovits import SovitsConfig, Synthesizer
    from fastsovits.models.sv import ERes2NetV2
    from fastsovits.models.t2s import T2SConfig, Text2Semantic

    d = Path(d)
    files = ModelFiles(
        gpt=str(d / "s1v2_random.ckpt"),
        sovits=str(d / "s2v2ProPlus_random.pth"),
        hubert=str(d / "chinese-hubert-base"),
        sv=str(d / "sv/pretrained_eres2netv2w24s4ep4.ckpt"),
        ref=str(d / "ref.wav"),
        ref_text=REF_TEXT,
        sentences=str(d / "sentences.txt"),
    )
    if (d / ".complete").is_file():
        return files
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    t2s_cfg = T2SConfig.from_official(
        {
            "model": {
                "vocab_size": 1025,
                "phoneme_vocab_size": 732,
                "embedding_dim": 512,
                "hidden_dim": 512,
                "head": 16,
                "linear_units": 2048,
                "n_layer": 24,
                "dropout": 0,
                "EOS": 1024,
            }
        }
    )
    t2s = Text2Semantic(t2s_cfg)
    with torch.no_grad():
        t2s.head.weight[t2s_cfg.eos].zero_()
    export_gpt(t2s, t2s_cfg, files.gpt)
    manifest = json.loads((ROOT / "tests/fixtures/reference/manifests/s2_v2ProPlus.json").read_text())
    hps = {
        "model": manifest["config_model_section"],
        "data": {"filter_length": 2048, "hop_length": 640},
        "train": {"segment_size": 20480},
    }
    s_cfg = SovitsConfig.from_official(hps, "v2ProPlus")
    export_sovits(Synthesizer(s_cfg, with_posterior=False), s_cfg, files.sovits, "v2ProPlus")
    HubertModel(HubertConfig()).save_pretrained(files.hubert)
    Path(files.sv).parent.mkdir(exist_ok=True)
    torch.save(ERes2NetV2().state_dict(), files.sv)
    _reference_wav(Path(files.ref))
    Path(files.sentences).write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    (d / "ref.txt").write_text(REF_TEXT + "\n", encoding="utf-8")
    (d / ".complete").write_text("ok\n")
    return files


@dataclass(frozen=True)
class V3V4Files:
    sovits_v3: str
    sovits_v4: str
    vocoder_v4: str
    bigvgan_v3: str


def write_v3v4_models(d: str | Path) -> V3V4Files:
    import torch

    from fastsovits.checkpoints.sovits_v3 import export_sovits_v3, sizes_from_weights
    from fastsovits.checkpoints.vocoders import build_v4_vocoder, save_bigvgan, v4_vocoder_state_dict
    from fastsovits.models.bigvgan import BigVGAN, BigVGANConfig
    from fastsovits.models.sovits_v3 import SovitsV3Config, SynthesizerV3

    d = Path(d)
    files = V3V4Files(
        sovits_v3=str(d / "s2v3_random.pth"),
        sovits_v4=str(d / "s2v4_random.pth"),
        vocoder_v4=str(d / "vocoder_v4_random.pth"),
        bigvgan_v3=str(d / "models--nvidia--bigvgan_v2_24khz_100band_256x"),
    )
    if (d / ".complete_v3v4").is_file():
        return files
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for version, path in (("v3", files.sovits_v3), ("v4", files.sovits_v4)):
        manifest = json.loads((ROOT / f"tests/fixtures/reference/manifests/s2_{version}.json").read_text())
        sizes = sizes_from_weights({k: torch.empty(s, device="meta") for k, s in manifest["state_dict"].items()})
        config = SovitsV3Config.from_official({"model": manifest["config_model_section"]}, version, **sizes)
        export_sovits_v3(SynthesizerV3(config).eval(), config, path)
    torch.save(v4_vocoder_state_dict(build_v4_vocoder()), files.vocoder_v4)
    save_bigvgan(BigVGAN(BigVGANConfig()).eval(), files.bigvgan_v3)
    (d / ".complete_v3v4").write_text("ok\n")
    return files


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--v3v4"]
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if len(args) == 1 else 2)
    out = asdict(write_models(args[0]))
    if "--v3v4" in sys.argv[1:]:
        out.update(asdict(write_v3v4_models(args[0])))
    print(json.dumps(out, indent=2))
