"""Two CPU processes (gloo) train on different shards and end with identical weights (DDP)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

from tests.reference import reference_dir
from tests.train.layout_fixture import make_layout

TINY = reference_dir() / "tiny"
TIMEOUT_S = 150


def _worker(rank: int, world: int, port: int, exp: str, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    import torch.distributed as dist

    from fastsovits.checkpoints.gpt import load_gpt
    from fastsovits.train.config import GPTTrainConfig, SovitsTrainConfig
    from fastsovits.train.data import SovitsDataset, T2SDataset, collate_sovits
    from fastsovits.train.loop import init_distributed, run_training
    from fastsovits.train.sovits import SovitsTask, build_models
    from fastsovits.train.t2s import GPTTask

    env = init_distributed("cpu")
    assert env.distributed and env.rank == rank
    model, _, _ = load_gpt(TINY / "tiny_s1_v2.ckpt")
    if rank == 1:
        with torch.no_grad():  # DDP must broadcast rank 0's weights at the start
            model.head.weight.add_(1.0)
    cfg = GPTTrainConfig(epochs=1, batch_size=2, lr=0.01, warmup_steps=1, progress=False, device="cpu", export=False)
    ds = T2SDataset(exp, "v2")
    task = GPTTask(model, ds, cfg, env, "exp")
    names = [n for b in task.batches(1) for n in b.names]
    result = run_training(task, Path(out) / "run", epochs=1, save_every=1, seed=cfg.seed, env=env, resume=False)
    s_cfg = SovitsTrainConfig(
        batch_size=1,
        segment_frames=8,
        device="cpu",
        progress=False,
        export=False,
        disc_channels=(4, 8, 16, 16, 16),
        disc_scale_channels=(4, 8, 16, 16, 16, 16),
    )
    gen, disc, _ = build_models(TINY / "tiny_s2_v2.pth", None, s_cfg)
    s_ds = SovitsDataset(exp, "v2")
    s_task = SovitsTask(gen, disc, s_ds, s_cfg, env, "exp")
    s_task.train_step([collate_sovits([s_ds[rank]], 8)])  # a different utterance on each rank
    torch.save(
        {
            "gpt": model.state_dict(),
            "names": names,
            "steps": result.steps,
            "gen": gen.state_dict(),
            "disc": disc.state_dict(),
        },
        Path(out) / f"rank{rank}.pt",
    )
    dist.barrier()
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_end_with_identical_weights(tmp_path) -> None:
    exp = make_layout(tmp_path / "exp", n=4)
    ctx = mp.start_processes(
        _worker, args=(2, _free_port(), str(exp), str(tmp_path)), nprocs=2, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not ctx.join(timeout=1):
            assert time.monotonic() < deadline, f"DDP workers did not finish within {TIMEOUT_S} s"
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.terminate()
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert r0["steps"] == r1["steps"] == 1  # 4 items, batch 2, 2 ranks -> one step each
    assert set(r0["names"]).isdisjoint(r1["names"]) and len(r0["names"]) == 2
    for part in ("gpt", "gen", "disc"):
        for k, v in r0[part].items():
            assert torch.equal(v, r1[part][k]), f"{part}.{k} differs between ranks"
    from fastsovits.checkpoints.gpt import load_gpt

    initial, _, _ = load_gpt(TINY / "tiny_s1_v2.ckpt")
    assert not torch.equal(initial.state_dict()["head.weight"], r0["gpt"]["head.weight"])
    assert (tmp_path / "run" / "state_latest.pt").is_file() and (tmp_path / "run" / "train_log.jsonl").is_file()
