"""SoVITS v3/v4 fine-tuning (official ``s2_train_v3_lora.py``): LoRA on the CFM, no discriminator.

* Model: the plain base (``s2Gv3.pth`` / ``gsv-v4-pretrained/s2Gv4.pth`` or a full fine-tune),
  loaded with :func:`fastsovits.checkpoints.sovits_v3.load_sovits_v3`; LoRA adapters of rank ``r``
  (alpha = r) on the DiT attention (:mod:`fastsovits.train.lora`). Trained: the adapters, the
  style encoder (``ref_enc``), ``bridge``, ``wns1`` (weight-normalised convs as ``weight_g`` /
  ``weight_v`` parametrizations again) and ``linear_mel`` (which no loss reaches; it is carried,
  as officially). Frozen: ``ssl_proj``, the codebook, the prior (``enc_p``, also kept in eval
  mode) and every base weight of the CFM.
* Data: the ``logs/<exp>/`` folder :class:`~fastsovits.train.data.SovitsDataset` reads, plus each
  item's mel at the version's rate (v3: 24 kHz resampled, 1024/256/1024; v4: 32 kHz,
  1280/320/1280; 100 bands, log, scaled to [-1, 1] with -12 / 2), from the whole ``5-wav32k`` file.
* Loss: :func:`fastsovits.train.cfm_loss.flow_matching_loss` on :func:`~fastsovits.train.cfm_loss.mel_features`.
  AdamW on the trained tensors (one learning rate), ExponentialLR per epoch, GradScaler for fp16.
* Export: the official LoRA file ``<exp>_e<epoch>_s<step>_l<rank>.pth`` (header ``03`` / ``04``),
  which loads over its base (:func:`~fastsovits.train.lora.export_lora_weights`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm
from torch.utils.data import DataLoader

from fastsovits.errors import InvalidParameter
from fastsovits.models.sovits_v3 import SynthesizerV3
from fastsovits.train import layout as L
from fastsovits.train.cfm_loss import (
    enable_dit_dropout,
    enable_grad_checkpointing,
    flow_matching_loss,
    mel_features,
    random_prompt_lengths,
)
from fastsovits.train.config import SovitsLoraTrainConfig
from fastsovits.train.data import SSL_DIM, BucketBatchSampler, SovitsDataset
from fastsovits.train.loop import (
    DistEnv,
    StatefulParts,
    TrainResult,
    autocast,
    grad_scaler,
    init_distributed,
    run_task,
)
from fastsovits.train.lora import add_lora, export_lora_weights, lora_rank_of

log = logging.getLogger("fastsovits.train")
TRAINED_PARTS = ("style_encoder.", "bridge.", "mel_encoder.", "linear_mel.")  # besides the LoRA adapters
EVAL_PARTS = ("semantic_proj", "codebook", "prior")  # frozen and run without dropout


# ---- data -------------------------------------------------------------------------------------
def target_mel(wav32k: Tensor, version: str) -> Tensor:
    """[1, S] float 32 kHz audio -> the normalised 100-band training mel [100, T] of ``version``."""
    from fastsovits.audio.dsp import mel_v3, mel_v4, norm_spec

    if version == "v3":
        from fastsovits.audio.io import resample

        wav24 = torch.from_numpy(resample(wav32k[0].numpy(), L.SAMPLE_RATE, 24000)).unsqueeze(0)
        return norm_spec(mel_v3(wav24))[0]
    return norm_spec(mel_v4(wav32k))[0]


class SovitsV3Dataset(SovitsDataset):
    """:class:`SovitsDataset` items with the target mel of ``version`` and without the waveform."""

    def __init__(self, exp_dir: str | Path, version: str, **kw: Any) -> None:
        super().__init__(exp_dir, version, **kw)
        self.version = version

    def __getitem__(self, i: int) -> dict:
        row = super().__getitem__(i)
        wav = torch.from_numpy(L.read_wav32k(self.items[i].wav).astype("float32") / 32768.0).unsqueeze(0)
        del row["wav"]
        row["mel"] = target_mel(wav, self.version)
        return row


@dataclass
class SovitsV3Batch:
    ssl: Tensor  # [B, 768, W]
    spec: Tensor  # [B, 1025, W]
    spec_lens: Tensor  # [B]
    mel: Tensor  # [B, 100, M]
    mel_lens: Tensor  # [B]
    phones: Tensor  # [B, N]
    phone_lens: Tensor  # [B]
    names: list[str]

    def to(self, device: torch.device | str) -> SovitsV3Batch:
        t = (self.ssl, self.spec, self.spec_lens, self.mel, self.mel_lens, self.phones, self.phone_lens)
        return SovitsV3Batch(*(x.to(device) for x in t), self.names)


def collate_v3(rows: Sequence[dict]) -> SovitsV3Batch:
    """Right-pad to an even spectrogram width (the codes are at half that rate) and the longest mel."""
    b = len(rows)
    w = max(r["spec"].shape[1] for r in rows)
    w += w % 2
    m = max(r["mel"].shape[1] for r in rows)
    n = max(len(r["phones"]) for r in rows)
    ssl, spec = torch.zeros(b, SSL_DIM, w), torch.zeros(b, rows[0]["spec"].shape[0], w)
    mel, phones = torch.zeros(b, rows[0]["mel"].shape[0], m), torch.zeros(b, n, dtype=torch.long)
    for i, r in enumerate(rows):
        k = r["spec"].shape[1]
        ssl[i, :, :k], spec[i, :, :k] = r["ssl"], r["spec"]
        mel[i, :, : r["mel"].shape[1]] = r["mel"]
        phones[i, : len(r["phones"])] = r["phones"]
    return SovitsV3Batch(
        ssl,
        spec,
        torch.tensor([r["spec"].shape[1] for r in rows]),
        mel,
        torch.tensor([r["mel"].shape[1] for r in rows]),
        phones,
        torch.tensor([len(r["phones"]) for r in rows]),
        [r["name"] for r in rows],
    )


# ---- model --------------------------------------------------------------------------------------
def cfm_step_loss(model: SynthesizerV3, batch: SovitsV3Batch, cfg: SovitsLoraTrainConfig) -> Tensor:
    """One batch's CFM loss (random times, noise, prompts and shortcut coin from torch's generator)."""
    fea, _ = mel_features(model, batch.ssl, batch.spec, batch.spec_lens, batch.phones, batch.phone_lens, batch.mel_lens)
    width = min(batch.mel.shape[2], fea.shape[2])
    lengths = batch.mel_lens.clamp(max=width)
    prompts = random_prompt_lengths(batch.mel_lens, cfg.prompt_ratio).clamp(max=lengths)
    mu = fea[:, :, :width].transpose(1, 2)
    return flow_matching_loss(model.cfm.estimator, batch.mel[:, :, :width], lengths, prompts, mu, cfg.shortcut_prob)


class _CFMTrainer(nn.Module):
    """Wraps the model so DistributedDataParallel sees the training loss as ``forward``."""

    def __init__(self, model: SynthesizerV3, cfg: SovitsLoraTrainConfig) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, batch: SovitsV3Batch) -> Tensor:
        return cfm_step_loss(self.model, batch, self.cfg)


def weight_norm_modules(model: SynthesizerV3) -> list[str]:
    """Our modules whose weight is stored as ``weight_g`` / ``weight_v`` officially (``wns1``'s WaveNet)."""
    from fastsovits.checkpoints.sovits_v3 import v3_key_entries

    return sorted({e.ours.rsplit(".", 1)[0] for e in v3_key_entries(model) if e.kind == "g"})


def prepare_lora_model(model: SynthesizerV3, cfg: SovitsLoraTrainConfig) -> SynthesizerV3:
    """A loaded plain v3/v4 model -> the training model (weight norm, adapters, frozen parts, dropout)."""
    for name in weight_norm_modules(model):
        weight_norm(model.get_submodule(name), "weight", dim=0)
    model.requires_grad_(False)
    add_lora(model, cfg.lora_rank)
    for name, p in model.named_parameters():
        if name.startswith(TRAINED_PARTS) or ".lora_A." in name or ".lora_B." in name:
            p.requires_grad_(True)
    enable_dit_dropout(model.cfm.estimator, cfg.dit_dropout)
    if cfg.grad_ckpt:
        enable_grad_checkpointing(model.cfm.estimator)
    return model


def train_mode(model: SynthesizerV3) -> None:
    model.train()
    for name in EVAL_PARTS:
        model.get_submodule(name).eval()


def build_lora_model(
    pretrained: str | Path, cfg: SovitsLoraTrainConfig, version: str | None = None
) -> tuple[SynthesizerV3, dict]:
    """Load a plain v3/v4 base and make it the LoRA training model; returns it and the base's ``hps``."""
    from fastsovits.checkpoints.sovits import detect_sovits_version_fast
    from fastsovits.checkpoints.sovits_v3 import load_sovits_v3

    if detect_sovits_version_fast(pretrained)[2]:
        raise InvalidParameter(
            f"{Path(pretrained).name} is a LoRA file; LoRA training starts from a plain v3/v4 model "
            "(official: s2Gv3.pth / gsv-v4-pretrained/s2Gv4.pth)"
        )
    model, _, info = load_sovits_v3(pretrained, version)
    return prepare_lora_model(model, cfg), dict(info.official_config)


# ---- task ---------------------------------------------------------------------------------------
class SovitsLoraTask(StatefulParts):
    kind = "sovits_lora"

    def __init__(
        self,
        model: SynthesizerV3,
        dataset: SovitsV3Dataset,
        cfg: SovitsLoraTrainConfig,
        env: DistEnv,
        exp_name: str,
        official_config: dict | None = None,
        weights_dir: Path | None = None,
    ) -> None:
        from torch.nn.parallel import DistributedDataParallel as DDP

        if env.distributed and cfg.grad_accum > 1:
            raise InvalidParameter("SoVITS training with several processes does not support grad_accum > 1")
        self.cfg, self.env, self.dataset, self.exp_name = cfg, env, dataset, exp_name
        self.official_config, self.weights_dir = official_config, weights_dir
        self.model = model.to(env.device)
        train_mode(self.model)
        trainer = _CFMTrainer(self.model, cfg)
        # linear_mel is trained officially but no loss reaches it: DDP must tolerate unused parameters
        self.trainer = DDP(trainer, find_unused_parameters=True) if env.distributed else trainer
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optim = torch.optim.AdamW(self.params, cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, foreach=True)
        self.sched = torch.optim.lr_scheduler.ExponentialLR(self.optim, cfg.lr_decay)
        self.scaler = grad_scaler(cfg.precision, env.device)
        self.sampler = BucketBatchSampler(
            dataset.lengths(),
            cfg.batch_size,
            boundaries=cfg.buckets,
            seed=cfg.seed,
            rank=env.rank,
            world_size=env.world_size,
        )

    def _stateful(self) -> dict[str, Any]:
        return {"model": self.model, "optim": self.optim, "sched": self.sched, "scaler": self.scaler}

    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    def batches(self, epoch: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        return DataLoader(
            self.dataset, batch_sampler=self.sampler, num_workers=self.cfg.num_workers, collate_fn=collate_v3
        )

    def train_step(self, micro_batches: Sequence[SovitsV3Batch]) -> dict[str, float]:
        cfg, dev, n = self.cfg, self.env.device, len(micro_batches)
        self.optim.zero_grad(set_to_none=True)
        total = 0.0
        for batch in micro_batches:
            with autocast(cfg.precision, dev):
                loss = self.trainer(batch.to(dev))
            self.scaler.scale(loss / n).backward()
            total += float(loss.detach()) / n
        self.scaler.unscale_(self.optim)
        limit = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
        grads = [p for p in self.params if p.grad is not None]
        norm = float(torch.nn.utils.clip_grad_norm_(grads, limit))
        self.scaler.step(self.optim)
        self.scaler.update()
        return {"loss/cfm": total, "grad_norm": norm, "lr": float(self.optim.param_groups[0]["lr"])}

    def end_epoch(self, epoch: int) -> None:
        self.sched.step()

    def export(self, run_dir: Path, epoch: int, step: int) -> list[Path]:
        if not self.cfg.export:
            return []
        rank = lora_rank_of(self.model)
        out = (self.weights_dir or run_dir / "weights") / f"{self.exp_name}_e{epoch}_s{step}_l{rank}.pth"
        return [export_lora_weights(self.model, out, epoch=epoch, step=step, official_config=self.official_config)]


def train_sovits_v3(
    exp_dir: str | Path,
    pretrained: str | Path,
    cfg: SovitsLoraTrainConfig | None = None,
    *,
    version: str | None = None,
    run_dir: str | Path | None = None,
    weights_dir: str | Path | None = None,
    exp_name: str | None = None,
    resume: bool = True,
) -> TrainResult:
    """LoRA fine-tuning of the v3/v4 base ``pretrained`` on ``exp_dir`` (see the module doc).

    Writes ``<run_dir>/state_latest.pt``, ``train_log.jsonl`` and official LoRA files
    ``<weights_dir>/<exp>_e<epoch>_s<step>_l<rank>.pth``; ``run_dir`` defaults to
    ``<exp_dir>/logs_s2_<version>_lora_<rank>`` (the official folder).
    """
    cfg = cfg or SovitsLoraTrainConfig()
    exp_dir = Path(exp_dir)
    env = init_distributed(cfg.device)
    torch.manual_seed(cfg.seed)
    model, official = build_lora_model(pretrained, cfg, version)
    v = model.config.version
    dataset = SovitsV3Dataset(exp_dir, v, min_sec=cfg.min_sec, max_sec=cfg.max_sec, min_items=cfg.min_items)
    for name, why in dataset.skipped.items():
        log.warning("SoVITS %s training skips %s: %s", v, name, why)
    run_dir = Path(run_dir) if run_dir is not None else exp_dir / f"logs_s2_{v}_lora_{cfg.lora_rank}"
    name = exp_name or exp_dir.name
    official["name"] = name
    task = SovitsLoraTask(
        model, dataset, cfg, env, name, official, Path(weights_dir) if weights_dir is not None else None
    )
    return run_task(task, run_dir, cfg, resume=resume, env=env)
