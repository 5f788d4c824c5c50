"""Attention blocks of the SoVITS prior encoder.

* :class:`RelPosEncoder`: a post-LayerNorm transformer over ``[B, C, T]`` feature maps whose
  self-attention adds learned relative-position terms (window of +-4 frames, one table shared by
  all heads) to both the scores and the values, and whose feed-forward part is two 1-D convs.
* :class:`MRTE`: the cross-attention that lets the semantic stream read the phone stream
  (512-d, 4 heads) plus the global style vector.

Every block takes a ``[B, 1, T]`` float mask (1 = real frame); padded frames never influence real
ones, so rows of different lengths can share a batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MASKED_SCORE = -1e4  # fill value for masked attention scores; exp() underflows to exactly 0 in fp32


class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis of a ``[B, C, T]`` tensor (eps 1e-5)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.transpose(1, -1), (x.shape[1],), self.weight, self.bias, self.eps)  # [B, T, C]
        return y.transpose(1, -1)


def _split_heads(x: Tensor, heads: int) -> Tensor:
    b, c, t = x.shape
    return x.view(b, heads, c // heads, t).transpose(2, 3)  # [B, H, T, C/H]


def _merge_heads(x: Tensor) -> Tensor:
    b, h, t, d = x.shape
    return x.transpose(2, 3).reshape(b, h * d, t)  # [B, H*D, T]


class RelPosSelfAttention(nn.Module):
    """Multi-head self-attention with relative-position keys and values (1x1 conv projections).

    For query i and key j with |j - i| <= window the score gains ``q_i . rel_k[j - i + window]``
    and the output gains ``p_ij * rel_v[j - i + window]``; farther pairs get no positional term.
    """

    def __init__(self, channels: int, heads: int, window: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels {channels} not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = channels // heads
        self.window = window
        self.dropout = dropout
        # registered before the projections: the official state_dict lists them first
        self.rel_k = nn.Parameter(torch.randn(1, 2 * window + 1, self.head_dim) * self.head_dim**-0.5)
        self.rel_v = nn.Parameter(torch.randn(1, 2 * window + 1, self.head_dim) * self.head_dim**-0.5)
        self.q = nn.Conv1d(channels, channels, 1)
        self.k = nn.Conv1d(channels, channels, 1)
        self.v = nn.Conv1d(channels, channels, 1)
        self.o = nn.Conv1d(channels, channels, 1)

    def _band(self, length: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Index tables for the +-window band.

        -> (rel index [T, T], in-band mask [T, T], key index [T, 2w+1], key-exists mask [T, 2w+1]).
        """
        pos = torch.arange(length, device=device)
        offset = torch.arange(-self.window, self.window + 1, device=device)  # [2w+1]
        rel = pos.view(1, -1) - pos.view(-1, 1) + self.window  # [T, T]: j - i + w
        in_band = (rel >= 0) & (rel <= 2 * self.window)
        key = pos.view(-1, 1) + offset.view(1, -1)  # [T, 2w+1]: j = i + r - w
        key_ok = (key >= 0) & (key < length)
        return rel.clamp(0, 2 * self.window), in_band, key.clamp(0, length - 1), key_ok

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x: [B, C, T], mask: [B, 1, T] -> [B, C, T]."""
        t = x.shape[2]
        q = _split_heads(self.q(x), self.heads) / (self.head_dim**0.5)  # [B, H, T, D]
        k = _split_heads(self.k(x), self.heads)
        v = _split_heads(self.v(x), self.heads)
        rel_idx, in_band, key_idx, key_ok = self._band(t, x.device)
        scores = q @ k.transpose(-2, -1)  # [B, H, T, T]
        rel_logits = q @ self.rel_k.unsqueeze(0).transpose(-2, -1)  # [B, H, T, 2w+1]
        bias = rel_logits.gather(-1, rel_idx.expand(*scores.shape[:2], t, t))
        scores = scores + bias.masked_fill(~in_band, 0.0)
        pair_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)  # [B, 1, T, T]
        scores = scores.masked_fill(pair_mask == 0, MASKED_SCORE)
        p = F.softmax(scores, dim=-1)
        p = F.dropout(p, self.dropout, self.training)
        out = p @ v  # [B, H, T, D]
        p_band = p.gather(-1, key_idx.expand(*p.shape[:2], t, key_idx.shape[1]))  # [B, H, T, 2w+1]
        out = out + p_band.masked_fill(~key_ok, 0.0) @ self.rel_v.unsqueeze(0)
        return self.o(_merge_heads(out))


class ConvFFN(nn.Module):
    """conv(k) -> ReLU -> conv(k) with 'same' zero padding; inputs masked before each conv."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.conv1 = nn.Conv1d(channels, hidden, kernel_size)
        self.conv2 = nn.Conv1d(hidden, channels, kernel_size)

    def _pad(self, x: Tensor) -> Tensor:
        k = self.kernel_size
        return F.pad(x, ((k - 1) // 2, k // 2)) if k > 1 else x

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = torch.relu(self.conv1(self._pad(x * mask)))
        h = F.dropout(h, self.dropout, self.training)
        return self.conv2(self._pad(h * mask)) * mask


class RelPosLayer(nn.Module):
    def __init__(self, channels: int, ffn_channels: int, heads: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.dropout = dropout
        self.attn = RelPosSelfAttention(channels, heads, dropout=dropout)
        self.norm1 = ChannelNorm(channels)
        self.ffn = ConvFFN(channels, ffn_channels, kernel_size, dropout)
        self.norm2 = ChannelNorm(channels)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = self.norm1(x + F.dropout(self.attn(x, mask), self.dropout, self.training))
        return self.norm2(x + F.dropout(self.ffn(x, mask), self.dropout, self.training))


class RelPosEncoder(nn.Module):
    """A stack of :class:`RelPosLayer`; x: [B, C, T], mask: [B, 1, T] -> [B, C, T] (masked)."""

    def __init__(
        self, channels: int, ffn_channels: int, heads: int, n_layers: int, kernel_size: int, dropout: float
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            RelPosLayer(channels, ffn_channels, heads, kernel_size, dropout) for _ in range(n_layers)
        )

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x * mask
        for layer in self.layers:
            x = layer(x, mask)
        return x * mask


class CrossAttention(nn.Module):
    """Plain multi-head attention (1x1 conv projections, no positional terms)."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = channels // heads
        self.q = nn.Conv1d(channels, channels, 1)
        self.k = nn.Conv1d(channels, channels, 1)
        self.v = nn.Conv1d(channels, channels, 1)
        self.o = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor, context: Tensor, pair_mask: Tensor) -> Tensor:
        """x: [B, C, Tq], context: [B, C, Tk], pair_mask: [B, 1, Tq, Tk] -> [B, C, Tq]."""
        q = _split_heads(self.q(x), self.heads) / (self.head_dim**0.5)
        k = _split_heads(self.k(context), self.heads)
        v = _split_heads(self.v(context), self.heads)
        scores = (q @ k.transpose(-2, -1)).masked_fill(pair_mask == 0, MASKED_SCORE)  # [B, H, Tq, Tk]
        return self.o(_merge_heads(F.softmax(scores, dim=-1) @ v))


class MRTE(nn.Module):
    """Semantic frames attend to phones in a wider space; the style vector is added there.

    out = post(attn(content_in(c), phone_in(p)) + content_in(c) + style), all masked.
    """

    def __init__(self, channels: int, hidden: int = 512, heads: int = 4) -> None:
        super().__init__()
        self.attn = CrossAttention(hidden, heads)
        self.content_in = nn.Conv1d(channels, hidden, 1)
        self.phone_in = nn.Conv1d(channels, hidden, 1)
        self.out = nn.Conv1d(hidden, channels, 1)

    def forward(
        self, content: Tensor, content_mask: Tensor, phones: Tensor, phone_mask: Tensor, style: Tensor
    ) -> Tensor:
        """content: [B, C, T], phones: [B, C, N], masks [B, 1, *], style: [B or 1, hidden, 1] -> [B, C, T]."""
        pair_mask = phone_mask.unsqueeze(2) * content_mask.unsqueeze(-1)  # [B, 1, T, N]
        c = self.content_in(content * content_mask)
        p = self.phone_in(phones * phone_mask)
        x = self.attn(c * content_mask, p * phone_mask, pair_mask) + c + style
        return self.out(x * content_mask)
