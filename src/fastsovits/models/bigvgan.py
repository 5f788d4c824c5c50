"""BigVGAN v2 generator (the v3 vocoder, ``nvidia/bigvgan_v2_24khz_100band_256x``): mel -> 24 kHz audio.

conv_pre (k7) -> per stage: transposed conv (x rate) -> mean of the anti-aliased multi-periodicity
residual blocks -> anti-aliased activation -> conv_post (k7, bias optional) -> clamp to [-1, 1]
(or tanh when ``use_tanh_at_final``). Unlike HiFi-GAN there is no leaky ReLU: every activation is
Snake (``x + sin^2(a x) / a``) or SnakeBeta (``x + sin^2(a x) / b``), per channel, ``a``/``b`` stored
as logarithms when ``snake_logscale``, and wrapped as "anti-aliased": 2x upsampling (zero-stuffing
transposed conv with a kaiser-windowed sinc low-pass, replicate padding), the activation, then the
low-pass and 2x decimation.

Module and parameter names follow the official state dict; the hub file keeps weight norm, folded
into plain weights by :mod:`fastsovits.checkpoints.bigvgan`.

Batching: with ``lengths`` every conv input is zeroed past its row's length and every activation
input is filled with the row's last value (what replicate padding of a lone row sees), at both the
1x and the 2x rate; each row then equals its own unpadded call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fastsovits.errors import InvalidParameter

SNAKE_EPS = 1e-9
AA_RATIO = 2
AA_KERNEL = 12


@dataclass(frozen=True)
class BigVGANConfig:
    """The hub ``config.json`` fields the generator uses (defaults: the official 24 kHz 100-band 256x)."""

    num_mels: int = 100
    upsample_rates: tuple[int, ...] = (4, 4, 2, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (8, 8, 4, 4, 4, 4)
    upsample_initial_channel: int = 1536
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    activation: str = "snakebeta"
    snake_logscale: bool = True
    use_tanh_at_final: bool = False
    use_bias_at_final: bool = False
    sampling_rate: int = 24000
    hop_size: int = 256

    def __post_init__(self) -> None:
        if self.resblock not in ("1", "2"):
            raise InvalidParameter(f"BigVGAN resblock must be '1' or '2', got {self.resblock!r}")
        if self.activation not in ("snake", "snakebeta"):
            raise InvalidParameter(f"BigVGAN activation must be 'snake' or 'snakebeta', got {self.activation!r}")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise InvalidParameter("BigVGAN upsample_rates and upsample_kernel_sizes differ in length")
        if self.upsample_initial_channel >> len(self.upsample_rates) < 1:
            raise InvalidParameter(
                f"BigVGAN upsample_initial_channel {self.upsample_initial_channel} cannot be halved "
                f"{len(self.upsample_rates)} times"
            )

    @property
    def upsample_factor(self) -> int:
        return math.prod(self.upsample_rates)

    @classmethod
    def from_json(cls, h: Mapping[str, Any]) -> BigVGANConfig:
        try:
            return cls(
                num_mels=int(h["num_mels"]),
                upsample_rates=tuple(int(v) for v in h["upsample_rates"]),
                upsample_kernel_sizes=tuple(int(v) for v in h["upsample_kernel_sizes"]),
                upsample_initial_channel=int(h["upsample_initial_channel"]),
                resblock=str(h["resblock"]),
                resblock_kernel_sizes=tuple(int(v) for v in h["resblock_kernel_sizes"]),
                resblock_dilation_sizes=tuple(tuple(int(v) for v in d) for d in h["resblock_dilation_sizes"]),
                activation=str(h["activation"]),
                snake_logscale=bool(h.get("snake_logscale", True)),
                use_tanh_at_final=bool(h.get("use_tanh_at_final", True)),
                use_bias_at_final=bool(h.get("use_bias_at_final", True)),
                sampling_rate=int(h.get("sampling_rate", 24000)),
                hop_size=int(h.get("hop_size", 256)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidParameter(f"BigVGAN config.json lacks or mistypes a field: {e}") from e


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel: int) -> Tensor:
    """[1, 1, kernel] low-pass: kaiser-windowed sinc at ``cutoff`` (fraction of the sample rate), sum 1."""
    half = kernel // 2
    delta_f = 4 * half_width
    a = 2.285 * (half - 1) * math.pi * delta_f + 7.95
    if a > 50.0:
        beta = 0.1102 * (a - 8.7)
    elif a >= 21.0:
        beta = 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel, beta=beta, periodic=False)
    time = torch.arange(-half, half) + 0.5 if kernel % 2 == 0 else torch.arange(kernel) - half
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return (taps / taps.sum()).view(1, 1, kernel)


def fill_tail(x: Tensor, lengths: Tensor | None) -> Tensor:
    """x [B, C, T]: every frame past a row's length takes the row's last real frame."""
    if lengths is None:
        return x
    idx = torch.minimum(torch.arange(x.shape[2], device=x.device).view(1, -1), (lengths - 1).view(-1, 1))
    return x.gather(2, idx.unsqueeze(1).expand(-1, x.shape[1], -1))


def zero_tail(x: Tensor, lengths: Tensor | None) -> Tensor:
    if lengths is None:
        return x
    mask = torch.arange(x.shape[2], device=x.device).view(1, 1, -1) < lengths.view(-1, 1, 1)
    return x * mask.to(x.dtype)


class Snake(nn.Module):
    """x + sin^2(alpha x) / beta per channel (beta is alpha for plain Snake)."""

    def __init__(self, channels: int, with_beta: bool, logscale: bool) -> None:
        super().__init__()
        init = torch.zeros(channels) if logscale else torch.ones(channels)
        self.logscale = logscale
        self.alpha = nn.Parameter(init.clone())
        self.beta = nn.Parameter(init.clone()) if with_beta else None

    def forward(self, x: Tensor) -> Tensor:
        alpha = self.alpha.view(1, -1, 1)
        beta = alpha if self.beta is None else self.beta.view(1, -1, 1)
        if self.logscale:
            alpha, beta = torch.exp(alpha), torch.exp(beta)
        return x + (1.0 / (beta + SNAKE_EPS)) * torch.sin(x * alpha).pow(2)


class UpSample(nn.Module):
    filter: Tensor

    def __init__(self, ratio: int = AA_RATIO, kernel: int = AA_KERNEL) -> None:
        super().__init__()
        self.ratio = ratio
        self.pad = kernel // ratio - 1
        self.crop_left = self.pad * ratio + (kernel - ratio) // 2
        self.crop_right = self.pad * ratio + (kernel - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(c, -1, -1), stride=self.ratio, groups=c)
        return x[..., self.crop_left : -self.crop_right]


class LowPass(nn.Module):
    filter: Tensor

    def __init__(self, ratio: int = AA_RATIO, kernel: int = AA_KERNEL) -> None:
        super().__init__()
        self.stride = ratio
        self.pad_left = kernel // 2 - int(kernel % 2 == 0)
        self.pad_right = kernel // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(c, -1, -1), stride=self.stride, groups=c)


class DownSample(nn.Module):
    def __init__(self, ratio: int = AA_RATIO, kernel: int = AA_KERNEL) -> None:
        super().__init__()
        self.lowpass = LowPass(ratio, kernel)

    def forward(self, x: Tensor) -> Tensor:
        return self.lowpass(x)


class AntiAliasedActivation(nn.Module):
    """2x upsample -> Snake -> low-pass + 2x decimate (length unchanged)."""

    def __init__(self, act: Snake) -> None:
        super().__init__()
        self.act = act
        self.upsample = UpSample()
        self.downsample = DownSample()

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        x = self.act(self.upsample(fill_tail(x, lengths)))
        x = fill_tail(x, None if lengths is None else lengths * AA_RATIO)
        return self.downsample(x)


def _conv(channels: int, kernel: int, dilation: int) -> nn.Conv1d:
    return nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=(kernel * dilation - dilation) // 2)


class AMPBlock(nn.Module):
    """Residual steps act -> dilated conv (-> act -> plain conv for block "1")."""

    def __init__(self, c: BigVGANConfig, channels: int, kernel: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.two_convs = c.resblock == "1"
        if self.two_convs:
            self.convs1 = nn.ModuleList(_conv(channels, kernel, d) for d in dilations)
            self.convs2 = nn.ModuleList(_conv(channels, kernel, 1) for _ in dilations)
        else:
            self.convs = nn.ModuleList(_conv(channels, kernel, d) for d in dilations)
        n = len(dilations) * (2 if self.two_convs else 1)
        beta = c.activation == "snakebeta"
        self.activations = nn.ModuleList(
            AntiAliasedActivation(Snake(channels, beta, c.snake_logscale)) for _ in range(n)
        )

    def forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        if self.two_convs:
            acts = self.activations
            for i, (c1, c2) in enumerate(zip(self.convs1, self.convs2)):
                h = c1(zero_tail(acts[2 * i](x, lengths), lengths))
                h = c2(zero_tail(acts[2 * i + 1](h, lengths), lengths))
                x = x + h
            return x
        for conv, act in zip(self.convs, self.activations):
            x = x + conv(zero_tail(act(x, lengths), lengths))
        return x


class BigVGAN(nn.Module):
    def __init__(self, config: BigVGANConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.n_kernels = len(c.resblock_kernel_sizes)
        ch = c.upsample_initial_channel
        self.conv_pre = nn.Conv1d(c.num_mels, ch, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes)):
            cin, cout = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(nn.ModuleList([nn.ConvTranspose1d(cin, cout, k, u, padding=(k - u) // 2)]))
            for rk, rd in zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes):
                self.resblocks.append(AMPBlock(c, cout, rk, rd))
        last = ch // 2 ** len(c.upsample_rates)
        self.activation_post = AntiAliasedActivation(Snake(last, c.activation == "snakebeta", c.snake_logscale))
        self.conv_post = nn.Conv1d(last, 1, 7, padding=3, bias=c.use_bias_at_final)

    def _up(self, i: int) -> nn.ConvTranspose1d:
        return cast(nn.ConvTranspose1d, cast(nn.ModuleList, self.ups[i])[0])

    def _up_length(self, i: int, lengths: Tensor) -> Tensor:
        """Valid length after transposed conv ``i`` (the standard output-length formula)."""
        k, s = self.config.upsample_kernel_sizes[i], self.config.upsample_rates[i]
        return (lengths - 1) * s - 2 * ((k - s) // 2) + k

    def output_lengths(self, lengths: Tensor) -> Tensor:
        for i in range(len(self.ups)):
            lengths = self._up_length(i, lengths)
        return lengths

    def forward(self, mel: Tensor, lengths: Tensor | None = None) -> Tensor:
        """mel: [B, num_mels, T] (zero past each length), lengths: [B] -> wav [B, 1, T * prod(rates)]."""
        if lengths is not None and bool((lengths >= mel.shape[2]).all()):
            lengths = None
        x = self.conv_pre(zero_tail(mel, lengths))
        for i in range(len(self.ups)):
            x = self._up(i)(zero_tail(x, lengths))
            if lengths is not None:
                lengths = self._up_length(i, lengths)
            blocks = self.resblocks[i * self.n_kernels : (i + 1) * self.n_kernels]
            acc = blocks[0](x, lengths)
            for block in blocks[1:]:
                acc = acc + block(x, lengths)
            x = acc / self.n_kernels
        x = self.conv_post(zero_tail(self.activation_post(x, lengths), lengths))
        x = torch.tanh(x) if self.config.use_tanh_at_final else torch.clamp(x, min=-1.0, max=1.0)
        return zero_tail(x, lengths)
