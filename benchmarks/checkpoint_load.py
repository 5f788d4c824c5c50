"""Load time and peak RSS of a full-size v2ProPlus set: official files vs the converted format.

    python benchmarks/checkpoint_load.py [--workdir DIR] [--repeat 2]

Generates random full-size official-format files itself (GPT .ckpt with the s1longer-v2
architecture, SoVITS v2ProPlus .pth, a chinese-hubert-base-shaped HuBERT folder), converts the
GPT + SoVITS pair (fp16 where exact, and fp32), then loads each variant in a fresh subprocess and prints JSON (seconds and
peak RSS in MB, median over repeats). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, sys, time
import torch


def peak_mb():
    # VmHWM (peak resident set) of this process image; ru_maxrss would include the forked parent.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
torch.set_num_threads(2)
mode, d = sys.argv[1], sys.argv[2]
import fastsovits.checkpoints.convert, fastsovits.checkpoints.gpt, fastsovits.checkpoints.sovits  # imports first
base = peak_mb()
t0 = time.perf_counter()
if mode == "official":
    from fastsovits.checkpoints.gpt import load_gpt
    from fastsovits.checkpoints.sovits import load_sovits
    load_gpt(f"{d}/gpt.ckpt"); load_sovits(f"{d}/sovits.pth")
else:
    from fastsovits.checkpoints.convert import load_converted
    load_converted(f"{d}/{mode}")
t1 = time.perf_counter()
rss1 = peak_mb()
from fastsovits.models.ssl import SSLExtractor
SSLExtractor(f"{d}/hubert")
print(json.dumps({"rss_after_imports_mb": base, "gpt_sovits_seconds": t1 - t0, "gpt_sovits_peak_rss_mb": rss1,
                  "with_hubert_seconds": time.perf_counter() - t0,
                  "with_hubert_peak_rss_mb": peak_mb()}))
"""


def make_files(d: Path) -> dict[str, float]:
    import torch
    from transformers import HubertConfig, HubertModel

    from fastsovits.checkpoints.convert import convert
    from fastsovits.checkpoints.gpt import export_gpt
    from fastsovits.checkpoints.sovits import export_sovits
    from fastsovits.models.sovits import SovitsConfig, Synthesizer
    from fastsovits.models.t2s import T2SConfig, Text2Semantic

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
    export_gpt(Text2Semantic(t2s_cfg), t2s_cfg, d / "gpt.ckpt")
    manifest = json.loads((ROOT / "tests/fixtures/reference/manifests/s2_v2ProPlus.json").read_text())
    hps = {
        "model": manifest["config_model_section"],
        "data": {"filter_length": 2048, "hop_length": 640},
        "train": {"segment_size": 20480},
    }
    s_cfg = SovitsConfig.from_official(hps, "v2ProPlus")
    export_sovits(Synthesizer(s_cfg, with_posterior=False), s_cfg, d / "sovits.pth", "v2ProPlus")
    HubertModel(HubertConfig()).save_pretrained(str(d / "hubert"))
    convert(out_dir=d / "converted", gpt=d / "gpt.ckpt", sovits=d / "sovits.pth")
    convert(out_dir=d / "converted_fp32", gpt=d / "gpt.ckpt", sovits=d / "sovits.pth", dtype=None)
    sizes = {p.name: p.stat().st_size / 2**20 for p in (d / "gpt.ckpt", d / "sovits.pth")}
    for name in ("converted", "converted_fp32"):
        sizes[name] = sum(p.stat().st_size for p in (d / name).iterdir()) / 2**20
    return sizes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", help="keep the generated files here (default: a temp dir)")
    p.add_argument("--repeat", type=int, default=2)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(a.workdir or tmp)
        d.mkdir(parents=True, exist_ok=True)
        sizes = make_files(d)
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        results = {}
        for mode in ("official", "converted", "converted_fp32"):
            runs = []
            for _ in range(a.repeat):
                out = subprocess.run(
                    [sys.executable, "-c", _CHILD, mode, str(d)], capture_output=True, text=True, env=env, check=True
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            results[mode] = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    print(
        json.dumps(
            {
                "benchmark": "checkpoint_load",
                "set": "v2ProPlus GPT + SoVITS + HuBERT (random, full size)",
                "file_mb": {k: round(v, 1) for k, v in sizes.items()},
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
