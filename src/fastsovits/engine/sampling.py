"""Token sampling for the text-to-semantic model (the serving engine's sampler).

Order of operations (as the official sampler; it matters):
1. repetition penalty on every token seen so far (prompt + generated), once per distinct token:
   negative logits are multiplied by the penalty, positive ones divided;
2. top-p on the un-tempered logits (only for rows with top_p < 1; the best token always stays);
3. division by the temperature (at least 1e-5);
4. top-k (ties with the k-th value stay; top_k 0 means no top-k);
5. softmax, then the exponential race ``argmax(p / E)`` with ``E ~ Exp(1)``.

Every knob is a ``[B]`` tensor, so rows with different settings share one step. The Exp(1)
noise comes from a counter-based hash of (row seed, row step, token id): a row's samples depend
only on its own seed and step, never on its batch neighbours or on a global RNG.

EOS rules: EOS is banned for a row's first 11 steps; a row stops when the sampled token or the
argmax of the penalised logits is EOS (the EOS is not kept).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

EOS_BAN_STEPS = 11  # EOS cannot be produced at steps 0..10
_M32 = 0xFFFFFFFF


@dataclass(frozen=True)
class RowSampling:
    """Sampling settings of one row (validated where they come from: ``SynthesisParams``).

    ``top_k=1`` is greedy, ``top_k=0`` turns top-k off; ``seed=None`` draws a random seed."""

    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35
    seed: int | None = None


GREEDY = RowSampling(top_k=1, top_p=1.0, temperature=1.0, repetition_penalty=1.0, seed=0)


@dataclass
class SamplingTensors:
    """Per-row knobs on the device: every field is [B]; ``vocab_ids`` is [V] (0..V-1)."""

    top_k: Tensor
    top_p: Tensor
    temperature: Tensor
    repetition_penalty: Tensor
    seed: Tensor
    vocab_ids: Tensor

    @classmethod
    def from_rows(cls, rows: Sequence[RowSampling], vocab_size: int, device: torch.device | str = "cpu"):
        seeds = [r.seed if r.seed is not None else random.SystemRandom().getrandbits(62) for r in rows]
        return cls(
            top_k=torch.tensor([r.top_k for r in rows], dtype=torch.long, device=device),
            top_p=torch.tensor([r.top_p for r in rows], dtype=torch.float32, device=device),
            temperature=torch.tensor([r.temperature for r in rows], dtype=torch.float32, device=device),
            repetition_penalty=torch.tensor([r.repetition_penalty for r in rows], dtype=torch.float32, device=device),
            seed=torch.tensor(seeds, dtype=torch.long, device=device),
            vocab_ids=torch.arange(vocab_size, dtype=torch.long, device=device),
        )


# ---------------------------------------------------------------------------- counter-based noise
def _mul32(x: Tensor, c: int) -> Tensor:
    """(x * c) mod 2**32 for 0 <= x < 2**32, in int64 without overflow (split x into 16-bit halves)."""
    return (((((x >> 16) * c) & 0xFFFF) << 16) + (x & 0xFFFF) * c) & _M32


def _mix32(x: Tensor) -> Tensor:
    """A 32-bit integer finaliser (xorshift-multiply); input and output in [0, 2**32)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def exponential_noise(seed: Tensor, step: Tensor, vocab_ids: Tensor) -> Tensor:
    """Exp(1) noise that depends only on (seed[b], step[b], token id): [B], [B], [V] -> [B, V] float32."""
    row = _mix32(_mix32(seed & _M32) ^ ((seed >> 32) & _M32))
    row = _mix32(row ^ (step & _M32))  # [B]
    h = _mix32(row.unsqueeze(1) ^ vocab_ids.unsqueeze(0))  # [B, V]
    u = ((h >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))  # uniform in (0, 1), 24-bit grid
    return -torch.log(u)


# ---------------------------------------------------------------------------- logits processing
def ban_eos_(logits: Tensor, steps: Tensor, eos: int, min_steps: int = EOS_BAN_STEPS) -> Tensor:
    """In place: EOS logit -> -inf for rows whose step < min_steps. logits [B, V], steps [B]."""
    logits[:, eos].masked_fill_(steps < min_steps, float("-inf"))
    return logits


def apply_repetition_penalty_(logits: Tensor, seen: Tensor, penalty: Tensor) -> Tensor:
    """In place: penalise every seen token once. logits [B, V], seen [B, V] bool, penalty [B]."""
    p = penalty.view(-1, 1).to(logits.dtype)
    penalised = torch.where(logits < 0, logits * p, logits / p)
    logits.copy_(torch.where(seen, penalised, logits))
    return logits


def mark_seen_(seen: Tensor, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
    """In place: mark tokens [B, T] (only the first lengths[b] of each row) in seen [B, V]."""
    if tokens.shape[1] == 0:
        return seen
    if lengths is None:
        seen.scatter_(1, tokens, True)
    else:
        valid = torch.arange(tokens.shape[1], device=tokens.device).view(1, -1) < lengths.view(-1, 1)
        hits = torch.zeros(seen.shape, dtype=torch.int32, device=seen.device)
        seen |= hits.scatter_add_(1, tokens, valid.to(torch.int32)) > 0  # duplicates add up, never race
    return seen


def filter_logits(logits: Tensor, params: SamplingTensors) -> Tensor:
    """Top-p (un-tempered), temperature, top-k: [B, V] -> tempered logits with -inf where removed."""
    v = logits.shape[1]
    sorted_vals, sorted_idx = logits.sort(dim=-1, descending=True)  # [B, V]
    cum = torch.softmax(sorted_vals, dim=-1).cumsum(dim=-1)
    top_p = params.top_p.view(-1, 1)
    drop_sorted = (cum > top_p) & (top_p < 1.0)
    drop_sorted[:, 0] = False
    temperature = params.temperature.clamp(min=1e-5).view(-1, 1).to(logits.dtype)
    # the k-th largest of the kept, tempered logits (temperature keeps the order)
    kept_sorted = sorted_vals.masked_fill(drop_sorted, float("-inf")) / temperature
    k = torch.where(params.top_k > 0, params.top_k, v).clamp(1, v)
    pivot = kept_sorted.gather(1, (k - 1).view(-1, 1))  # [B, 1]
    drop = drop_sorted.scatter(1, sorted_idx, drop_sorted)
    out = logits.masked_fill(drop, float("-inf")) / temperature
    return out.masked_fill(out < pivot, float("-inf"))


def sample_step(
    logits: Tensor,
    seen: Tensor,
    params: SamplingTensors,
    steps: Tensor,
    eos: int,
    min_steps: int = EOS_BAN_STEPS,
) -> tuple[Tensor, Tensor]:
    """One sampling step for every row (no host sync).

    logits [B, V] raw head output (modified in place: EOS ban, repetition penalty), seen [B, V]
    bool, steps [B] number of tokens each row has generated -> (tokens [B] int64, eos_stop [B] bool).
    """
    ban_eos_(logits, steps, eos, min_steps)
    apply_repetition_penalty_(logits, seen, params.repetition_penalty)
    argmax_is_eos = logits.argmax(dim=-1) == eos
    probs = torch.softmax(filter_logits(logits, params).float(), dim=-1)
    noise = exponential_noise(params.seed, steps, params.vocab_ids)
    tokens = (probs / noise).argmax(dim=-1)
    return tokens, argmax_is_eos | (tokens == eos)
