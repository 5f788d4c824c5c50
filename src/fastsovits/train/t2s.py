"""GPT (text-to-semantic, official s1) fine-tuning.

Warm start from an official ``.ckpt`` (:func:`fastsovits.checkpoints.gpt.load_gpt`); the loss is
the teacher-forced cross entropy of :meth:`Text2Semantic.training_loss`, which left-pads the text
with a mask that matches (the official trainer left-pads the text but builds its mask as if it
were right-padded; we do not copy that). By default
padded positions are left out of the loss and it is averaged per target token
(``loss_on_padding`` / ``loss_reduction="sum"`` restore the official sum over every position).
Optimiser: AdamW; LR: warmup + cosine decay to ``min_lr_ratio`` (or the official constant), see
:class:`~fastsovits.train.config.GPTTrainConfig`. Optional reference-free DPO (the official
trainer's preference loss against corrupted texts).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from fastsovits.models.t2s import Text2Semantic
from fastsovits.train.config import GPTTrainConfig
from fastsovits.train.data import BucketBatchSampler, T2SBatch, T2SDataset, collate_t2s
from fastsovits.train.loop import (
    DistEnv,
    StatefulParts,
    TrainResult,
    autocast,
    grad_scaler,
    init_distributed,
    run_task,
)

log = logging.getLogger("fastsovits.train")


class _Teacher(nn.Module):
    """Wraps the model so DistributedDataParallel sees ``training_loss`` as ``forward``."""

    def __init__(self, model: Text2Semantic) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, phones: Tensor, phone_lens: Tensor, bert: Tensor, codes: Tensor, code_lens: Tensor
    ) -> tuple[Tensor, Tensor]:
        _, logits, targets = self.model.training_loss(phones, phone_lens, bert, codes, code_lens)
        return logits, targets  # [B, T+1, V], [B, T+1]


def target_mask(code_lens: Tensor, width: int) -> Tensor:
    """True at the real targets (codes and the EOS after them): [B] -> [B, width]."""
    return torch.arange(width, device=code_lens.device).view(1, -1) <= code_lens.view(-1, 1)


def token_loss(logits: Tensor, targets: Tensor, code_lens: Tensor, cfg: GPTTrainConfig) -> tuple[Tensor, Tensor]:
    """-> (loss, per-position CE [B, T+1]); padding excluded unless ``cfg.loss_on_padding``."""
    ce = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")  # [B, T+1]
    mask = torch.ones_like(ce) if cfg.loss_on_padding else target_mask(code_lens, ce.shape[1]).to(ce.dtype)
    total = (ce * mask).sum()
    return (total / mask.sum() if cfg.loss_reduction == "mean" else total), ce


def sequence_logp(logits: Tensor, targets: Tensor, code_lens: Tensor) -> Tensor:
    """Sum of target log-probabilities over each row's real targets: -> [B]."""
    lp = logits.float().log_softmax(-1).gather(2, targets.unsqueeze(-1)).squeeze(-1)  # [B, T+1]
    return (lp * target_mask(code_lens, lp.shape[1]).to(lp.dtype)).sum(1)


def rejected_codes(codes: Tensor, code_lens: Tensor, eos: int, generator: torch.Generator | None = None):
    """Corrupted copies for DPO: per row either a random span repeated or a random span deleted.

    codes [B, T] (right-padded) -> (rejected [B, T'], lengths [B]). Spans are drawn over the
    real tokens only (the official version also draws them over the padding).
    """
    rows = []
    for b, n in enumerate(code_lens.tolist()):
        c = codes[b, :n]
        i, j = sorted(torch.randint(0, n, (2,), generator=generator).tolist())
        repeat = bool(torch.randint(0, 2, (1,), generator=generator).item() == 0)
        rows.append(torch.cat([c[:i], c[i:j], c[i:j], c[j:]]) if repeat else torch.cat([c[:i], c[j:]]))
    lens = torch.tensor([len(r) for r in rows], device=codes.device)
    out = codes.new_full((len(rows), int(lens.max())), eos)
    for b, r in enumerate(rows):
        out[b, : len(r)] = r
    return out, lens


def dpo_loss(logp_chosen: Tensor, logp_rejected: Tensor, beta: float) -> Tensor:
    """Reference-free DPO: mean of -log sigmoid(beta * (logp_chosen - logp_rejected))."""
    return -F.logsigmoid(beta * (logp_chosen - logp_rejected)).mean()


def lr_factor(step: int, total_steps: int, cfg: GPTTrainConfig) -> float:
    """Multiplier of ``cfg.lr`` at optimizer step ``step`` (0-based)."""
    if cfg.lr_schedule == "constant":
        return 1.0
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(total_steps - cfg.warmup_steps, 1)
    progress = min(max(step - cfg.warmup_steps, 0) / span, 1.0)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, cfg: GPTTrainConfig) -> torch.optim.AdamW:
    """AdamW; matrices and embeddings decay, biases / norms / position scales do not."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), foreach=True)


class GPTTask(StatefulParts):
    kind = "gpt"

    def __init__(
        self,
        model: Text2Semantic,
        dataset: T2SDataset,
        cfg: GPTTrainConfig,
        env: DistEnv,
        exp_name: str,
        official_config: dict | None = None,
        weights_dir: Path | None = None,
    ) -> None:
        from torch.nn.parallel import DistributedDataParallel as DDP

        self.model, self.dataset, self.cfg, self.env = model.to(env.device).train(), dataset, cfg, env
        self.exp_name, self.official_config, self.weights_dir = exp_name, official_config, weights_dir
        teacher = _Teacher(self.model)
        self.teacher = DDP(teacher) if env.distributed else teacher
        self.sampler = BucketBatchSampler(
            dataset.lengths(),
            cfg.batch_size,
            max_tokens=cfg.max_tokens_per_batch,
            seed=cfg.seed,
            rank=env.rank,
            world_size=env.world_size,
        )
        self.optimizer = make_optimizer(self.model, cfg)
        total = cfg.epochs * -(-len(self.sampler) // cfg.grad_accum)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, total, cfg))
        self.scaler = grad_scaler(cfg.precision, env.device)

    # ---- TrainTask ----
    def _stateful(self) -> dict[str, Any]:
        return {"model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler}

    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    def batches(self, epoch: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        return DataLoader(
            self.dataset, batch_sampler=self.sampler, collate_fn=collate_t2s, num_workers=self.cfg.num_workers
        )

    def micro_loss(self, batch: T2SBatch) -> tuple[Tensor, dict[str, float]]:
        b = batch.to(self.env.device)
        with autocast(self.cfg.precision, self.env.device):
            logits, targets = self.teacher(b.phones, b.phone_lens, b.bert, b.codes, b.code_lens)
        loss, _ = token_loss(logits, targets, b.code_lens, self.cfg)
        mask = target_mask(b.code_lens, targets.shape[1])
        acc = ((logits.argmax(-1) == targets) & mask).sum() / mask.sum()
        metrics = {"loss/ce": float(loss.detach()), "acc/top1": float(acc)}
        if self.cfg.dpo:
            rej, rej_lens = rejected_codes(b.codes, b.code_lens, self.model.config.eos)
            with autocast(self.cfg.precision, self.env.device):
                rlogits, rtargets = self.teacher(b.phones, b.phone_lens, b.bert, rej, rej_lens)
            dpo = dpo_loss(
                sequence_logp(logits, targets, b.code_lens),
                sequence_logp(rlogits, rtargets, rej_lens),
                self.cfg.dpo_beta,
            )
            loss = loss + dpo
            metrics["loss/dpo"] = float(dpo.detach())
        return loss, metrics

    def train_step(self, micro_batches: Sequence[T2SBatch]) -> dict[str, float]:
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for i, batch in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            sync = nullcontext() if last or not self.env.distributed else self.teacher.no_sync()
            with sync:
                loss, metrics = self.micro_loss(batch)
                self.scaler.scale(loss / len(micro_batches)).backward()
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v / len(micro_batches)
        self.scaler.unscale_(self.optimizer)
        if self.cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            sums["grad_norm"] = float(norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        sums["lr"] = float(self.scheduler.get_last_lr()[0])
        self.scheduler.step()
        return sums

    def end_epoch(self, epoch: int) -> None:
        pass

    def export(self, run_dir: Path, epoch: int, step: int) -> list[Path]:
        if not self.cfg.export:
            return []
        from fastsovits.train.export import export_gpt_weights

        out = (self.weights_dir or run_dir / "weights") / f"{self.exp_name}-e{epoch}.ckpt"
        export_gpt_weights(self.model, out, epoch=epoch, official_config=self.official_config, train_config=self.cfg)
        return [out]


def symbol_version_of(model: Text2Semantic) -> str:
    return "v1" if model.config.phoneme_vocab_size <= 512 else "v2"


def train_gpt(
    exp_dir: str | Path,
    pretrained: str | Path,
    cfg: GPTTrainConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    weights_dir: str | Path | None = None,
    exp_name: str | None = None,
    resume: bool = True,
) -> TrainResult:
    """Fine-tune the GPT of ``pretrained`` on ``exp_dir`` (the official ``logs/<exp>`` layout).

    Writes ``<run_dir>/state_latest.pt``, ``train_log.jsonl`` and official-format weights
    ``<weights_dir>/<exp>-e<epoch>.ckpt`` (default ``<run_dir>/weights``); ``run_dir``
    defaults to ``<exp_dir>/logs_s1_<symbol version>``.
    """
    from fastsovits.checkpoints.gpt import load_gpt

    cfg = cfg or GPTTrainConfig()
    exp_dir = Path(exp_dir)
    env = init_distributed(cfg.device)
    torch.manual_seed(cfg.seed)
    model, _, info = load_gpt(pretrained, device=env.device)
    version = symbol_version_of(model)
    dataset = T2SDataset(
        exp_dir,
        version,
        max_sec=cfg.max_sec,
        min_ps_ratio=cfg.min_ps_ratio,
        max_ps_ratio=cfg.max_ps_ratio,
        min_items=cfg.min_items,
    )
    for name, why in dataset.skipped.items():
        log.warning("GPT training skips %s: %s", name, why)
    run_dir = Path(run_dir) if run_dir is not None else exp_dir / f"logs_s1_{version}"
    official = dict(info.official_config)
    official.setdefault("data", {})
    official["train"] = {**dict(official.get("train") or {}), "exp_name": exp_name or exp_dir.name}
    task = GPTTask(
        model,
        dataset,
        cfg,
        env,
        exp_name or exp_dir.name,
        official,
        Path(weights_dir) if weights_dir is not None else None,
    )
    return run_task(task, run_dir, cfg, resume=resume, env=env)
