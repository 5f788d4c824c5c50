"""SoVITS v3 / v4 (official ``SynthesizerTrnV3``): semantic codes + phones + style -> mel features.

The text side is the v2 prior encoder (content encoder, phone encoder, MRTE with the style vector,
fused encoder, speed change); the style vector ``ge`` comes from the reference spectrogram
(first 704 bins). :meth:`SynthesizerV3.encode_features` (official ``decode_encp``) then runs

    fused-encoder output (50 Hz) -> bridge (1x1 conv + leaky ReLU) -> nearest upsampling
    (x1.875 for v3: 93.75 Hz = 24000/256; x2 for v4: 100 Hz = 32000/320) -> ``wns1``
    (1x1 conv, WaveNet conditioned on ``ge``, 1x1 conv) -> features [B, 512, T_mel].

``wns1``'s mask covers ``int(T25 * 3.875)`` (v3) / ``int(T25 * 4)`` (v4) frames, divided by the
speed (+1) when speed != 1, capped at the feature length; frames past it are zero (it matters for
v4 at speed != 1, where the last frame is masked). The CFM (:mod:`fastsovits.models.cfm`) turns
features into mel; ``linear_mel`` is a training leftover carried so files round-trip.

Rows of different lengths batch: each row equals its own single-row call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fastsovits.errors import InvalidInput, InvalidParameter
from fastsovits.models.cfm import CFM
from fastsovits.models.dit import DiTConfig
from fastsovits.models.ref_encoder import StyleEncoder
from fastsovits.models.sovits import N_SYMBOLS, _speeds, as_plain_dict
from fastsovits.models.sovits_modules import WaveNet
from fastsovits.models.sovits_prior import PriorEncoder, length_mask
from fastsovits.models.sovits_quantizer import SemanticCodebook

V3_VERSIONS = ("v3", "v4")
MEL_SCALE = {"v3": 1.875, "v4": 2.0}  # 50 Hz -> mel frame rate
MASK_FACTOR = {"v3": 3.875, "v4": 4.0}  # wns1 mask frames per 25 Hz code (official quirk for v3)
STYLE_BINS = 704
_MODEL_KEYS = (
    "inter_channels",
    "hidden_channels",
    "filter_channels",
    "n_heads",
    "n_layers",
    "kernel_size",
    "p_dropout",
    "gin_channels",
)


@dataclass(frozen=True)
class SovitsV3Config:
    """Architecture of a v3/v4 model; defaults are the official full-size one."""

    version: str = "v4"
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    p_dropout: float = 0.1
    gin_channels: int = 512
    bridge_channels: int = 512  # hard-coded officially (``inter_channels2``)
    wns1_hidden: int = 512
    wns1_layers: int = 8
    wns1_kernel: int = 5
    dit: DiTConfig = field(default_factory=DiTConfig)
    ssl_dim: int = 768
    codebook_size: int = 1024
    mrte_hidden: int = 512
    mrte_heads: int = 4
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # other hps.model entries

    def __post_init__(self) -> None:
        if self.version not in V3_VERSIONS:
            raise InvalidParameter(f"SoVITS v3/v4 version must be one of {V3_VERSIONS}, got {self.version!r}")
        if self.gin_channels != self.mrte_hidden:
            raise InvalidParameter(f"gin_channels must be {self.mrte_hidden} (added inside the MRTE)")
        if self.dit.text_dim != self.bridge_channels:
            raise InvalidParameter(f"DiT text_dim {self.dit.text_dim} != bridge channels {self.bridge_channels}")
        if self.dit.dim % 16 or self.dit.heads * self.dit.dim_head <= 0:
            raise InvalidParameter(f"DiT dim {self.dit.dim} must be a multiple of 16 (grouped position convs)")

    @property
    def n_symbols(self) -> int:
        return N_SYMBOLS["v2"]

    @property
    def mel_scale(self) -> float:
        return MEL_SCALE[self.version]

    @property
    def mel_channels(self) -> int:
        return self.dit.mel_dim

    @classmethod
    def from_official(cls, hps: Mapping[str, Any], version: str, **sizes: Any) -> SovitsV3Config:
        """From an official ``hps`` (or its model section); ``sizes`` are the parts the official code
        hard-codes (wns1 / DiT sizes), read off the weights by the loader."""
        hps = as_plain_dict(hps)
        model = dict(hps.get("model", hps))
        missing = [k for k in _MODEL_KEYS if k not in model]
        if missing:
            raise InvalidParameter(f"official SoVITS config lacks model keys {missing}")
        kw: dict[str, Any] = {k: model[k] for k in _MODEL_KEYS}
        extra = {k: v for k, v in model.items() if k not in _MODEL_KEYS and k != "version"}
        return cls(version=version, extra=extra, **kw, **sizes)

    def to_official(self) -> dict[str, Any]:
        out = {**self.extra, **{k: getattr(self, k) for k in _MODEL_KEYS}}
        out["version"] = self.version
        return out


class MelFeatureEncoder(nn.Module):
    """Official ``wns1``: 1x1 conv -> WaveNet conditioned on the style -> 1x1 conv, all masked."""

    def __init__(self, channels: int, hidden: int, kernel: int, n_layers: int, gin: int) -> None:
        super().__init__()
        self.pre = nn.Conv1d(channels, hidden, 1)
        self.wavenet = WaveNet(hidden, kernel, 1, n_layers, gin)
        self.proj = nn.Conv1d(hidden, channels, 1)

    def forward(self, x: Tensor, mask: Tensor, g: Tensor) -> Tensor:
        h = self.wavenet(self.pre(x) * mask, mask, g)
        return self.proj(h) * mask


@dataclass
class Features:
    """Per-row mel-rate features from :meth:`SynthesizerV3.encode_features`."""

    fea: Tensor  # [B, bridge, T] zero past each row's length
    lengths: Tensor  # [B] int64 frames of each row (including frames the wns1 mask zeroed)
    ge: Tensor  # [B, gin, 1]


class SynthesizerV3(nn.Module):
    def __init__(self, config: SovitsV3Config) -> None:
        super().__init__()
        c = config
        self.config = c
        self.prior = PriorEncoder.from_config(c)
        self.style_encoder = StyleEncoder(STYLE_BINS, c.gin_channels)
        self.semantic_proj = nn.Conv1d(c.ssl_dim, c.ssl_dim, 2, stride=2)
        self.codebook = SemanticCodebook(c.codebook_size, c.ssl_dim)
        self.bridge = nn.Conv1d(c.inter_channels, c.bridge_channels, 1)
        self.mel_encoder = MelFeatureEncoder(
            c.bridge_channels, c.wns1_hidden, c.wns1_kernel, c.wns1_layers, c.gin_channels
        )
        self.linear_mel = nn.Conv1d(c.bridge_channels, c.mel_channels, 1)
        self.cfm = CFM(c.dit)

    @property
    def weight_dtype(self) -> torch.dtype:
        return self.bridge.weight.dtype

    def extract_latent(self, ssl: Tensor) -> Tensor:
        """ssl: [B, ssl_dim, T50] HuBERT features -> codes [B, 1, T25] int64."""
        return self.codebook.encode(self.semantic_proj(ssl.to(self.weight_dtype))).unsqueeze(1)

    def style(self, refer: Tensor, lengths: Tensor | None = None) -> Tensor:
        """refer: [B, >=704, T] linear spectrogram(s) -> ge [B, gin, 1]."""
        if refer.dim() != 3 or refer.shape[1] < STYLE_BINS:
            raise InvalidInput(f"reference spectrogram must be [B, >= {STYLE_BINS}, T], got {tuple(refer.shape)}")
        return self.style_encoder(refer.to(self.weight_dtype), lengths)

    def feature_lengths(self, code_lengths: Sequence[int], speeds: Sequence[float]) -> tuple[list[int], list[int]]:
        """(feature frames, wns1-mask frames) per row for ``code_lengths`` 25 Hz codes."""
        scale, factor = self.config.mel_scale, MASK_FACTOR[self.config.version]
        frames, masked = [], []
        for n, s in zip(code_lengths, speeds):
            n50 = 2 * n if s == 1 else int(2 * n / s) + 1
            frames.append(int(n50 * scale))
            m = int(n * factor) if s == 1 else int(n * factor / s) + 1
            masked.append(min(m, frames[-1]))
        return frames, masked

    @torch.no_grad()
    def encode_features(
        self,
        codes: Tensor,
        phones: Tensor,
        ge: Tensor,
        speed: float | Sequence[float] = 1.0,
        code_lengths: Tensor | None = None,
        phone_lengths: Tensor | None = None,
    ) -> Features:
        """codes [B, 1, T25], phones [B, N], ge [B or 1, gin, 1] -> :class:`Features` (official ``decode_encp``)."""
        if codes.dim() != 3 or codes.shape[1] != 1:
            raise InvalidInput(f"codes must be [B, 1, T], got {tuple(codes.shape)}")
        if phones.dim() != 2 or phones.shape[0] != codes.shape[0]:
            raise InvalidInput(f"phones must be [B={codes.shape[0]}, N], got {tuple(phones.shape)}")
        b, dev = codes.shape[0], codes.device
        speeds = _speeds(speed, b)
        if code_lengths is None:
            code_lengths = torch.full((b,), codes.shape[2], dtype=torch.int64)
        if phone_lengths is None:
            phone_lengths = torch.full((b,), phones.shape[1], dtype=torch.int64)
        ge = ge.to(self.weight_dtype)
        semantic = self.codebook.decode(codes[:, 0]).repeat_interleave(2, dim=2)  # nearest x2 -> 50 Hz
        prior = self.prior(semantic, code_lengths.to(dev) * 2, phones, phone_lengths.to(dev), ge, speeds)
        x = F.leaky_relu(self.bridge(prior.x))
        x = F.interpolate(x, scale_factor=self.config.mel_scale, mode="nearest")
        frames, masked = self.feature_lengths(code_lengths.tolist(), speeds)
        x = x[:, :, : max(frames)]
        mask = length_mask(torch.tensor(masked, device=dev), x.shape[2], x.dtype)
        fea = self.mel_encoder(x, mask, ge)
        return Features(fea, torch.tensor(frames, dtype=torch.int64), ge.expand(b, -1, -1))

    def decode_encp(
        self, codes: Tensor, phones: Tensor, refer: Tensor, ge: Tensor | None = None, speed: float = 1.0
    ) -> tuple[Tensor, Tensor]:
        """The official single-row call: -> (fea [1, 512, T], ge [1, gin, 1])."""
        if ge is None:
            ge = self.style(refer)
        out = self.encode_features(codes, phones, ge, speed)
        return out.fea, out.ge
