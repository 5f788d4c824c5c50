"""Time the v3/v4 decode stages (CFM sampler, vocoder) on full-size random weights, batch 1 vs B rows.

    python benchmarks/cfm.py [--models DIR] [--version v4] [--batch 1 4] [--frames 300] [--steps 8] [--threads N]

The full-size files come from ``benchmarks/fullsize.py DIR --v3v4`` (written once). Each row is one
CFM call of ``--frames`` mel frames (a 100-frame prompt + the rest), as in one in-context chunk,
then the vocoder over the generated frames. Prints JSON: seconds per call, rows per second and
mel frames per second for each batch size, and the batch speed-up over batch 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
PROMPT_FRAMES = 100


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=os.path.join(tempfile.gettempdir(), "fullsize"), help="fullsize.py folder")
    p.add_argument("--version", choices=("v3", "v4"), default="v4")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    p.add_argument("--frames", type=int, default=300, help="mel frames per row (prompt included)")
    p.add_argument("--steps", type=int, default=8, help="sample_steps")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--no-vocoder", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from fullsize import write_v3v4_models

    from fastsovits.checkpoints.sovits_v3 import load_sovits_v3
    from fastsovits.checkpoints.vocoders import load_bigvgan, load_v4_vocoder
    from fastsovits.models import v3_synthesis as syn

    files = write_v3v4_models(a.models)
    model = load_sovits_v3(files.sovits_v4 if a.version == "v4" else files.sovits_v3, a.version)[0]
    vocoder = None
    if not a.no_vocoder:
        vocoder = load_v4_vocoder(files.vocoder_v4) if a.version == "v4" else load_bigvgan(files.bigvgan_v3)
    gen = torch.Generator().manual_seed(0)
    results = []
    for b in a.batch:
        mu = torch.randn(b, a.frames, model.config.bridge_channels, generator=gen)
        prompt = torch.randn(b, model.config.mel_channels, PROMPT_FRAMES, generator=gen)
        t0 = time.perf_counter()
        mel = model.cfm.sample(mu, prompt, a.steps, generators=[torch.Generator().manual_seed(i) for i in range(b)])
        t_cfm = time.perf_counter() - t0
        t_voc = 0.0
        if vocoder is not None:
            t0 = time.perf_counter()
            syn.vocode(vocoder, [mel[i : i + 1, :, PROMPT_FRAMES:] for i in range(b)])
            t_voc = time.perf_counter() - t0
        gen_frames = b * (a.frames - PROMPT_FRAMES)
        results.append(
            {
                "batch": b,
                "cfm_s": round(t_cfm, 3),
                "vocoder_s": round(t_voc, 3),
                "rows_per_s": round(b / (t_cfm + t_voc), 4),
                "mel_frames_per_s": round(gen_frames / (t_cfm + t_voc), 2),
            }
        )
    base = results[0]["rows_per_s"]
    for r in results:
        r["speedup_vs_first"] = round(r["rows_per_s"] / base, 3)
    print(
        json.dumps(
            {"version": a.version, "frames": a.frames, "steps": a.steps, "threads": a.threads, "results": results},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
