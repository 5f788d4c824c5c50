"""SoVITS (official s2, v1/v2/v2Pro/v2ProPlus) fine-tuning: generator + multi-period discriminator.

Training forward (:func:`generator_forward`), as the official ``SynthesizerTrn.forward``:
style ``ge`` from the target's own spectrogram (+ SV vector for Pro); semantic codes of the
target's HuBERT features through the frozen ``ssl_proj`` + codebook, upsampled x2; prior
(m_p, logs_p) from codes + phones + style; posterior z ~ q(z | spec); flow z -> z_p; a random
``segment_frames`` window of z decoded to audio. Losses in :mod:`fastsovits.train.losses`.

Differences from the official trainer, on purpose: ``ssl_proj`` is truly frozen (officially it
still receives gradients through the straight-through quantizer although ``freeze_quantizer``
is set, which would make the fine-tuned model's semantic codes drift from the GPT's); the style
encoder excludes padded frames exactly (per-row lengths).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm
from torch.utils.data import DataLoader

from fastsovits.audio.dsp import training_mel
from fastsovits.errors import CheckpointError, InvalidParameter
from fastsovits.models.sovits import Synthesizer
from fastsovits.models.sovits_prior import length_mask
from fastsovits.train.config import SovitsTrainConfig
from fastsovits.train.data import HOP, BucketBatchSampler, SovitsBatch, SovitsDataset, collate_sovits
from fastsovits.train.discriminator import MultiPeriodDiscriminator, load_official_discriminator
from fastsovits.train.loop import DistEnv, TrainResult, autocast, grad_scaler, init_distributed, run_task
from fastsovits.train.losses import (
    SpecToMel,
    discriminator_loss,
    feature_loss,
    generator_loss,
    kl_loss,
    random_starts,
    slice_segments,
)

log = logging.getLogger("fastsovits.train")
LOW_LR_PARTS = ("prior.phone_embedding.", "prior.phone_encoder.", "prior.mrte.")  # official text_low_lr_rate
FROZEN_PARTS = ("semantic_proj.", "codebook.")


# ---- weight norm during training ---------------------------------------------------------------
def weight_norm_modules(model: Synthesizer) -> list[str]:
    """Names of our modules that are weight-normalised in the official model (incl. the posterior)."""
    from fastsovits.checkpoints.sovits_keys import key_entries

    return sorted({e.ours.rsplit(".", 1)[0] for e in key_entries(model, include_posterior=True) if e.kind == "g"})


def apply_weight_norm(model: Synthesizer) -> None:
    """Re-parametrise the official weight-normalised convs as g * v / ||v|| (g = ||w||, v = w)."""
    for name in weight_norm_modules(model):
        weight_norm(model.get_submodule(name), "weight", dim=0)


def remove_weight_norm(model: nn.Module) -> None:
    """Fold every weight-norm parametrization back into a plain ``weight`` (in place)."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


def load_posterior(model: Synthesizer, path: str | Path) -> bool:
    """Warm-start the posterior from ``enc_q.*`` weights if the pretrained file has them (plain weights)."""
    from fastsovits.checkpoints.common import HPARAMS_GLOBAL, HParamsStandIn, read_torch_file
    from fastsovits.checkpoints.sovits import fold_weight_norm
    from fastsovits.checkpoints.sovits_keys import key_entries

    weight = read_torch_file(path, extra={HPARAMS_GLOBAL: HParamsStandIn}).obj.get("weight", {})
    entries = [e for e in key_entries(model, include_posterior=True) if e.official.startswith("enc_q.")]
    if not entries or not all(e.official in weight for e in entries):
        return False
    parts: dict[str, dict[str, Tensor]] = {}
    for e in entries:
        t = weight[e.official]
        if tuple(t.shape) != e.shape:
            raise CheckpointError(f"{str(path)!r}: {e.official} has shape {tuple(t.shape)}, expected {e.shape}")
        parts.setdefault(e.ours, {})[e.kind] = t.float()
    state = {k: fold_weight_norm(p["g"], p["v"]) if "g" in p else p["plain"] for k, p in parts.items()}
    model.load_state_dict({**model.state_dict(), **state})
    return True


# ---- forward ------------------------------------------------------------------------------------
@dataclass
class GeneratorOutput:
    wav_hat: Tensor  # [B, 1, seg * hop]
    starts: Tensor  # [B] first latent frame of each row's segment
    z_p: Tensor  # [B, C, W] flow(z)
    m_p: Tensor
    logs_p: Tensor
    logs_q: Tensor
    mask: Tensor  # [B, 1, W]


def generator_forward(
    model: Synthesizer,
    ssl: Tensor,
    spec: Tensor,
    spec_lens: Tensor,
    phones: Tensor,
    phone_lens: Tensor,
    sv: Tensor | None,
    segment_frames: int,
) -> GeneratorOutput:
    """ssl [B, 768, W], spec [B, 1025, W] (W even), phones [B, N], sv [B, 20480] (Pro) -> outputs."""
    c = model.config
    mask = length_mask(spec_lens, spec.shape[2], spec.dtype)  # [B, 1, W]
    ge = model.style_encoder(spec[:, : c.style_bins] * mask, spec_lens)  # [B, gin, 1]
    style = ge
    if c.is_pro:
        ge = model.sv_act(ge + model.sv_proj(sv).unsqueeze(-1))
        style = model.style_to_mrte(ge.transpose(1, 2)).transpose(1, 2)  # [B, 512, 1]
    with torch.no_grad():
        codes = model.extract_latent(ssl.float())[:, 0]  # [B, W / 2] from the frozen projection + codebook
        semantic = model.codebook.decode(codes)  # [B, 768, W / 2]
        if c.frames_per_code > 1:
            semantic = semantic.repeat_interleave(c.frames_per_code, dim=2)  # nearest x2 -> [B, 768, W]
    prior = model.prior(semantic, spec_lens, phones, phone_lens, style)
    z, _, logs_q = model.posterior(spec, mask, ge)
    z_p = model.flow(z, mask, ge)
    starts = random_starts(spec_lens, segment_frames).to(z.device)
    wav_hat = model.vocoder(slice_segments(z, starts, segment_frames), ge)
    return GeneratorOutput(wav_hat, starts, z_p, prior.m, prior.logs, logs_q, mask)


class _Generator(nn.Module):
    """Wraps the synthesizer so DistributedDataParallel sees the training forward as ``forward``."""

    def __init__(self, model: Synthesizer, segment_frames: int) -> None:
        super().__init__()
        self.model, self.segment_frames = model, segment_frames

    def forward(self, ssl, spec, spec_lens, phones, phone_lens, sv) -> GeneratorOutput:
        return generator_forward(self.model, ssl, spec, spec_lens, phones, phone_lens, sv, self.segment_frames)


def generator_param_groups(model: Synthesizer, lr: float, low_rate: float) -> list[dict]:
    base, low = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (low if name.startswith(LOW_LR_PARTS) else base).append(p)
    return [{"params": base, "lr": lr}, {"params": low, "lr": lr * low_rate}]


# ---- task ---------------------------------------------------------------------------------------
class SovitsTask:
    kind = "sovits"

    def __init__(
        self,
        model: Synthesizer,
        disc: MultiPeriodDiscriminator,
        dataset: SovitsDataset,
        cfg: SovitsTrainConfig,
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
        self.segment = cfg.segment_frames or model.config.segment_frames
        for name, p in model.named_parameters():
            if name.startswith(FROZEN_PARTS):
                p.requires_grad_(False)
        self.model = model.to(env.device).train()
        self.disc = disc.to(env.device).train()
        gen = _Generator(self.model, self.segment)
        self.gen = DDP(gen) if env.distributed else gen
        self.disc_ddp = DDP(self.disc) if env.distributed else self.disc
        self.spec_to_mel = SpecToMel().to(env.device)
        self.optim_g = torch.optim.AdamW(
            generator_param_groups(self.model, cfg.lr, cfg.text_low_lr_rate),
            cfg.lr,
            betas=tuple(cfg.betas),
            eps=cfg.eps,
            foreach=True,
        )
        self.optim_d = torch.optim.AdamW(
            self.disc.parameters(), cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, foreach=True
        )
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.optim_g, cfg.lr_decay)
        self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, cfg.lr_decay)
        self.scaler = grad_scaler(cfg.precision, env.device)
        self.sampler = BucketBatchSampler(
            dataset.lengths(),
            cfg.batch_size,
            boundaries=cfg.buckets,
            seed=cfg.seed,
            rank=env.rank,
            world_size=env.world_size,
        )

    # ---- TrainTask ----
    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.model.state_dict(),
            "discriminator": self.disc.state_dict(),
            "optim_g": self.optim_g.state_dict(),
            "optim_d": self.optim_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["generator"])
        self.disc.load_state_dict(state["discriminator"])
        for key, obj in (
            ("optim_g", self.optim_g),
            ("optim_d", self.optim_d),
            ("sched_g", self.sched_g),
            ("sched_d", self.sched_d),
            ("scaler", self.scaler),
        ):
            obj.load_state_dict(state[key])

    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    def batches(self, epoch: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        return DataLoader(
            self.dataset,
            batch_sampler=self.sampler,
            num_workers=self.cfg.num_workers,
            collate_fn=functools.partial(collate_sovits, min_frames=self.segment),
        )

    def _clip(self, params) -> float:
        params = [p for p in params if p.grad is not None]
        limit = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        return float(torch.nn.utils.clip_grad_norm_(params, limit))

    def train_step(self, micro_batches: Sequence[SovitsBatch]) -> dict[str, float]:
        cfg, dev, n = self.cfg, self.env.device, len(micro_batches)
        seg, hop = self.segment, HOP
        outs, reals = [], []
        for batch in micro_batches:
            b = batch.to(dev)
            with autocast(cfg.precision, dev):
                out = self.gen(b.ssl, b.spec, b.spec_lens, b.phones, b.phone_lens, b.sv)
            outs.append((b, out))
            reals.append(slice_segments(b.wav, out.starts * hop, seg * hop))  # [B, 1, seg * hop]
        # discriminator step on detached fakes
        self.optim_d.zero_grad(set_to_none=True)
        m: dict[str, float] = {}
        for (_, out), y in zip(outs, reals):
            with autocast(cfg.precision, dev):
                real, fake, _, _ = self.disc_ddp(y, out.wav_hat.detach())
            loss_d = discriminator_loss(real, fake)
            self.scaler.scale(loss_d / n).backward()
            m["loss/d"] = m.get("loss/d", 0.0) + float(loss_d.detach()) / n
        self.scaler.unscale_(self.optim_d)
        m["grad_norm/d"] = self._clip(self.disc.parameters())
        self.scaler.step(self.optim_d)
        # generator step (the discriminator only passes gradients through)
        self.optim_g.zero_grad(set_to_none=True)
        for p in self.disc.parameters():
            p.requires_grad_(False)
        try:
            for (b, out), y in zip(outs, reals):
                with autocast(cfg.precision, dev):
                    _, fake, fmap_r, fmap_g = self.disc(y, out.wav_hat)
                y_mel = slice_segments(self.spec_to_mel(b.spec), out.starts, seg)
                mel = torch.nn.functional.l1_loss(y_mel, training_mel(out.wav_hat.float().squeeze(1)))
                kl = kl_loss(out.z_p, out.logs_q, out.m_p, out.logs_p, out.mask)
                adv, fm = generator_loss(fake), feature_loss(fmap_r, fmap_g)
                total = adv + cfg.c_fm * fm + cfg.c_mel * mel + cfg.c_kl * kl
                self.scaler.scale(total / n).backward()
                for k, v in (
                    ("loss/g_adv", adv),
                    ("loss/fm", fm),
                    ("loss/mel", mel),
                    ("loss/kl", kl),
                    ("loss/g_total", total),
                ):
                    m[k] = m.get(k, 0.0) + float(v.detach()) / n
        finally:
            for p in self.disc.parameters():
                p.requires_grad_(True)
        self.scaler.unscale_(self.optim_g)
        m["grad_norm/g"] = self._clip(self.model.parameters())
        self.scaler.step(self.optim_g)
        self.scaler.update()
        m["lr"] = float(self.optim_g.param_groups[0]["lr"])
        return m

    def end_epoch(self, epoch: int) -> None:
        self.sched_g.step()
        self.sched_d.step()

    def export(self, run_dir: Path, epoch: int, step: int) -> list[Path]:
        if not self.cfg.export:
            return []
        from fastsovits.train.export import export_sovits_weights

        out = (self.weights_dir or run_dir / "weights") / f"{self.exp_name}_e{epoch}_s{step}.pth"
        return [export_sovits_weights(self.model, out, epoch=epoch, step=step, official_config=self.official_config)]


def build_models(
    pretrained_g: str | Path, pretrained_d: str | Path | None, cfg: SovitsTrainConfig, version: str | None = None
) -> tuple[Synthesizer, MultiPeriodDiscriminator, dict]:
    """Training generator (weight-norm parametrised, with posterior) and discriminator, warm-started."""
    from fastsovits.checkpoints.sovits import load_sovits

    model, config, info = load_sovits(pretrained_g, version, with_posterior=True)
    if load_posterior(model, pretrained_g):
        log.info("posterior encoder warm-started from %s", pretrained_g)
    apply_weight_norm(model)
    disc = MultiPeriodDiscriminator(config.version, cfg.disc_channels, cfg.disc_scale_channels)
    if pretrained_d is not None:
        missing = load_official_discriminator(disc, pretrained_d)
        if missing:
            log.warning("discriminator keys not in %s (kept random): %s", pretrained_d, missing[:4])
    return model, disc, dict(info.official_config)


def train_sovits(
    exp_dir: str | Path,
    pretrained_g: str | Path,
    cfg: SovitsTrainConfig | None = None,
    *,
    pretrained_d: str | Path | None = None,
    version: str | None = None,
    run_dir: str | Path | None = None,
    weights_dir: str | Path | None = None,
    exp_name: str | None = None,
    resume: bool = True,
) -> TrainResult:
    """Fine-tune the SoVITS generator of ``pretrained_g`` (and discriminator ``pretrained_d``) on ``exp_dir``.

    Writes ``<run_dir>/state_latest.pt``, ``train_log.jsonl`` and official-format weights
    ``<weights_dir>/<exp>_e<epoch>_s<step>.pth``; ``run_dir`` defaults to ``<exp_dir>/logs_s2_<version>``.
    """
    cfg = cfg or SovitsTrainConfig()
    exp_dir = Path(exp_dir)
    env = init_distributed(cfg.device)
    torch.manual_seed(cfg.seed)
    model, disc, official = build_models(pretrained_g, pretrained_d, cfg, version)
    dataset = SovitsDataset(
        exp_dir, model.config.version, min_sec=cfg.min_sec, max_sec=cfg.max_sec, min_items=cfg.min_items
    )
    for name, why in dataset.skipped.items():
        log.warning("SoVITS training skips %s: %s", name, why)
    run_dir = Path(run_dir) if run_dir is not None else exp_dir / f"logs_s2_{model.config.version}"
    official["name"] = exp_name or exp_dir.name
    task = SovitsTask(
        model,
        disc,
        dataset,
        cfg,
        env,
        exp_name or exp_dir.name,
        official,
        Path(weights_dir) if weights_dir is not None else None,
    )
    return run_task(task, run_dir, cfg, resume=resume, env=env)
