"""The v3/v4 CFM velocity estimator: a DiT over mel frames conditioned on text features and time.

Per frame the input is ``[noisy mel | prompt mel | text embedding]`` projected to ``dim``, plus a
convolutional position embedding (two grouped k31 convs with Mish). The text features first get
an additive sinusoid (cos | sin halves) and ConvNeXt-V2 blocks (depthwise k7, LayerNorm, GELU,
global response normalisation over time). ``depth`` blocks of adaptive-LayerNorm-zero attention
(6-way modulation from the time embedding) follow; rotary position embedding rotates only the first
``dim_head`` channels of q and k (interleaved pairs), i.e. the first head. The time embedding is
``time_embed(t) + d_embed(dt)`` (sinusoid of 1000*t, then an MLP).

Module and parameter names follow the official state dict (``cfm.estimator.<name>``), so a LoRA
targets ``to_q``/``to_k``/``to_v``/``to_out.0`` by the same names.

Batching: rows of different lengths are padded; ``lengths`` masks attention keys and zeroes padded
frames before every convolution and before the response normalisation (the only places where
frames mix), so each row equals its own unpadded pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FREQ_EMBED_DIM = 256  # sinusoid width of the time embeddings (hard-coded officially)
TIME_SCALE = 1000.0  # t in [0, 1] is scaled by this before the sinusoid
TEXT_POS_MAX = 4096  # precomputed text positions; later ones reuse the last
CONV_POS_KERNEL = 31
CONV_POS_GROUPS = 16


@dataclass(frozen=True)
class DiTConfig:
    """DiT sizes; defaults are the official v3/v4 model (dim 1024, 22 blocks, 16 x 64 heads)."""

    dim: int = 1024
    depth: int = 22
    heads: int = 16
    dim_head: int = 64
    ff_mult: int = 2
    mel_dim: int = 100
    text_dim: int = 512
    conv_layers: int = 4
    conv_mult: int = 2


def _sinusoid(t: Tensor, dim: int = FREQ_EMBED_DIM) -> Tensor:
    """t [B] -> [B, dim]: sin | cos of 1000*t times geometric frequencies."""
    half = dim // 2
    step = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, device=t.device).float() * -step)
    arg = TIME_SCALE * t.unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat((arg.sin(), arg.cos()), dim=-1)


def text_position_table(dim: int, end: int = TEXT_POS_MAX, theta: float = 10000.0) -> Tensor:
    """[end, dim]: cos | sin halves of position x inverse frequencies."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    angles = torch.outer(torch.arange(end), freqs).float()
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


def _frame_mask(lengths: Tensor | None, width: int, device: torch.device) -> Tensor | None:
    """[B, width] bool (True = real frame), or None when there is no padding."""
    if lengths is None or bool((lengths >= width).all()):
        return None
    return torch.arange(width, device=device).unsqueeze(0) < lengths.to(device).unsqueeze(1)


def _zero_pad(x: Tensor, mask: Tensor | None) -> Tensor:
    """x [B, T, C]: padded frames set to 0."""
    return x if mask is None else x.masked_fill(~mask.unsqueeze(-1), 0.0)


class TimestepEmbedding(nn.Module):
    def __init__(self, dim: int, freq_dim: int = FREQ_EMBED_DIM) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.time_mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        """t [B] -> [B, dim]."""
        return self.time_mlp(_sinusoid(t, self.freq_dim).to(t.dtype))


class GRN(nn.Module):
    """Global response normalisation: per channel, the L2 norm over time relative to its channel mean."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        g = torch.norm(x, p=2, dim=1, keepdim=True)
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * n) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.grn = GRN(hidden)
        self.pwconv2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x [B, T, dim] -> [B, T, dim]."""
        h = self.dwconv(_zero_pad(x, mask).transpose(1, 2)).transpose(1, 2)
        h = F.gelu(self.pwconv1(self.norm(h)))
        h = self.pwconv2(self.grn(_zero_pad(h, mask)))
        return x + h


class TextEmbedding(nn.Module):
    freqs_cis: Tensor

    def __init__(self, text_dim: int, conv_layers: int, conv_mult: int) -> None:
        super().__init__()
        self.register_buffer("freqs_cis", text_position_table(text_dim), persistent=False)
        self.text_blocks = nn.ModuleList(ConvNeXtV2Block(text_dim, text_dim * conv_mult) for _ in range(conv_layers))

    def forward(self, text: Tensor, mask: Tensor | None = None) -> Tensor:
        """text [B, T, text_dim] -> [B, T, text_dim]."""
        pos = torch.arange(text.shape[1], device=text.device).clamp(max=self.freqs_cis.shape[0] - 1)
        x = text + self.freqs_cis[pos].to(text.dtype)
        for block in self.text_blocks:
            x = block(x, mask)
        return x


class ConvPositionEmbedding(nn.Module):
    conv1d: nn.Sequential

    def __init__(self, dim: int, kernel: int = CONV_POS_KERNEL, groups: int = CONV_POS_GROUPS) -> None:
        super().__init__()
        self.conv1d = nn.Sequential(
            nn.Conv1d(dim, dim, kernel, groups=groups, padding=kernel // 2),
            nn.Mish(),
            nn.Conv1d(dim, dim, kernel, groups=groups, padding=kernel // 2),
            nn.Mish(),
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x [B, T, dim] -> [B, T, dim]."""
        h = _zero_pad(x, mask).transpose(1, 2)
        h = self.conv1d[1](self.conv1d[0](h))
        if mask is not None:
            h = h * mask.unsqueeze(1).to(h.dtype)
        h = self.conv1d[3](self.conv1d[2](h))
        return h.transpose(1, 2)


class InputEmbedding(nn.Module):
    def __init__(self, mel_dim: int, text_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(2 * mel_dim + text_dim, dim)
        self.conv_pos_embed = ConvPositionEmbedding(dim)

    def forward(self, x: Tensor, cond: Tensor, text: Tensor, mask: Tensor | None = None) -> Tensor:
        h = self.proj(torch.cat((x, cond, text), dim=-1))
        return self.conv_pos_embed(h, mask) + h


class RotaryEmbedding(nn.Module):
    """Rotary angles for positions 0..T-1; ``inv_freq`` is a saved buffer (loaded from the file)."""

    inv_freq: Tensor

    def __init__(self, dim_head: int, base: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (base ** (torch.arange(0, dim_head, 2).float() / dim_head)))

    def forward(self, seq_len: int) -> Tensor:
        """-> angles [T, dim_head], each frequency twice in a row (pairs of channels)."""
        t = torch.arange(seq_len, device=self.inv_freq.device).type_as(self.inv_freq)
        freqs = torch.outer(t, self.inv_freq)
        return torch.stack((freqs, freqs), dim=-1).flatten(-2)


def _rotate_pairs(x: Tensor) -> Tensor:
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def apply_rotary(x: Tensor, angles: Tensor) -> Tensor:
    """x [B, T, C]: rotate the first ``angles.shape[-1]`` channels; the rest pass unchanged."""
    n = angles.shape[-1]
    head, rest = x[..., :n], x[..., n:]
    head = head * angles.cos() + _rotate_pairs(head) * angles.sin()
    return torch.cat((head, rest), dim=-1)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        inner = heads * dim_head
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim)])

    def forward(self, x: Tensor, mask: Tensor | None, angles: Tensor) -> Tensor:
        b, t, _ = x.shape
        q = apply_rotary(self.to_q(x), angles)
        k = apply_rotary(self.to_k(x), angles)
        v = self.to_v(x)
        q, k, v = (y.view(b, t, self.heads, -1).transpose(1, 2) for y in (q, k, v))
        attn_mask = None if mask is None else mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        out = self.to_out[0](out.transpose(1, 2).reshape(b, t, -1))
        return _zero_pad(out, mask)


class AdaLayerNormZero(nn.Module):
    def __init__(self, dim: int, parts: int) -> None:
        super().__init__()
        self.parts = parts
        self.linear = nn.Linear(dim, dim * parts)

    def forward(self, emb: Tensor) -> tuple[Tensor, ...]:
        return torch.chunk(self.linear(F.silu(emb)), self.parts, dim=1)


def _modulate(x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + scale[:, None]) + shift[:, None]


class FeedForward(nn.Module):
    """Linear -> GELU (tanh form) -> Linear; index 1 is the (inference-free) dropout slot."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.ff = nn.Sequential(
            nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh")), nn.Identity(), nn.Linear(hidden, dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.ff(x)


class DiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, ff_mult: int) -> None:
        super().__init__()
        self.attn_norm = AdaLayerNormZero(dim, 6)
        self.attn = Attention(dim, heads, dim_head)
        self.ff = FeedForward(dim, dim * ff_mult)

    def forward(self, x: Tensor, t: Tensor, mask: Tensor | None, angles: Tensor) -> Tensor:
        shift_a, scale_a, gate_a, shift_f, scale_f, gate_f = self.attn_norm(t)
        x = x + gate_a.unsqueeze(1) * self.attn(_modulate(x, scale_a, shift_a), mask, angles)
        return x + gate_f.unsqueeze(1) * self.ff(_modulate(x, scale_f, shift_f))


@dataclass
class DiTCache:
    """What stays the same across the sampler's steps: the time-step (dt) and text embeddings."""

    dt: Tensor
    text: Tensor


class DiT(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.time_embed = TimestepEmbedding(c.dim)
        self.d_embed = TimestepEmbedding(c.dim)
        self.text_embed = TextEmbedding(c.text_dim, c.conv_layers, c.conv_mult)
        self.input_embed = InputEmbedding(c.mel_dim, c.text_dim, c.dim)
        self.rotary_embed = RotaryEmbedding(c.dim_head)
        self.transformer_blocks = nn.ModuleList(DiTBlock(c.dim, c.heads, c.dim_head, c.ff_mult) for _ in range(c.depth))
        self.norm_out = AdaLayerNormZero(c.dim, 2)
        self.proj_out = nn.Linear(c.dim, c.mel_dim)

    def condition(self, text: Tensor, dt: Tensor, lengths: Tensor | None = None) -> DiTCache:
        """text [B, T, text_dim], dt [B] -> the per-call embeddings :meth:`forward` reuses."""
        mask = _frame_mask(lengths, text.shape[1], text.device)
        return DiTCache(dt=self.d_embed(dt), text=self.text_embed(text, mask))

    def forward(self, x: Tensor, cond: Tensor, t: Tensor, cache: DiTCache, lengths: Tensor | None = None) -> Tensor:
        """x, cond: [B, T, mel_dim] (noisy mel, prompt mel), t: [B] -> velocity [B, T, mel_dim]."""
        mask = _frame_mask(lengths, x.shape[1], x.device)
        temb = self.time_embed(t) + cache.dt
        h = self.input_embed(x, cond, cache.text, mask)
        angles = self.rotary_embed(x.shape[1]).to(h.dtype)
        for block in self.transformer_blocks:
            h = block(h, temb, mask, angles)
        scale, shift = self.norm_out(temb)
        return self.proj_out(_modulate(h, scale, shift))
