"""What the engine's batch-1 T2S step adds to the bare model step (full-size random weights). Prints JSON.

    python benchmarks/step_overhead.py [--workdir DIR] [--dtype int8|bf16|fp32] [--threads 2] [--steps 100]

One row of a typical prompt (90 phones, 150 prompt tokens) is admitted into a ``T2SRunner``. Each timed
``T2SRunner.step`` (sampling, the host sync, the model step) is followed by a bare ``decode_step`` at the same
attention length on a cache of its own (same prefix); the JSON has both (ms, min and median), the attention
lengths covered, ms per ``sample_step`` and per ``exponential_noise`` alone (min and median), and the torch
profiler's top operators of 20 runner steps. ``--workdir`` holds (or receives) the files of ``benchmarks/fullsize.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


WARMUP = 10  # untimed steps first
PROFILED_STEPS = 20


def summary(seconds: list[float]) -> dict:
    return {"min": round(min(seconds) * 1000, 3), "median": round(statistics.median(seconds) * 1000, 3)}


def timed(fn, n: int) -> dict:
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return summary(times)


@torch.no_grad()
def measure(gpt: Path, dtype: str, steps: int) -> dict:
    from precision import top_ops

    from fastsovits.checkpoints.gpt import load_gpt
    from fastsovits.engine.sampling import RowSampling, SamplingTensors, exponential_noise, sample_step
    from fastsovits.engine.t2s_inputs import T2SRow, pad_rows
    from fastsovits.engine.t2s_runner import T2SRunner
    from fastsovits.models.kv_cache import StaticKVCache
    from fastsovits.models.quant import quantize_t2s_

    model = load_gpt(gpt)[0].eval()
    if dtype == "int8":
        quantize_t2s_(model)
    elif dtype == "bf16":
        model = model.to(torch.bfloat16)
    g = torch.Generator().manual_seed(0)
    row = T2SRow(
        torch.randint(0, 700, (90,), generator=g),
        torch.randn(1024, 90, generator=g),
        torch.randint(0, 1024, (150,), generator=g),
    )
    params = RowSampling(top_k=15, seed=1)
    prefix = int(row.phones.numel() + row.prompt.numel())
    runner = T2SRunner(model, 4, prefix + WARMUP + steps + PROFILED_STEPS + 1)
    runner.admit([0], [row], [params])
    # The bare step gets a cache of its own (same prefix), so it never writes into the runner's row.
    cache = StaticKVCache.for_model(model, 1, runner.max_len)
    phones, phone_lens, bert, prompts, prompt_lens = pad_rows([row], model.config.bert_dim, "cpu")
    _, positions = model.prefill(phones, phone_lens, bert, prompts, prompt_lens, cache)
    tokens = torch.tensor([[5]])
    runner_s, bare_s, lengths = [], [], []
    for i in range(WARMUP + steps):  # each runner step, then a bare step at the same attention length
        _, kv_len = runner.window()
        t0 = time.perf_counter()
        runner.step()
        t1 = time.perf_counter()
        model.decode_step(tokens, positions, cache, kv_len)
        t2 = time.perf_counter()
        if i >= WARMUP:
            runner_s.append(t1 - t0)
            bare_s.append(t2 - t1)
            lengths.append(kv_len)
    knobs = SamplingTensors.from_rows([params], model.config.vocab_size)
    logits = torch.randn(1, model.config.vocab_size, generator=g)
    seen = torch.zeros(1, model.config.vocab_size, dtype=torch.bool)
    at = torch.tensor([20])
    sample_ms = timed(lambda: sample_step(logits.clone(), seen, knobs, at, model.config.eos)[0].tolist(), 3 * steps)
    noise_ms = timed(lambda: exponential_noise(knobs.seed, at, knobs.vocab_ids), 3 * steps)
    ops = top_ops(lambda: [runner.step() for _ in range(PROFILED_STEPS)], n=15)
    return {
        "kv_len_first_last": [lengths[0], lengths[-1]],
        "runner_step_ms": summary(runner_s),
        "bare_decode_step_ms": summary(bare_s),
        "sample_step_ms": sample_ms,
        "exponential_noise_ms": noise_ms,
        f"profile_{PROFILED_STEPS}_runner_steps": ops,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", help="random full-size files (kept; default: a temp dir)")
    p.add_argument("--dtype", choices=("int8", "bf16", "fp32"), default="int8", help="T2S precision")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--steps", type=int, default=100, help="timed steps per measurement")
    a = p.parse_args()
    from fullsize import write_models

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_models(a.workdir or tmp)
        out = {
            "benchmark": "step_overhead",
            "dtype": a.dtype,
            "threads": a.threads,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            **measure(Path(files.gpt), a.dtype, a.steps),
        }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
