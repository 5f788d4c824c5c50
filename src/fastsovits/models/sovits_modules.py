"""WaveNet-style conditioned conv stack, the mean-only coupling flow, the posterior encoder.

Weight normalisation is folded into plain ``weight`` tensors at load time (see
:mod:`fastsovits.checkpoints.sovits`), so these modules hold ordinary convolutions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class WaveNet(nn.Module):
    """Non-causal gated dilated conv stack conditioned on a global vector.

    Layer i: a = dilated_i(x) + cond(g)[slice i]; h = tanh(a[:H]) * sigmoid(a[H:]);
    res_skip_i(h) gives a residual half (added to x, all layers but the last) and a skip half
    (summed into the output; the last layer's whole output is skip).
    """

    def __init__(self, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int, gin_channels: int) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WaveNet kernel_size must be odd, got {kernel_size}")
        self.hidden = hidden
        self.n_layers = n_layers
        self.dilated = nn.ModuleList()
        self.res_skip = nn.ModuleList()
        for i in range(n_layers):
            dilation = dilation_rate**i
            pad = (kernel_size * dilation - dilation) // 2
            self.dilated.append(nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=dilation, padding=pad))
            out = 2 * hidden if i < n_layers - 1 else hidden
            self.res_skip.append(nn.Conv1d(hidden, out, 1))
        self.cond = nn.Conv1d(gin_channels, 2 * hidden * n_layers, 1) if gin_channels else None

    def forward(self, x: Tensor, mask: Tensor, g: Tensor | None = None) -> Tensor:
        """x: [B, H, T] (masked), mask: [B, 1, T], g: [B or 1, gin, 1] -> [B, H, T]."""
        h = self.hidden
        cond = self.cond(g) if (g is not None and self.cond is not None) else None  # [B, 2H*L, 1]
        out = torch.zeros_like(x)
        for i in range(self.n_layers):
            a = self.dilated[i](x)
            if cond is not None:
                a = a + cond[:, 2 * h * i : 2 * h * (i + 1)]
            acts = torch.tanh(a[:, :h]) * torch.sigmoid(a[:, h:])
            rs = self.res_skip[i](acts)
            if i < self.n_layers - 1:
                x = (x + rs[:, :h]) * mask
                out = out + rs[:, h:]
            else:
                out = out + rs
        return out * mask


class MeanCoupling(nn.Module):
    """Affine coupling with unit scale: the second half is shifted by a WaveNet of the first half."""

    def __init__(
        self, channels: int, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int, gin: int
    ) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"coupling channels must be even, got {channels}")
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.wavenet = WaveNet(hidden, kernel_size, dilation_rate, n_layers, gin)
        self.post = nn.Conv1d(hidden, self.half, 1)

    def _shift(self, x0: Tensor, mask: Tensor, g: Tensor | None) -> Tensor:
        h = self.wavenet(self.pre(x0) * mask, mask, g)
        return self.post(h) * mask

    def forward(self, x: Tensor, mask: Tensor, g: Tensor | None = None, reverse: bool = False) -> Tensor:
        """x: [B, C, T] -> [B, C, T] (log-determinant is 0: the scale is fixed to 1)."""
        x0, x1 = x[:, : self.half], x[:, self.half :]
        m = self._shift(x0, mask, g)
        x1 = (x1 - m) * mask if reverse else m + x1 * mask
        return torch.cat([x0, x1], 1)


class CouplingFlow(nn.Module):
    """Coupling layers, each followed by a channel flip; ``reverse=True`` runs the inverse."""

    def __init__(
        self, channels: int, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int, n_flows: int, gin: int
    ) -> None:
        super().__init__()
        self.couplings = nn.ModuleList(
            MeanCoupling(channels, hidden, kernel_size, dilation_rate, n_layers, gin) for _ in range(n_flows)
        )

    def forward(self, x: Tensor, mask: Tensor, g: Tensor | None = None, reverse: bool = False) -> Tensor:
        if not reverse:
            for layer in self.couplings:
                x = torch.flip(layer(x, mask, g), [1])
            return x
        for layer in reversed(self.couplings):
            x = layer(torch.flip(x, [1]), mask, g, reverse=True)
        return x


class PosteriorEncoder(nn.Module):
    """Linear spectrogram -> latent z ~ N(m, exp(logs)) (training only; not in exported files)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin: int,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden, 1)
        self.wavenet = WaveNet(hidden, kernel_size, dilation_rate, n_layers, gin)
        self.proj = nn.Conv1d(hidden, 2 * out_channels, 1)

    def forward(
        self, spec: Tensor, mask: Tensor, g: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """spec: [B, F, T], mask: [B, 1, T] -> (z, m, logs), each [B, out, T]."""
        g = g.detach() if g is not None else None
        h = self.wavenet(self.pre(spec) * mask, mask, g)
        m, logs = (self.proj(h) * mask).split(self.out_channels, dim=1)
        noise = torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype)
        return (m + noise * torch.exp(logs)) * mask, m, logs
