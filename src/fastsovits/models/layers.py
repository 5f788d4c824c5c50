"""Building blocks of the text-to-semantic transformer: positional table, masks, one block."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:  # pragma: no cover
    from fastsovits.models.kv_cache import StaticKVCache


def sine_table(n_positions: int, dim: int, device: torch.device | str | None = None) -> Tensor:
    """Interleaved sinusoid table: row p = [sin(p w_0), cos(p w_0), sin(p w_1), ...] -> [n, dim].

    w_i = 10000^(-2i/dim), computed in float32 the way the official checkpoints were trained.
    """
    pos = torch.arange(n_positions, dtype=torch.float32, device=device).unsqueeze(1)  # [n, 1]
    freqs = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * -(math.log(10000.0) / dim))
    table = torch.zeros(n_positions, dim, dtype=torch.float32, device=device)
    table[:, 0::2] = torch.sin(pos * freqs)
    table[:, 1::2] = torch.cos(pos * freqs)
    return table


def prefix_mask(text_len: Tensor, seq_len: Tensor, width: int) -> Tensor:
    """Mask (True = attend) for rows packed as [text | audio | padding], right-padded to ``width``.

    text_len, seq_len: [B] int64 (seq_len = text + audio length) -> [B, 1, width, width].
    Text queries see every text key; audio queries see text keys and audio keys up to their own
    position; padding keys are never seen. Padding queries see the text (so no row is empty).
    """
    slots = torch.arange(width, device=text_len.device)
    q = slots.view(1, width, 1)  # query index
    k = slots.view(1, 1, width)  # key index
    n = text_len.view(-1, 1, 1)
    key_text = k < n  # [B, 1, width]
    key_valid = k < seq_len.view(-1, 1, 1)
    query_audio = q >= n  # [B, width, 1]
    allowed = key_text | (query_audio & (k <= q) & key_valid)
    return allowed.unsqueeze(1)


def left_padded_mask(text_len: Tensor, text_width: int, audio_len: Tensor, audio_width: int) -> Tensor:
    """Mask (True = attend) for the training layout [left-padded text | right-padded audio].

    -> [B, 1, S, S] with S = text_width + audio_width. Text queries see the row's real text keys;
    audio queries see the real text and the real audio keys up to their own position.
    """
    s = text_width + audio_width
    slots = torch.arange(s, device=text_len.device)
    q = slots.view(1, s, 1)
    k = slots.view(1, 1, s)
    text_start = (text_width - text_len).view(-1, 1, 1)
    key_text = (k >= text_start) & (k < text_width)
    key_audio = (k >= text_width) & (k < text_width + audio_len.view(-1, 1, 1))
    query_audio = q >= text_width
    allowed = key_text | (query_audio & key_audio & (k <= q))
    return allowed.unsqueeze(1)


class T2SBlock(nn.Module):
    """Post-LayerNorm transformer layer: x = LN1(x + Attn(x)); x = LN2(x + W2 relu(W1 x)).

    ``qkv`` packs the query, key and value projections (rows [0:d] q, [d:2d] k, [2d:3d] v);
    heads are contiguous slices of ``head_dim`` inside each of them.
    """

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ff1 = nn.Linear(dim, ffn_dim)
        self.ff2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)

    def forward(
        self,
        x: Tensor,
        mask: Tensor,
        cache: StaticKVCache | None = None,
        layer: int = 0,
        rows: Tensor | None = None,
        slots: Tensor | None = None,
        kv_len: int | None = None,
    ) -> Tensor:
        """x: [B, S, D], mask: [B, 1, S, S_kv] (True = attend, or additive 0 / -inf) -> [B, S, D].

        Without a cache the block attends within ``x``. With a cache and no ``slots`` (prefill)
        it also stores its keys/values in ``rows``; with ``slots`` [B] (decode, S = 1) it writes
        the new key/value at ``slots[b]`` and attends over cache slots ``0 .. kv_len-1`` of rows 0..B-1.
        """
        b, s, d = x.shape
        qkv = self.qkv(x)
        if cache is not None and cache.k.dtype != qkv.dtype:
            # A cache may hold a wider dtype than the weights (bf16 model, fp32 cache on CPU): attend in it,
            # with one widening of q, k and v together (exact) rather than three.
            qkv = qkv.to(cache.k.dtype)
        q, k, v = qkv.split(d, dim=-1)
        q = q.view(b, s, self.heads, self.head_dim).transpose(1, 2)  # [B, H, S, Dh]
        k = k.view(b, s, self.heads, self.head_dim).transpose(1, 2)
        v = v.view(b, s, self.heads, self.head_dim).transpose(1, 2)
        if cache is not None:
            if slots is None:
                cache.write_prefix(layer, rows, k, v)
            else:
                k, v = cache.write_step(layer, slots, k, v, kv_len)  # [B, H, kv_len, Dh]
        p = self.dropout if self.training else 0.0
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p).to(x.dtype)
        attn = attn.transpose(1, 2).reshape(b, s, d)  # [B, S, H*Dh]
        x = self.norm1(x + F.dropout(self.out(attn), p, self.training))
        hidden = F.dropout(F.relu(self.ff1(x)), p, self.training)
        return self.norm2(x + F.dropout(self.ff2(hidden), p, self.training))

    def attention_probs(self, x: Tensor, mask: Tensor, queries: slice | None = None) -> Tensor:
        """The attention weights this block's forward uses (uncached, eval): -> [B, H, Q, S] float32.

        x: [B, S, D], mask: [B, 1, S, S] (True = attend). ``queries`` limits the query rows (default
        all S). Same projections, scale and mask as :meth:`forward`; ``probs @ v`` is its attention.
        """
        b, s, d = x.shape
        rows = queries or slice(0, s)
        q, k, _ = self.qkv(x).split(d, dim=-1)
        q = q[:, rows].reshape(b, -1, self.heads, self.head_dim).transpose(1, 2).float()  # [B, H, Q, Dh]
        k = k.reshape(b, s, self.heads, self.head_dim).transpose(1, 2).float()  # [B, H, S, Dh]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~mask[:, :, rows], float("-inf"))
        return torch.softmax(scores, dim=-1)
