"""bf16 vs fp32 on this CPU for the two heavy stages (full-size random weights). Prints JSON.

    python benchmarks/precision.py [--workdir DIR] [--threads 2]

T2S: ms per decode step at batch 8 and the prefill logits' max difference; SoVITS: seconds to decode
2 s of audio and the waveform's max difference. bf16 pays off only where the CPU has bf16 units
(AVX512_BF16 / AMX); the JSON names the flags found.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def vector_flags() -> list[str]:
    from fastsovits.runtime import cpu_flags

    return sorted(f for f in cpu_flags() if f.startswith(("avx512", "amx")) or f in ("avx2", "fma"))


@torch.no_grad()
def measure(files, threads: int) -> dict:
    from fastsovits.checkpoints.gpt import load_gpt
    from fastsovits.checkpoints.sovits import load_sovits
    from fastsovits.engine.t2s_inputs import T2SRow, pad_rows
    from fastsovits.models.kv_cache import StaticKVCache

    torch.set_num_threads(threads)
    t2s = load_gpt(files.gpt)[0].eval()
    synth = load_sovits(files.sovits)[0].eval()
    g = torch.Generator().manual_seed(2)
    rows = [T2SRow(torch.randint(0, 700, (40,), generator=g), torch.randn(1024, 40, generator=g),
                   torch.randint(0, 1024, (75,), generator=g)) for _ in range(8)]
    codes = torch.randint(0, 1024, (1, 1, 50), generator=g)  # 2 s of audio (bf16 convs are very slow here)
    phones = torch.randint(1, 700, (1, 30), generator=g)
    ge = synth.style([torch.rand(1, synth.config.spec_channels, 100, generator=g)], [torch.randn(1, 20480)])
    res = {}
    for dtype in (torch.float32, torch.bfloat16):
        m, s = t2s.to(dtype), synth.to(dtype)
        ph, pl, bert, prompts, prl = pad_rows(rows, 1024, "cpu")
        cache = StaticKVCache.for_model(m, 8, 256)
        logits, pos = m.prefill(ph, pl, bert.to(dtype), prompts, prl, cache)
        tok = logits.argmax(-1).view(-1, 1)
        m.decode_step(tok, pos, cache, 192)
        t0 = time.perf_counter()
        for _ in range(10):
            m.decode_step(tok, pos, cache, 192)
            pos = pos + 1
        step = (time.perf_counter() - t0) / 10
        s.decode_with_style(codes, phones, ge.to(dtype), 0.0)  # warm-up: kernels chosen, 2-D weights cached
        t0 = time.perf_counter()
        wav = s.decode_with_style(codes, phones, ge.to(dtype), 0.0)
        res[dtype] = (step, logits.float(), time.perf_counter() - t0, wav.float())
    f, b = res[torch.float32], res[torch.bfloat16]
    return {"t2s_decode_step_ms_batch8": {"fp32": round(f[0] * 1000, 1), "bf16": round(b[0] * 1000, 1)},
            "t2s_prefill_logits_max_abs_diff": round(float((f[1] - b[1]).abs().max()), 4),
            "t2s_prefill_argmax_agreement": float((f[1].argmax(-1) == b[1].argmax(-1)).float().mean()),
            "sovits_decode_2s_audio_seconds": {"fp32": round(f[2], 2), "bf16": round(b[2], 2)},
            "sovits_wav_max_abs_diff": round(float((f[3] - b[3]).abs().max()), 4)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", help="random full-size files (kept; default: a temp dir)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    from fullsize import write_models

    with tempfile.TemporaryDirectory() as tmp:
        files = write_models(a.workdir or tmp)
        out = {"benchmark": "precision", "cpu_flags": vector_flags(), "threads": a.threads, **measure(files, a.threads)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
