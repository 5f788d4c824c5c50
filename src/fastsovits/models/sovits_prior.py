"""The SoVITS prior encoder (official ``enc_p``): semantic frames + phones + style -> N(m, exp(logs)).

semantic [B, 768, T] -> 1x1 conv -> content encoder; phone ids -> embedding -> phone encoder;
MRTE fuses them with the style vector -> fused encoder -> optional speed change (linear
interpolation of each row to ``int(T / speed) + 1`` frames) -> 1x1 conv -> (m, logs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fastsovits.models.sovits_attention import MRTE, RelPosEncoder


def length_mask(lengths: Tensor, width: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """lengths: [B] -> float mask [B, 1, width] (1 = real frame)."""
    return (torch.arange(width, device=lengths.device) < lengths.view(-1, 1)).to(dtype).unsqueeze(1)


def speed_lengths(lengths: Sequence[int], speeds: Sequence[float]) -> list[int]:
    """Frames after the speed change of each row (speed 1 keeps the length)."""
    return [n if s == 1 else int(n / s) + 1 for n, s in zip(lengths, speeds)]


def change_speed(x: Tensor, lengths: Sequence[int], speeds: Sequence[float]) -> tuple[Tensor, list[int]]:
    """Linearly resample row b of x [B, C, T] from lengths[b] to int(lengths[b] / speeds[b]) + 1 frames.

    Each row is resampled on its own (its real frames only), exactly as a single-row call would;
    the result is zero-padded to the longest new row -> ([B, C, T'], new lengths).
    """
    new = speed_lengths(lengths, speeds)
    out = x.new_zeros(x.shape[0], x.shape[1], max(new))
    for b, (n, m, s) in enumerate(zip(lengths, new, speeds)):
        row = x[b : b + 1, :, :n]
        out[b : b + 1, :, :m] = row if s == 1 else F.interpolate(row, size=m, mode="linear")
    return out, new


@dataclass
class PriorOutput:
    x: Tensor  # [B, H, T] fused-encoder output after the speed change
    m: Tensor  # [B, inter, T]
    logs: Tensor  # [B, inter, T]
    mask: Tensor  # [B, 1, T]
    lengths: Tensor  # [B] int64


class PriorEncoder(nn.Module):
    def __init__(
        self,
        out_channels: int,
        hidden: int,
        ffn_channels: int,
        heads: int,
        n_layers: int,
        kernel_size: int,
        dropout: float,
        n_symbols: int,
        ssl_dim: int = 768,
        mrte_hidden: int = 512,
        mrte_heads: int = 4,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.content_in = nn.Conv1d(ssl_dim, hidden, 1)
        self.content_encoder = RelPosEncoder(hidden, ffn_channels, heads, n_layers // 2, kernel_size, dropout)
        self.phone_encoder = RelPosEncoder(hidden, ffn_channels, heads, n_layers, kernel_size, dropout)
        self.phone_embedding = nn.Embedding(n_symbols, hidden)
        self.mrte = MRTE(hidden, mrte_hidden, mrte_heads)
        self.fused_encoder = RelPosEncoder(hidden, ffn_channels, heads, n_layers // 2, kernel_size, dropout)
        self.stats = nn.Conv1d(hidden, 2 * out_channels, 1)

    @classmethod
    def from_config(cls, c: Any) -> PriorEncoder:
        """From a SoVITS config (v1-v2ProPlus ``SovitsConfig`` or v3/v4 ``SovitsV3Config``: same field names)."""
        return cls(
            c.inter_channels,
            c.hidden_channels,
            c.filter_channels,
            c.n_heads,
            c.n_layers,
            c.kernel_size,
            c.p_dropout,
            c.n_symbols,
            c.ssl_dim,
            c.mrte_hidden,
            c.mrte_heads,
        )

    def forward(
        self,
        semantic: Tensor,
        lengths: Tensor,
        phones: Tensor,
        phone_lengths: Tensor,
        style: Tensor,
        speeds: Sequence[float] | None = None,
    ) -> PriorOutput:
        """semantic: [B, ssl_dim, T], lengths: [B], phones: [B, N] int64, phone_lengths: [B],
        style: [B or 1, mrte_hidden, 1], speeds: one per row (None = all 1)."""
        mask = length_mask(lengths, semantic.shape[2], semantic.dtype)
        y = self.content_in(semantic * mask) * mask
        y = self.content_encoder(y, mask)
        phone_mask = length_mask(phone_lengths, phones.shape[1], y.dtype)
        p = self.phone_embedding(phones).transpose(1, 2)  # [B, H, N]
        p = self.phone_encoder(p * phone_mask, phone_mask)
        y = self.mrte(y, mask, p, phone_mask, style)
        y = self.fused_encoder(y * mask, mask)
        if speeds is not None and any(s != 1 for s in speeds):
            y, new = change_speed(y, lengths.tolist(), speeds)
            lengths = torch.tensor(new, device=y.device, dtype=torch.int64)
            mask = length_mask(lengths, y.shape[2], y.dtype)
        m, logs = (self.stats(y) * mask).split(self.out_channels, dim=1)
        return PriorOutput(y, m, logs, mask, lengths)
