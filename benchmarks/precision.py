"""fp32 vs bf16 vs weight-only int8 on this CPU for the two heavy stages (full-size random weights). Prints JSON.

    python benchmarks/precision.py [--workdir DIR] [--threads 2] [--steps 30] [--profile]

T2S (fp32, bf16, int8 = int8 block linears + bf16 activations, models/quant.py): ms per decode step at
batch 1 and 8 (min and median of --steps steps, KV length 192); the prefill logits' max difference from
fp32; greedy agreement with fp32 along fp32's own greedy sequence (teacher-forced, 64 steps at batch 1: the
share of steps whose argmax matches, and the max logit difference). SoVITS (fp32, bf16): seconds to decode
2 s of audio after a warm-up call, and the waveform's max difference. --profile adds the torch profiler's
top operators of 10 batch-1 T2S steps per precision and of one SoVITS decode per precision.
bf16 and int8 pay off only where the CPU has bf16 units (AVX512_BF16 / AMX); the JSON names the flags found.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def vector_flags() -> list[str]:
    from fastsovits.runtime import cpu_flags

    return sorted(f for f in cpu_flags() if f.startswith(("avx512", "amx")) or f in ("avx2", "fma", "avx_vnni"))


def top_ops(fn, n: int = 12) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:n]
    return [{"op": e.key, "calls": e.count, "self_ms": round(e.self_cpu_time_total / 1000, 2)} for e in rows]


def _rows(batch: int, g: torch.Generator):
    from fastsovits.engine.t2s_inputs import T2SRow

    return [
        T2SRow(
            torch.randint(0, 700, (40,), generator=g),
            torch.randn(1024, 40, generator=g),
            torch.randint(0, 1024, (75,), generator=g),
        )
        for _ in range(batch)
    ]


@torch.no_grad()
def step_times(model, rows, steps: int, profile: bool) -> tuple[dict, torch.Tensor, list | None]:
    from fastsovits.engine.t2s_inputs import pad_rows
    from fastsovits.models.kv_cache import StaticKVCache

    ph, pl, bert, prompts, prl = pad_rows(rows, 1024, "cpu")
    cache = StaticKVCache.for_model(model, len(rows), 256)
    logits, pos = model.prefill(ph, pl, bert, prompts, prl, cache)
    tok = logits.argmax(-1).view(-1, 1)
    for _ in range(3):
        model.decode_step(tok, pos, cache, 192)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        model.decode_step(tok, pos, cache, 192)
        times.append(time.perf_counter() - t0)
    ops = top_ops(lambda: [model.decode_step(tok, pos, cache, 192) for _ in range(10)]) if profile else None
    ms = {"min": round(min(times) * 1000, 2), "median": round(statistics.median(times) * 1000, 2)}
    return ms, logits.float(), ops


@torch.no_grad()
def forced_logits(model, row, tokens: list[int]) -> torch.Tensor:
    """Prefill, then one decode step per given token (teacher forcing): -> [len(tokens) + 1, V] float32."""
    from fastsovits.engine.t2s_inputs import pad_rows
    from fastsovits.models.kv_cache import StaticKVCache

    ph, pl, bert, prompts, prl = pad_rows([row], 1024, "cpu")
    cache = StaticKVCache.for_model(model, 1, int(pl + prl) + len(tokens) + 2)
    logits, pos = model.prefill(ph, pl, bert, prompts, prl, cache)
    out = [logits.float()]
    for t in tokens:
        logits = model.decode_step(torch.tensor([[t]]), pos, cache, int(pos) + 1)
        pos = pos + 1
        out.append(logits.float())
    return torch.cat(out)


@torch.no_grad()
def greedy_tokens(model, row, n: int) -> list[int]:
    """The model's own greedy sequence of ``n`` tokens (no penalty, EOS not special)."""
    from fastsovits.engine.t2s_inputs import pad_rows
    from fastsovits.models.kv_cache import StaticKVCache

    ph, pl, bert, prompts, prl = pad_rows([row], 1024, "cpu")
    cache = StaticKVCache.for_model(model, 1, int(pl + prl) + n + 2)
    logits, pos = model.prefill(ph, pl, bert, prompts, prl, cache)
    tokens = []
    for _ in range(n):
        tokens.append(int(logits[0].argmax()))
        logits = model.decode_step(torch.tensor([[tokens[-1]]]), pos, cache, int(pos) + 1)
        pos = pos + 1
    return tokens


@torch.no_grad()
def measure_t2s(files, steps: int, profile: bool) -> dict:
    from fastsovits.checkpoints.gpt import load_gpt
    from fastsovits.models.quant import quantize_t2s_

    fp32 = load_gpt(files.gpt)[0].eval()
    variants = {
        "fp32": fp32,
        "bf16": copy.deepcopy(fp32).to(torch.bfloat16),
        "int8": quantize_t2s_(copy.deepcopy(fp32)),
    }
    g = torch.Generator().manual_seed(2)
    rows8, row1 = _rows(8, g), _rows(1, g)
    tokens = greedy_tokens(fp32, row1[0], 64)
    want = forced_logits(fp32, row1[0], tokens)
    out: dict = {
        "step_ms_batch1": {},
        "step_ms_batch8": {},
        "prefill_logits_max_abs_diff_batch8": {},
        "greedy_agreement_batch1_64_steps": {},
        "forced_logits_max_abs_diff": {},
        "weight_mb": {},
    }
    ref8 = None
    profiles = {}
    for name, model in variants.items():
        out["weight_mb"][name] = round(sum(t.nbytes for t in [*model.parameters(), *model.buffers()]) / 2**20, 1)
        out["step_ms_batch1"][name], _, ops = step_times(model, row1, steps, profile)
        out["step_ms_batch8"][name], logits8, _ = step_times(model, rows8, max(steps // 3, 5), False)
        if ops:
            profiles[name] = ops
        if name == "fp32":
            ref8 = logits8
            continue
        out["prefill_logits_max_abs_diff_batch8"][name] = round(float((logits8 - ref8).abs().max()), 4)
        got = forced_logits(model, row1[0], tokens)
        out["greedy_agreement_batch1_64_steps"][name] = round(
            float((got.argmax(-1) == want.argmax(-1)).float().mean()), 4
        )
        out["forced_logits_max_abs_diff"][name] = round(float((got - want).abs().max()), 4)
    out["fp32_logit_range"] = round(float(want.max() - want.min()), 2)
    if profile:
        out["t2s_profile_10_steps_batch1"] = profiles
    return out


@torch.no_grad()
def measure_sovits(files, profile: bool) -> dict:
    from fastsovits.checkpoints.sovits import load_sovits

    synth = load_sovits(files.sovits)[0].eval()
    g = torch.Generator().manual_seed(2)
    codes = torch.randint(0, 1024, (1, 1, 50), generator=g)  # 2 s of audio
    phones = torch.randint(1, 700, (1, 30), generator=g)
    ge = synth.style([torch.rand(1, synth.config.spec_channels, 100, generator=g)], [torch.randn(1, 20480)])
    res, profiles = {}, {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        s = synth.to(dtype)
        s.decode_with_style(codes, phones, ge.to(dtype), 0.0)  # warm-up: kernels chosen, 2-D weights cached
        t0 = time.perf_counter()
        wav = s.decode_with_style(codes, phones, ge.to(dtype), 0.0)
        res[name] = (time.perf_counter() - t0, wav.float())
        if profile:
            profiles[name] = top_ops(lambda s=s, dtype=dtype: s.decode_with_style(codes, phones, ge.to(dtype), 0.0))
    out = {
        "sovits_decode_2s_audio_seconds": {k: round(v[0], 3) for k, v in res.items()},
        "sovits_wav_max_abs_diff_bf16": round(float((res["fp32"][1] - res["bf16"][1]).abs().max()), 4),
    }
    if profile:
        out["sovits_profile_2s_audio"] = profiles
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", help="random full-size files (kept; default: a temp dir)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=30, help="timed decode steps at batch 1 (a third of them at batch 8)")
    p.add_argument("--profile", action="store_true", help="add the profiler's top operators")
    p.add_argument("--no-sovits", action="store_true", help="T2S only")
    a = p.parse_args()
    from fullsize import write_models

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_models(a.workdir or tmp)
        out = {
            "benchmark": "precision",
            "cpu_flags": vector_flags(),
            "threads": a.threads,
            **measure_t2s(files, a.steps, a.profile),
        }
        if not a.no_sovits:
            out.update(measure_sovits(files, a.profile))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
