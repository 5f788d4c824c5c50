"""HiFi-GAN generator (the SoVITS ``dec``): latent frames -> waveform.

conv_in (k7) + cond(style) -> per stage: leaky_relu(0.1) -> transposed conv (x rate) -> mean of
the multi-receptive-field residual blocks -> leaky_relu(0.01) -> conv_out (k7) -> tanh.

Batching: with ``lengths`` every conv input is zeroed past its row's length, which makes each row
equal to decoding it alone (a conv sees zeros there either way); without it no masking happens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SLOPE = 0.1  # leaky ReLU slope inside the generator; the last activation uses torch's default 0.01


def _same_pad(kernel: int, dilation: int) -> int:
    return (kernel * dilation - dilation) // 2


def _time_mask(lengths: Tensor, width: int, dtype: torch.dtype) -> Tensor:
    return (torch.arange(width, device=lengths.device) < lengths.view(-1, 1)).to(dtype).unsqueeze(1)  # [B, 1, T]


def _masked(x: Tensor, mask: Tensor | None) -> Tensor:
    return x if mask is None else x * mask


class ResBlock1(nn.Module):
    """Pairs (dilated conv, plain conv), each pair a residual step."""

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.dilated = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same_pad(kernel, d)) for d in dilations
        )
        self.plain = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=_same_pad(kernel, 1)) for _ in dilations
        )

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        for c1, c2 in zip(self.dilated, self.plain):
            h = c1(_masked(F.leaky_relu(x, SLOPE), mask))
            x = c2(_masked(F.leaky_relu(h, SLOPE), mask)) + x
        return x


class ResBlock2(nn.Module):
    """One dilated conv per residual step."""

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.dilated = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same_pad(kernel, d)) for d in dilations
        )

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        for c in self.dilated:
            x = c(_masked(F.leaky_relu(x, SLOPE), mask)) + x
        return x


class HifiGan(nn.Module):
    def __init__(
        self,
        in_channels: int,
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        upsample_rates: Sequence[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: Sequence[int],
        gin_channels: int = 0,
        out_bias: bool = False,
    ) -> None:
        super().__init__()
        if resblock not in ("1", "2"):
            raise ValueError(f"resblock must be '1' or '2', got {resblock!r}")
        block = ResBlock1 if resblock == "1" else ResBlock2
        self.n_kernels = len(resblock_kernel_sizes)
        self.rates = tuple(upsample_rates)
        self.conv_in = nn.Conv1d(in_channels, upsample_initial_channel, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for rate, kernel in zip(upsample_rates, upsample_kernel_sizes):
            self.ups.append(nn.ConvTranspose1d(ch, ch // 2, kernel, rate, padding=(kernel - rate) // 2))
            ch //= 2
        for i in range(len(self.ups)):
            c = upsample_initial_channel // 2 ** (i + 1)
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block(c, k, d))
        self.conv_out = nn.Conv1d(ch, 1, 7, padding=3, bias=out_bias)
        self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1) if gin_channels else None

    def upsampled_lengths(self, lengths: Tensor) -> list[Tensor]:
        """Per-row valid length after each transposed conv (the standard output-length formula)."""
        out = []
        for up in self.ups:
            (k,), (s,), (p,) = up.kernel_size, up.stride, up.padding
            lengths = (lengths - 1) * s - 2 * p + k
            out.append(lengths)
        return out

    def forward(self, x: Tensor, g: Tensor | None = None, lengths: Tensor | None = None) -> Tensor:
        """x: [B, C, T] (zero past each length), g: [B or 1, gin, 1], lengths: [B] -> [B, 1, T * prod(rates)]."""
        mask = None if lengths is None else _time_mask(lengths, x.shape[2], x.dtype)
        ups_lengths = None if lengths is None else self.upsampled_lengths(lengths)
        x = self.conv_in(_masked(x, mask))
        if g is not None and self.cond is not None:
            x = x + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(_masked(F.leaky_relu(x, SLOPE), mask))
            if ups_lengths is not None:
                mask = _time_mask(ups_lengths[i], x.shape[2], x.dtype)
            blocks = self.resblocks[i * self.n_kernels : (i + 1) * self.n_kernels]
            acc = blocks[0](x, mask)
            for block in blocks[1:]:
                acc = acc + block(x, mask)
            x = acc / self.n_kernels
        x = self.conv_out(_masked(F.leaky_relu(x), mask))
        return _masked(torch.tanh(x), mask)
