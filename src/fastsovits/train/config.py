"""Training configurations: dataclasses of plain values, overridable from YAML.

A YAML override file is a flat mapping ``field: value`` (ints, floats, strings, bools, lists of
those); unknown fields and wrong types raise :class:`InvalidParameter` naming the field. No
object graphs: the YAML never names classes or builds objects.

Defaults follow the official WebUI fine-tuning recipes (``configs/s1longer-v2.yaml`` and
``configs/s2.json``) except where a field's comment says otherwise.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from fastsovits.errors import InvalidParameter

PRECISIONS = ("fp32", "bf16", "fp16")
LR_SCHEDULES = ("cosine", "constant")
# official s2 DistributedBucketSampler boundaries (spectrogram frames, hop 640)
SOVITS_BUCKETS = (32, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700, 1800, 1900)


@dataclass(frozen=True)
class CommonTrainConfig:
    epochs: int = 8
    batch_size: int = 8
    save_every: int = 1  # epochs between saved states (+ exported weights); the last epoch is always saved
    seed: int = 1234
    precision: str = "fp32"  # "bf16" (autocast, no scaler), "fp16" (autocast + GradScaler, CUDA only), "fp32"
    grad_accum: int = 1  # micro-batches per optimizer step
    log_every: int = 1  # optimizer steps between log lines
    min_items: int = 100  # a dataset with fewer items is repeated max(2, min_items // n) times per epoch (official)
    num_workers: int = 0
    device: str = "auto"  # "auto" = cuda (this rank's device) when available, else cpu
    progress: bool = True  # tqdm bar on rank 0
    export: bool = True  # write official-format weights at every save

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "save_every", "grad_accum", "log_every"):
            if getattr(self, name) < 1:
                raise InvalidParameter(f"{type(self).__name__}.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.min_items < 0 or self.num_workers < 0:
            raise InvalidParameter(f"{type(self).__name__}: min_items and num_workers must be >= 0")
        if self.precision not in PRECISIONS:
            raise InvalidParameter(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GPTTrainConfig(CommonTrainConfig):
    """Text-to-semantic (GPT, official s1) fine-tuning.

    LR schedule (our choice, ``lr_schedule="cosine"``): linear warmup over ``warmup_steps`` to
    ``lr`` then cosine decay to ``lr * min_lr_ratio`` at the last step. The official trainer's
    schedule is hard-wired to a constant 0.002, which keeps the full step size
    until the end of a short fine-tune; decaying lets the last epochs settle.
    ``lr_schedule="constant"`` reproduces the official behaviour.
    """

    epochs: int = 15
    batch_size: int = 8
    lr: float = 0.002
    lr_schedule: str = "cosine"
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.01
    grad_clip: float = 1.0  # max global grad norm (0 = off)
    loss_on_padding: bool = False  # official: True (padded positions also predict EOS; loss then depends on batching)
    loss_reduction: str = "mean"  # "mean" per target token, or the official "sum"
    dpo: bool = False  # add the reference-free DPO loss on corrupted ("repeat"/"lost" span) sequences
    dpo_beta: float = 0.2
    max_sec: float = 54.0  # drop items whose semantic tokens exceed max_sec * 25
    min_ps_ratio: float = 3.0  # phones per second, official filter
    max_ps_ratio: float = 25.0
    max_tokens_per_batch: int = 0  # 0 = batches of batch_size; else also cap sum(phones + codes) per batch

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lr_schedule not in LR_SCHEDULES:
            raise InvalidParameter(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.loss_reduction not in ("mean", "sum"):
            raise InvalidParameter(f"loss_reduction must be 'mean' or 'sum', got {self.loss_reduction!r}")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1 or self.warmup_steps < 0:
            raise InvalidParameter(
                f"bad LR settings: lr={self.lr}, min_lr_ratio={self.min_lr_ratio}, warmup_steps={self.warmup_steps}"
            )
        if len(self.betas) != 2:
            raise InvalidParameter(f"betas must be two floats, got {self.betas!r}")


@dataclass(frozen=True)
class SovitsTrainConfig(CommonTrainConfig):
    """SoVITS (official s2) fine-tuning: generator + multi-period discriminator."""

    epochs: int = 8
    batch_size: int = 32
    lr: float = 1e-4
    betas: tuple[float, float] = (0.8, 0.99)
    eps: float = 1e-9
    lr_decay: float = 0.999875  # ExponentialLR gamma, stepped once per epoch
    text_low_lr_rate: float = 0.4  # phone embedding, phone encoder and MRTE train at lr * this
    c_mel: float = 45.0
    c_kl: float = 1.0
    c_fm: float = 2.0  # feature matching weight (hard-coded 2 officially)
    segment_frames: int = 0  # decoder segment in latent frames; 0 = the model's (32 = 20480 samples)
    min_sec: float = 0.6
    max_sec: float = 54.0
    buckets: tuple[int, ...] = SOVITS_BUCKETS
    grad_clip: float = 0.0  # 0 = off (officially only measured, never clipped)
    disc_channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)  # period-discriminator widths (official)
    disc_scale_channels: tuple[int, ...] = (16, 64, 256, 1024, 1024, 1024)  # scale-discriminator widths

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.lr > 0 or not 0 < self.lr_decay <= 1 or not 0 < self.text_low_lr_rate <= 1:
            raise InvalidParameter(
                f"bad LR settings: lr={self.lr}, lr_decay={self.lr_decay}, text_low_lr_rate={self.text_low_lr_rate}"
            )
        if self.segment_frames < 0 or not 0 <= self.min_sec < self.max_sec:
            raise InvalidParameter(
                f"bad segment/duration settings: segment_frames={self.segment_frames}, "
                f"min_sec={self.min_sec}, max_sec={self.max_sec}"
            )
        if len(self.disc_channels) != 5 or len(self.disc_scale_channels) != 6:
            raise InvalidParameter("disc_channels needs 5 widths and disc_scale_channels 6")


# official s2_train_v3_lora.py sampler boundaries (the longer buckets are commented out there)
LORA_BUCKETS = (32, 300, 400, 500, 600, 700, 800, 900, 1000)
LORA_RANK_MAX = 1024  # also bounded by the attention width (checked when the adapters are added)


@dataclass(frozen=True)
class SovitsLoraTrainConfig(CommonTrainConfig):
    """SoVITS v3/v4 fine-tuning (official ``s2_train_v3_lora.py``): LoRA on the CFM's DiT attention
    plus the style encoder, bridge and ``wns1``; loss = the CFM flow-matching loss only, no discriminator.

    Defaults: the official trainer and WebUI values for v3/v4 (2 epochs, save every epoch, rank 32).
    """

    epochs: int = 2
    batch_size: int = 4  # the WebUI proposes GPU memory (GB) // 8
    lr: float = 1e-4
    betas: tuple[float, float] = (0.8, 0.99)
    eps: float = 1e-9
    lr_decay: float = 0.999875  # ExponentialLR gamma, stepped once per epoch
    lora_rank: int = 32  # WebUI choices 16 / 32 / 64 / 128; lora_alpha = rank
    min_sec: float = 0.6
    max_sec: float = 54.0
    buckets: tuple[int, ...] = LORA_BUCKETS
    grad_clip: float = 0.0  # 0 = off (officially only measured)
    grad_ckpt: bool = False  # recompute DiT blocks in the backward pass (less memory, slower)
    dit_dropout: float = 0.1  # dropout after the DiT attention and inside its feed-forward (official DiT default)
    shortcut_prob: float = 0.3  # share of steps with the two-step self-consistency target (official)
    prompt_ratio: float = 2 / 3  # the in-context prompt is U(0, 1) * this * the mel length (floored)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.lr > 0 or not 0 < self.lr_decay <= 1:
            raise InvalidParameter(f"bad LR settings: lr={self.lr}, lr_decay={self.lr_decay}")
        if not 1 <= self.lora_rank <= LORA_RANK_MAX:
            raise InvalidParameter(f"lora_rank must be in 1..{LORA_RANK_MAX}, got {self.lora_rank}")
        if not 0 <= self.min_sec < self.max_sec:
            raise InvalidParameter(f"bad duration settings: min_sec={self.min_sec}, max_sec={self.max_sec}")
        for name in ("dit_dropout", "shortcut_prob"):
            if not 0 <= getattr(self, name) < 1:
                raise InvalidParameter(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.prompt_ratio < 1:
            raise InvalidParameter(f"prompt_ratio must be in [0, 1), got {self.prompt_ratio}")
        if len(self.betas) != 2:
            raise InvalidParameter(f"betas must be two floats, got {self.betas!r}")


C = TypeVar("C", bound=CommonTrainConfig)


def _coerce(cls_name: str, name: str, tp: Any, value: Any) -> Any:
    """Check a YAML value against a field type (plain values only) and convert lists to tuples."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InvalidParameter(f"{cls_name}.{name} must be a list, got {value!r}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        return tuple(_coerce(cls_name, name, inner, v) for v in value)
    if tp is bool:
        if not isinstance(value, bool):
            raise InvalidParameter(f"{cls_name}.{name} must be true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameter(f"{cls_name}.{name} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidParameter(f"{cls_name}.{name} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise InvalidParameter(f"{cls_name}.{name} must be a string, got {value!r}")
        return value
    return value


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def with_overrides(config: C, overrides: dict[str, Any] | None) -> C:
    """A copy of ``config`` with ``overrides`` applied (validated; None values are ignored)."""
    if not overrides:
        return config
    types_ = _field_types(type(config))
    unknown = sorted(k for k in overrides if k not in types_)
    if unknown:
        raise InvalidParameter(f"unknown {type(config).__name__} fields {unknown}; known: {sorted(types_)}")
    values = {k: _coerce(type(config).__name__, k, types_[k], v) for k, v in overrides.items() if v is not None}
    return dataclasses.replace(config, **values)


def load_config(cls: type[C], yaml_path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> C:
    """Defaults of ``cls`` <- the YAML file (flat mapping) <- ``overrides`` (e.g. from the CLI)."""
    config = cls()
    if yaml_path is not None:
        import yaml

        path = Path(yaml_path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise InvalidParameter(f"cannot read config file {str(path)!r}: {e}") from e
        except yaml.YAMLError as e:
            raise InvalidParameter(f"config file {str(path)!r} is not valid YAML: {e}") from e
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InvalidParameter(
                f"config file {str(path)!r} must hold a mapping of fields, got {type(data).__name__}"
            )
        config = with_overrides(config, data)
    return with_overrides(config, overrides)


__all__ = [
    "GPTTrainConfig",
    "SovitsLoraTrainConfig",
    "SovitsTrainConfig",
    "load_config",
    "with_overrides",
]
