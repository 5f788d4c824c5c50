"""Training throughput (utterances/s) of the GPT and SoVITS fine-tuning steps; prints JSON.

    python benchmarks/train.py                       # tiny official-format models, CPU
    python benchmarks/train.py --size full --device cuda --precision bf16   # full-size, official batch sizes
    python benchmarks/train.py --only lora           # SoVITS v4 LoRA (CFM) step only

``tiny``: the tiny fixtures (tests/fixtures/reference/tiny), batch 8 (GPT) / 4 (SoVITS), small
discriminator. ``full``: random full-size v2 GPT (24 layers, d512) and v2ProPlus SoVITS with the
official discriminator, official batch sizes (8 / 32; ``--batch`` overrides). ``lora``: the v4 LoRA
step (tiny fixture at rank 4, or a random full-size v4 model at rank 32), batch 4 (``--lora-batch``).
Synthetic batches of ``--seconds`` long utterances (random phones/codes, noise audio, random HuBERT/SV features): the
work per step is the real work. A step = one optimizer step (SoVITS: D step + G step); the first
``--warmup`` steps are not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests/fixtures/reference/tiny"
MANIFESTS = ROOT / "tests/fixtures/reference/manifests"


class _Lengths:
    """Stands in for a dataset where a task only needs item lengths (for its sampler)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def lengths(self) -> list[int]:
        return [1] * self.n

    def __len__(self) -> int:
        return self.n


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(step, n_warmup: int, n_steps: int, device: torch.device) -> float:
    for _ in range(n_warmup):
        step()
    _sync(device)
    t = time.perf_counter()
    for _ in range(n_steps):
        step()
    _sync(device)
    return time.perf_counter() - t


def bench_gpt(size: str, batch: int, seconds: float, device: torch.device, precision: str, steps: int, warmup: int):
    from fastsovits.checkpoints.gpt import load_gpt
    from fastsovits.models.t2s import T2SConfig, Text2Semantic
    from fastsovits.train.config import GPTTrainConfig
    from fastsovits.train.data import T2SBatch
    from fastsovits.train.loop import DistEnv
    from fastsovits.train.t2s import GPTTask

    if size == "tiny":
        model, config, _ = load_gpt(TINY / "tiny_s1_v2.ckpt")
    else:
        config = T2SConfig()
        model = Text2Semantic(config)
    cfg = GPTTrainConfig(batch_size=batch, precision=precision, progress=False, export=False)
    task = GPTTask(model, _Lengths(batch), cfg, DistEnv(device=device), "bench")
    t = int(seconds * 25)
    n = int(seconds * 12)  # ~12 phones per second
    g = torch.Generator().manual_seed(0)
    b = T2SBatch(
        torch.randint(1, config.phoneme_vocab_size, (batch, n), generator=g),
        torch.full((batch,), n),
        torch.zeros(batch, 1024, n),
        torch.randint(0, 1024, (batch, t), generator=g),
        torch.full((batch,), t),
        [f"u{i}" for i in range(batch)],
    )
    secs = _time(lambda: task.train_step([b]), warmup, steps, device)
    return {
        "model": f"gpt-{size}",
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "batch": batch,
        "phones": n,
        "codes": t,
        "steps": steps,
        "seconds": round(secs, 3),
        "steps_per_s": round(steps / secs, 3),
        "utterances_per_s": round(steps * batch / secs, 2),
    }


def bench_sovits(size: str, batch: int, seconds: float, device: torch.device, precision: str, steps: int, warmup: int):
    from fastsovits.models.sovits import SovitsConfig, Synthesizer
    from fastsovits.train.config import SovitsTrainConfig
    from fastsovits.train.data import HOP, SovitsBatch
    from fastsovits.train.discriminator import MultiPeriodDiscriminator
    from fastsovits.train.loop import DistEnv
    from fastsovits.train.sovits import SovitsTask, apply_weight_norm, build_models

    if size == "tiny":
        small = dict(disc_channels=(4, 8, 16, 16, 16), disc_scale_channels=(4, 8, 16, 16, 16, 16))
        cfg = SovitsTrainConfig(batch_size=batch, precision=precision, progress=False, export=False, **small)
        model, disc, _ = build_models(TINY / "tiny_s2_v2.pth", None, cfg)
    else:
        cfg = SovitsTrainConfig(batch_size=batch, precision=precision, progress=False, export=False)
        manifest = json.loads((MANIFESTS / "s2_v2ProPlus.json").read_text())
        hps = {"model": manifest["config_model_section"], "train": {"segment_size": 20480}}
        model = Synthesizer(SovitsConfig.from_official(hps, "v2ProPlus"), with_posterior=True)
        apply_weight_norm(model)
        disc = MultiPeriodDiscriminator("v2ProPlus")
    task = SovitsTask(model, disc, _Lengths(batch), cfg, DistEnv(device=device), "bench")
    frames = int(seconds * 50) // 2 * 2
    n = int(seconds * 12)
    g = torch.Generator().manual_seed(0)
    pro = model.config.is_pro
    b = SovitsBatch(
        torch.randn(batch, 768, frames, generator=g),
        torch.rand(batch, 1025, frames, generator=g),
        torch.full((batch,), frames),
        torch.randn(batch, 1, frames * HOP, generator=g) * 0.1,
        torch.randint(1, model.config.n_symbols, (batch, n), generator=g),
        torch.full((batch,), n),
        torch.randn(batch, 20480, generator=g) if pro else None,
        [f"u{i}" for i in range(batch)],
    )
    secs = _time(lambda: task.train_step([b]), warmup, steps, device)
    return {
        "model": f"sovits-{model.config.version}-{size}",
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "disc_params_m": round(sum(p.numel() for p in disc.parameters()) / 1e6, 2),
        "batch": batch,
        "frames": frames,
        "segment_frames": task.segment,
        "steps": steps,
        "seconds": round(secs, 3),
        "steps_per_s": round(steps / secs, 3),
        "utterances_per_s": round(steps * batch / secs, 2),
    }


def bench_lora(size: str, batch: int, seconds: float, device: torch.device, precision: str, steps: int, warmup: int):
    """SoVITS v4 LoRA step (CFM flow matching): tiny fixture at rank 4, or a random full-size v4 model at rank 32."""
    from fastsovits.models.sovits_v3 import SovitsV3Config, SynthesizerV3
    from fastsovits.train.config import SovitsLoraTrainConfig
    from fastsovits.train.loop import DistEnv
    from fastsovits.train.sovits_v3 import SovitsLoraTask, SovitsV3Batch, build_lora_model, prepare_lora_model

    rank = 4 if size == "tiny" else SovitsLoraTrainConfig.lora_rank
    cfg = SovitsLoraTrainConfig(batch_size=batch, precision=precision, progress=False, export=False, lora_rank=rank)
    if size == "tiny":
        model, _ = build_lora_model(TINY / "tiny_s2_v4.pth", cfg, "v4")
    else:
        model = prepare_lora_model(SynthesizerV3(SovitsV3Config(version="v4")), cfg)
    task = SovitsLoraTask(model, _Lengths(batch), cfg, DistEnv(device=device), "bench")
    frames = int(seconds * 50) // 2 * 2
    n = int(seconds * 12)
    g = torch.Generator().manual_seed(0)
    b = SovitsV3Batch(
        torch.randn(batch, 768, frames, generator=g),
        torch.rand(batch, 1025, frames, generator=g),
        torch.full((batch,), frames),
        torch.rand(batch, 100, 2 * frames, generator=g) * 2 - 1,
        torch.full((batch,), 2 * frames),
        torch.randint(1, model.config.n_symbols, (batch, n), generator=g),
        torch.full((batch,), n),
        [f"u{i}" for i in range(batch)],
    )
    secs = _time(lambda: task.train_step([b]), warmup, steps, device)
    return {
        "model": f"sovits-v4-lora-{size}",
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "trained_params_m": round(sum(p.numel() for p in task.params) / 1e6, 3),
        "lora_rank": rank,
        "batch": batch,
        "mel_frames": 2 * frames,
        "steps": steps,
        "seconds": round(secs, 3),
        "steps_per_s": round(steps / secs, 3),
        "utterances_per_s": round(steps * batch / secs, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=("tiny", "full"), default="tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--seconds", type=float, default=4.0, help="utterance length (default 4 s)")
    p.add_argument("--gpt-batch", type=int, help="default 8 (official)")
    p.add_argument("--sovits-batch", type=int, help="default 4 tiny / 32 full (official)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--lora-batch", type=int, help="default 4 (the WebUI proposes GPU GB // 8)")
    p.add_argument("--only", choices=("gpt", "sovits", "lora"))
    a = p.parse_args(argv)
    device = torch.device(a.device)
    torch.manual_seed(0)
    out = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "precision": a.precision,
        "size": a.size,
        "seconds_per_utterance": a.seconds,
        "results": [],
    }
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    if a.only in (None, "gpt"):
        out["results"].append(bench_gpt(a.size, a.gpt_batch or 8, a.seconds, device, a.precision, a.steps, a.warmup))
    if a.only in (None, "sovits"):
        batch = a.sovits_batch or (4 if a.size == "tiny" else 32)
        out["results"].append(bench_sovits(a.size, batch, a.seconds, device, a.precision, a.steps, a.warmup))
    if a.only in (None, "lora"):
        out["results"].append(bench_lora(a.size, a.lora_batch or 4, a.seconds, device, a.precision, a.steps, a.warmup))
    if device.type == "cuda":
        out["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
