"""Reference style encoder (the SoVITS ``ref_enc``): linear spectrogram -> one style vector.

Per frame: two Linear+Mish layers (bins -> 128 -> 128); two gated residual convs (k5, GLU);
residual 2-head self-attention whose scores are scaled by 1/sqrt(128) (the model width, not the
head width); Linear to ``out_dim``; then the average over frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GatedConv(nn.Module):
    """x + dropout(a * sigmoid(b)) where [a, b] = conv(x) (channels-first)."""

    def __init__(self, channels: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.dropout = dropout
        self.conv = nn.Conv1d(channels, 2 * channels, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.conv(x).chunk(2, dim=1)
        return x + F.dropout(a * torch.sigmoid(b), self.dropout, self.training)


class StyleAttention(nn.Module):
    """Residual multi-head self-attention over [B, T, C]; heads are contiguous channel slices."""

    def __init__(self, channels: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.scale = channels**0.5
        self.q = nn.Linear(channels, channels)
        self.k = nn.Linear(channels, channels)
        self.v = nn.Linear(channels, channels)
        self.o = nn.Linear(channels, channels)

    def forward(self, x: Tensor, pad: Tensor | None) -> Tensor:
        """x: [B, T, C], pad: [B, T] bool (True = padding) or None -> [B, T, C]."""
        b, t, c = x.shape
        q = self.q(x).view(b, t, self.heads, -1).transpose(1, 2)  # [B, H, T, C/H]
        k = self.k(x).view(b, t, self.heads, -1).transpose(1, 2)
        v = self.v(x).view(b, t, self.heads, -1).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / self.scale  # [B, H, T, T]
        if pad is not None:
            scores = scores.masked_fill(pad.view(b, 1, 1, t), float("-inf"))
        p = F.dropout(F.softmax(scores, dim=-1), self.dropout, self.training)
        out = (p @ v).transpose(1, 2).reshape(b, t, c)  # [B, T, C]
        return F.dropout(self.o(out), self.dropout, self.training) + x


class StyleEncoder(nn.Module):
    def __init__(
        self, in_bins: int, out_dim: int, hidden: int = 128, kernel_size: int = 5, heads: int = 2, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.in_bins = in_bins
        self.dropout = dropout
        self.fc1 = nn.Linear(in_bins, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.glu1 = GatedConv(hidden, kernel_size, dropout)
        self.glu2 = GatedConv(hidden, kernel_size, dropout)
        self.attn = StyleAttention(hidden, heads, dropout)
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, spec: Tensor, lengths: Tensor | None = None) -> Tensor:
        """spec: [B, F >= in_bins, T] linear magnitudes (extra bins ignored), lengths: [B] -> [B, out_dim, 1].

        With ``lengths`` padded frames are zeroed before every conv and excluded from attention
        and the average, so each row equals its own unpadded call.
        """
        x = spec[:, : self.in_bins].transpose(1, 2)  # [B, T, bins]
        pad = None
        if lengths is not None:
            pad = torch.arange(x.shape[1], device=x.device).view(1, -1) >= lengths.view(-1, 1)  # [B, T]
            x = x.masked_fill(pad.unsqueeze(-1), 0.0)
        p, train = self.dropout, self.training
        x = F.dropout(F.mish(self.fc1(x)), p, train)
        x = F.dropout(F.mish(self.fc2(x)), p, train)
        x = self._zero_pad(x, pad).transpose(1, 2)  # [B, C, T]
        x = self.glu2(self._zero_pad(self.glu1(x), pad, channels_first=True)).transpose(1, 2)  # [B, T, C]
        x = self.out(self.attn(self._zero_pad(x, pad), pad))
        return self._average(x, pad).unsqueeze(-1)

    @staticmethod
    def _zero_pad(x: Tensor, pad: Tensor | None, channels_first: bool = False) -> Tensor:
        """Zero the padded frames (so convs see what a lone row's zero padding would give)."""
        if pad is None:
            return x
        return x.masked_fill(pad.unsqueeze(1) if channels_first else pad.unsqueeze(-1), 0.0)

    @staticmethod
    def _average(x: Tensor, pad: Tensor | None) -> Tensor:
        """Mean over real frames, computed as sum(x / n) in float32. x: [B, T, C] -> [B, C]."""
        if pad is None:
            n = torch.full((x.shape[0], 1, 1), x.shape[1], device=x.device)
        else:
            x = x.masked_fill(pad.unsqueeze(-1), 0.0)
            n = (~pad).sum(dim=1).view(-1, 1, 1)
        return (x.float() / n).sum(dim=1).to(x.dtype)
