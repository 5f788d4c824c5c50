"""The shared training loop: resume, epochs of (accumulated) steps, logs, saves, DDP.

A trainer (GPT in :mod:`fastsovits.train.t2s`, SoVITS in :mod:`fastsovits.train.sovits`) is a
:class:`TrainTask`; :func:`run_training` drives it:

* resume: ``<run_dir>/state_latest.pt`` (modules, optimizers, schedulers, scaler, epoch, step)
  is written atomically (temporary file + ``os.replace``) by rank 0 every ``save_every`` epochs
  and at the end; a run restarts after the last saved epoch. A file that cannot be read, or was
  written by another kind of trainer, raises :class:`CheckpointError` saying what to do.
* randomness: every epoch re-seeds torch with ``seed + epoch`` (+ rank), so a resumed run takes
  the same steps as an uninterrupted one.
* logs: one JSON object per optimizer step in ``<run_dir>/train_log.jsonl`` (metrics averaged
  over ranks); TensorBoard scalars too when ``torch.utils.tensorboard`` can be imported.
* DDP: when ``torchrun`` sets ``WORLD_SIZE`` > 1, :func:`init_distributed` joins the process group
  (``nccl`` on CUDA, ``gloo`` on CPU) and tasks wrap their modules in DistributedDataParallel.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.distributed as dist

from fastsovits.errors import CheckpointError, InvalidParameter

if TYPE_CHECKING:
    from fastsovits.train.config import CommonTrainConfig

STATE_FILE = "state_latest.pt"
LOG_FILE = "train_log.jsonl"
STATE_FORMAT = "fastsovits-train-state/1"


# ---- processes and devices --------------------------------------------------------------------
@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistEnv:
    """Join the process group ``torchrun`` describes (WORLD_SIZE/RANK/LOCAL_RANK), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        dev = torch.device("cuda", local % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistEnv(rank, world, local, dev)


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    if precision == "fp32":
        return nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise InvalidParameter("precision 'fp16' needs a CUDA device; use 'bf16' or 'fp32' on CPU")
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


# ---- state files ------------------------------------------------------------------------------
def save_state(path: Path, kind: str, epoch: int, step: int, task_state: dict[str, Any], config: dict) -> None:
    """Write the resume state atomically (a crash leaves the previous file intact)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    payload = {"format": STATE_FORMAT, "kind": kind, "epoch": epoch, "step": step, "task": task_state, "config": config}
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_state(path: Path, kind: str) -> dict[str, Any]:
    hint = f"delete {str(path)!r} (or pass --no-resume) to start from the pretrained weights"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read means a corrupt or foreign file
        raise CheckpointError(
            f"resume state {str(path)!r} is corrupt or unreadable ({type(e).__name__}: {str(e)[:200]}); {hint}"
        ) from e
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a fastsovits training state; {hint}")
    if payload.get("kind") != kind:
        raise CheckpointError(f"{str(path)!r} is a {payload.get('kind')!r} training state, not {kind!r}; {hint}")
    for key in ("epoch", "step", "task"):
        if key not in payload:
            raise CheckpointError(f"{str(path)!r} lacks {key!r}; {hint}")
    return payload


# ---- logs -------------------------------------------------------------------------------------
class MetricsLog:
    """JSON lines (always) + TensorBoard (when importable); only rank 0 writes."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self._file = None
        self._tb = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(run_dir / LOG_FILE, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        except ImportError:
            self._tb = None

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled or self._file is None:
            return
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None and "step" in record:
            for k, v in record.items():
                if isinstance(v, float) and k not in ("time",):
                    self._tb.add_scalar(k, v, record["step"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()


def reduce_metrics(metrics: dict[str, float], env: DistEnv) -> dict[str, float]:
    """Average a step's metrics over ranks (every rank must pass the same keys)."""
    if not env.distributed or not metrics:
        return metrics
    keys = sorted(metrics)
    t = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=env.device)
    dist.all_reduce(t)
    return {k: float(v) / env.world_size for k, v in zip(keys, t.tolist())}


# ---- the loop ---------------------------------------------------------------------------------
class TrainTask(Protocol):
    kind: str  # "gpt" / "sovits": recorded in the state file

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def batches(self, epoch: int) -> Iterable: ...

    def steps_per_epoch(self) -> int: ...

    def train_step(self, micro_batches: Sequence[Any]) -> dict[str, float]: ...

    def end_epoch(self, epoch: int) -> None: ...

    def export(self, run_dir: Path, epoch: int, step: int) -> list[Path]: ...


class StatefulParts:
    """``state_dict``/``load_state_dict`` of a task whose state is a few named objects that have their own
    (model, optimizer, scheduler, grad scaler): the task names them in ``_stateful()``."""

    def _stateful(self) -> dict[str, Any]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {name: obj.state_dict() for name, obj in self._stateful().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, obj in self._stateful().items():
            obj.load_state_dict(state[name])


@dataclass
class TrainResult:
    run_dir: Path
    first_epoch: int  # 1 unless resumed
    last_epoch: int
    steps: int  # optimizer steps taken in total (including before a resume)
    history: list[dict[str, float]] = field(default_factory=list)  # this run's per-step metrics
    exported: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    items: int = 0  # utterances seen by this rank in this run


def _chunks(batches: Iterable, n: int) -> Iterable[list]:
    group: list = []
    for b in batches:
        group.append(b)
        if len(group) == n:
            yield group
            group = []
    if group:
        yield group


def run_task(
    task: TrainTask, run_dir: str | Path, cfg: CommonTrainConfig, *, resume: bool, env: DistEnv
) -> TrainResult:
    """:func:`run_training` with the loop settings every training config carries."""
    return run_training(
        task,
        run_dir,
        epochs=cfg.epochs,
        save_every=cfg.save_every,
        seed=cfg.seed,
        grad_accum=cfg.grad_accum,
        log_every=cfg.log_every,
        resume=resume,
        env=env,
        progress=cfg.progress,
        config=cfg.to_dict(),
    )


def run_training(
    task: TrainTask,
    run_dir: str | Path,
    *,
    epochs: int,
    save_every: int,
    seed: int,
    grad_accum: int = 1,
    log_every: int = 1,
    resume: bool = True,
    env: DistEnv | None = None,
    progress: bool = False,
    config: dict | None = None,
) -> TrainResult:
    env = env or DistEnv()
    run_dir = Path(run_dir)
    state_path = run_dir / STATE_FILE
    first, step = 1, 0
    if resume and state_path.exists():
        state = load_state(state_path, task.kind)
        try:
            task.load_state_dict(state["task"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise CheckpointError(
                f"resume state {str(state_path)!r} does not fit this model/config: "
                f"{str(e)[:300]}; delete it (or pass --no-resume) to start over"
            ) from e
        first, step = int(state["epoch"]) + 1, int(state["step"])
    log = MetricsLog(run_dir, env.is_main)
    result = TrainResult(run_dir, first, first - 1, step)
    start = time.perf_counter()
    try:
        for epoch in range(first, epochs + 1):
            torch.manual_seed(seed + epoch * 7919 + env.rank)
            groups = _chunks(task.batches(epoch), grad_accum)
            if progress and env.is_main:
                from tqdm import tqdm

                total = -(-task.steps_per_epoch() // grad_accum)
                groups = tqdm(groups, total=total, desc=f"{task.kind} epoch {epoch}/{epochs}", leave=False)
            for group in groups:
                metrics = reduce_metrics(task.train_step(group), env)
                step += 1
                result.items += sum(_batch_size(b) for b in group)
                result.history.append(metrics)
                if step % log_every == 0:
                    log.write({"step": step, "epoch": epoch, **metrics, "time": time.time()})
            task.end_epoch(epoch)
            result.last_epoch, result.steps = epoch, step
            if epoch % save_every == 0 or epoch == epochs:
                if env.is_main:
                    save_state(state_path, task.kind, epoch, step, task.state_dict(), config or {})
                    result.exported += task.export(run_dir, epoch, step)
                if env.distributed:
                    dist.barrier()
    finally:
        log.close()
    result.seconds = time.perf_counter() - start
    return result


def _batch_size(batch: Any) -> int:
    names = getattr(batch, "names", None)
    return len(names) if names is not None else 0
