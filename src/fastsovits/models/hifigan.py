"""HiFi-GAN generator (the SoVITS ``dec``): latent frames -> waveform.

conv_in (k7) + cond(style) -> per stage: leaky_relu(0.1) -> transposed conv (x rate) -> mean of
the multi-receptive-field residual blocks -> leaky_relu(0.01) -> conv_out (k7) -> tanh.

Batching: with ``lengths`` every conv input is zeroed past its row's length, which makes each row
equal to decoding it alone (a conv sees zeros there either way); without it no masking happens.

Layout: on a CPU the activations run as ``[B, C, 1, T]`` in channels-last memory and every conv
as a 2-D conv with a height-1 kernel (same arithmetic). oneDNN then keeps one layout from the
first conv to the last instead of reordering around each 1-D conv; the narrow late stages
(24-96 channels at 16-32 kHz) gain the most (measured figures: docs/engine.md).
``channels_last=None`` picks it on CPU (training included: gradients are the same); CUDA keeps the
plain 1-D path.
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


def _act_(x: Tensor, slope: float = SLOPE) -> Tensor:
    """Leaky ReLU of a tensor nothing else reads: in place when no gradient is recorded.

    Same values; saves a fresh output buffer per call, which on CPU is mostly the page faults of
    touching new memory (an fp32 late-stage activation: ~18 ms out of place vs ~1.5 ms in place)."""
    return F.leaky_relu_(x, slope) if not torch.is_grad_enabled() else F.leaky_relu(x, slope)


def _add_(fresh: Tensor, other: Tensor) -> Tensor:
    """``fresh + other`` where ``fresh`` is a new tensor nothing else reads (in place without autograd)."""
    return fresh.add_(other) if not torch.is_grad_enabled() else fresh + other


class _Weights2d:
    """Height-1, channels-last copies of conv weights for the 2-D path, refreshed when a weight changes.

    A second copy of the vocoder's weights (34 M parameters for v2ProPlus: 135 MB in fp32); plain
    views would avoid it but measured 5-9 % slower (oneDNN reorders them at every call)."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[int, int, Tensor]] = {}

    def get(self, weight: Tensor) -> Tensor:
        if torch.is_grad_enabled() and weight.requires_grad:  # training: keep autograd through the weight
            return weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        key = (weight.data_ptr(), weight._version)
        hit = self._cache.get(id(weight))
        if hit is not None and hit[:2] == key:
            return hit[2]
        w = weight.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last)
        self._cache[id(weight)] = (*key, w)
        return w


def conv(module: nn.Conv1d | nn.ConvTranspose1d, x: Tensor, weights: _Weights2d | None) -> Tensor:
    """``module(x)`` for x [B, C, T], or the same conv as 2-D for x [B, C, 1, T] (channels-last)."""
    if x.dim() == 3:
        return module(x)
    (s,), (p,), (d,) = module.stride, module.padding, module.dilation
    w = weights.get(module.weight)
    if isinstance(module, nn.ConvTranspose1d):
        (op,) = module.output_padding
        return F.conv_transpose2d(x, w, module.bias, (1, s), (0, p), (0, op), module.groups, (1, d))
    return F.conv2d(x, w, module.bias, (1, s), (0, p), (1, d), module.groups)


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

    def forward(self, x: Tensor, mask: Tensor | None, weights: _Weights2d | None = None) -> Tensor:
        for c1, c2 in zip(self.dilated, self.plain):
            h = conv(c1, _masked(F.leaky_relu(x, SLOPE), mask), weights)
            x = _add_(conv(c2, _masked(_act_(h), mask), weights), x)
        return x


class ResBlock2(nn.Module):
    """One dilated conv per residual step."""

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.dilated = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same_pad(kernel, d)) for d in dilations
        )

    def forward(self, x: Tensor, mask: Tensor | None, weights: _Weights2d | None = None) -> Tensor:
        for c in self.dilated:
            x = _add_(conv(c, _masked(F.leaky_relu(x, SLOPE), mask), weights), x)
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
        channels_last: bool | None = None,
    ) -> None:
        super().__init__()
        self.channels_last = channels_last  # None: on CPU (see the module docstring)
        self._weights2d = _Weights2d()
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
        two_d = self.channels_last if self.channels_last is not None else x.device.type == "cpu"
        weights = self._weights2d if two_d else None

        def layout(t: Tensor) -> Tensor:  # [B, C, T] -> [B, C, 1, T] channels-last on the 2-D path
            return t.unsqueeze(2).contiguous(memory_format=torch.channels_last) if two_d else t

        def time_mask(n: Tensor, width: int) -> Tensor:
            m = _time_mask(n, width, x.dtype)
            return m.unsqueeze(2) if two_d else m

        mask = None if lengths is None else time_mask(lengths, x.shape[2])
        ups_lengths = None if lengths is None else self.upsampled_lengths(lengths)
        x = conv(self.conv_in, _masked(layout(x), mask), weights)
        if g is not None and self.cond is not None:
            x = x + conv(self.cond, layout(g), weights)
        for i, up in enumerate(self.ups):
            x = conv(up, _masked(_act_(x), mask), weights)  # x: the previous stage's own output
            if ups_lengths is not None:
                mask = time_mask(ups_lengths[i], x.shape[-1])
            blocks = self.resblocks[i * self.n_kernels : (i + 1) * self.n_kernels]
            acc = blocks[0](x, mask, weights)
            for block in blocks[1:]:
                acc = _add_(acc, block(x, mask, weights))
            x = acc.div_(self.n_kernels) if not torch.is_grad_enabled() else acc / self.n_kernels
        x = conv(self.conv_out, _masked(_act_(x, 0.01), mask), weights)
        x = _masked(torch.tanh(x), mask)
        return x[:, :, 0].contiguous() if two_d else x
