"""What the engine's batch-1 T2S step adds to the bare model step (full-size random weights). Prints JSON.

    python benchmarks/step_overhead.py [--workdir DIR] [--dtype int8|bf16|fp32] [--threads 2] [--steps 100]

One row of a typical prompt (90 phones, 150 prompt tokens) is admitted into a ``T2SRunner``; then, at the
same attention length: ms per ``T2SRunner.step`` (sampling, the host sync, the model step), ms per bare
``decode_step``, ms per ``sample_step`` and per ``exponential_noise`` alone (min and median), and the torch
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


def timed(fn, n: int, warmup: int = 10) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"min": round(min(times) * 1000, 3), "median": round(statistics.median(times) * 1000, 3)}


@torch.no_grad()
def measure(gpt: Path, dtype: str, steps: int) -> dict:
    from precision import top_ops

    from fastsovits.checkpoints.gpt import load_gpt
    from fastsovits.engine.sampling import RowSampling, SamplingTensors, exponential_noise, sample_step
    from fastsovits.engine.t2s_inputs import T2SRow
    from fastsovits.engine.t2s_runner import T2SRunner
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
    runner = T2SRunner(model, 4, 240 + 3 * (steps + 40))
    runner.admit([0], [row], [params])
    runner_ms = timed(runner.step, steps)
    _, kv_len = runner.window()
    tokens, positions = torch.tensor([[5]]), runner.positions[:1].clone()
    bare_ms = timed(lambda: model.decode_step(tokens, positions, runner.cache, kv_len), steps)
    knobs = SamplingTensors.from_rows([params], model.config.vocab_size)
    logits = torch.randn(1, model.config.vocab_size, generator=g)
    seen = torch.zeros(1, model.config.vocab_size, dtype=torch.bool)
    at = torch.tensor([20])
    sample_ms = timed(lambda: sample_step(logits.clone(), seen, knobs, at, model.config.eos)[0].tolist(), 3 * steps)
    noise_ms = timed(lambda: exponential_noise(knobs.seed, at, knobs.vocab_ids), 3 * steps)
    ops = top_ops(lambda: [runner.step() for _ in range(20)], n=15)
    return {
        "kv_len": kv_len,
        "runner_step_ms": runner_ms,
        "bare_decode_step_ms": bare_ms,
        "sample_step_ms": sample_ms,
        "exponential_noise_ms": noise_ms,
        "profile_20_runner_steps": ops,
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
