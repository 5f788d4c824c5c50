"""Token sampling for the text-to-semantic model, and a simple reference decode loop.

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

from fastsovits.errors import InvalidInput, InvalidParameter

EOS_BAN_STEPS = 11  # EOS cannot be produced at steps 0..10
MAX_STEPS = 1500  # official hard cap on generated tokens
_M32 = 0xFFFFFFFF


@dataclass(frozen=True)
class RowSampling:
    """Sampling settings of one row. ``top_k=1`` is greedy; ``seed=None`` draws a random seed."""

    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise InvalidParameter(f"top_k must be an int >= 0 (0 = off), got {self.top_k!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise InvalidParameter(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not self.temperature > 0.0:
            raise InvalidParameter(f"temperature must be > 0, got {self.temperature!r}")
        if not self.repetition_penalty > 0.0:
            raise InvalidParameter(f"repetition_penalty must be > 0, got {self.repetition_penalty!r}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise InvalidParameter(f"seed must be in [0, 2**63), got {self.seed!r}")


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


# ---------------------------------------------------------------------------- reference loop
@dataclass(frozen=True)
class T2SRow:
    """One input: phones [N] int64, bert [bert_dim, N] float, prompt [T] int64 (None: no reference)."""

    phones: Tensor
    bert: Tensor
    prompt: Tensor | None = None


@dataclass
class T2SResult:
    """tokens: generated tokens (EOS excluded, all kept); idx: the step at which the row stopped;
    stop_reason: "eos" | "early_stop" | "max_steps"; step_logits: [steps, V] raw logits if recorded.

    The official ``TTS.run`` keeps ``(prompt + tokens)[-idx:]``, which on early stop drops the
    first generated token (idx = len(tokens) - 1); reproduce that only where parity demands it."""

    tokens: list[int]
    idx: int
    stop_reason: str
    step_logits: Tensor | None = None


def pad_rows(rows: Sequence[T2SRow], bert_dim: int, device: torch.device | str):
    """-> phones [B, N], phone_lens [B], bert [B, bert_dim, N], prompts [B, T], prompt_lens [B]."""
    if not rows:
        raise InvalidInput("t2s: no rows given")
    b = len(rows)
    n = max(int(r.phones.shape[0]) for r in rows)
    t = max(int(r.prompt.shape[0]) if r.prompt is not None else 0 for r in rows)
    phones = torch.zeros(b, n, dtype=torch.long)
    bert = torch.zeros(b, bert_dim, n, dtype=torch.float32)
    prompts = torch.zeros(b, t, dtype=torch.long)
    phone_lens = torch.zeros(b, dtype=torch.long)
    prompt_lens = torch.zeros(b, dtype=torch.long)
    for i, r in enumerate(rows):
        ni = r.phones.shape[0]
        if ni == 0 or tuple(r.bert.shape) != (bert_dim, ni):
            raise InvalidInput(f"t2s row {i}: {ni} phones with bert of shape {tuple(r.bert.shape)}")
        phones[i, :ni] = r.phones
        bert[i, :, :ni] = r.bert
        phone_lens[i] = ni
        if r.prompt is not None:
            prompts[i, : r.prompt.shape[0]] = r.prompt
            prompt_lens[i] = r.prompt.shape[0]
    to = dict(device=device)
    return phones.to(**to), phone_lens.to(**to), bert.to(**to), prompts.to(**to), prompt_lens.to(**to)


@torch.no_grad()
def generate(
    model,
    rows: Sequence[T2SRow],
    params: RowSampling | Sequence[RowSampling] = GREEDY,
    *,
    early_stop_num: int = -1,
    max_steps: int = MAX_STEPS,
    record_logits: bool = False,
) -> list[T2SResult]:
    """Decode rows of different lengths together (one batched prefill, then cached steps).

    A simple reference loop that checks stops on the host every step; the serving engine reuses
    ``prefill`` / ``decode_step`` / :func:`sample_step`. Stop rules as the official single-row
    loop: EOS (dropped), ``len(generated) > early_stop_num`` (token kept; -1 = off), step
    ``max_steps - 1`` (token kept).
    """
    from fastsovits.engine.kv_cache import StaticKVCache

    cfg = model.config
    device = next(model.parameters()).device
    per_row = [params] * len(rows) if isinstance(params, RowSampling) else list(params)
    if len(per_row) != len(rows):
        raise InvalidParameter(f"generate: {len(rows)} rows but {len(per_row)} sampling settings")
    phones, phone_lens, bert, prompts, prompt_lens = pad_rows(rows, cfg.bert_dim, device)
    b = len(rows)
    cache = StaticKVCache.for_model(model, b, int((phone_lens + prompt_lens).max()) + max_steps + 1)
    logits, positions = model.prefill(phones, phone_lens, bert, prompts, prompt_lens, cache)
    knobs = SamplingTensors.from_rows(per_row, cfg.vocab_size, device)
    seen = mark_seen_(torch.zeros(b, cfg.vocab_size, dtype=torch.bool, device=device), prompts, prompt_lens)
    steps = torch.zeros(b, dtype=torch.long, device=device)
    generated: list[list[int]] = [[] for _ in range(b)]
    results: list[T2SResult | None] = [None] * b
    recorded: list[Tensor] = []
    for idx in range(max_steps):
        if record_logits:
            recorded.append(logits.float().cpu().clone())
        tokens, eos_stop = sample_step(logits, seen, knobs, steps, cfg.eos)
        for i, (tok, stop) in enumerate(zip(tokens.tolist(), eos_stop.tolist())):
            if results[i] is not None:
                continue
            reason = "eos" if stop else None
            if not stop:
                generated[i].append(tok)
                if early_stop_num != -1 and len(generated[i]) > early_stop_num:
                    reason = "early_stop"
                elif idx == max_steps - 1:
                    reason = "max_steps"
            if reason is not None:
                results[i] = T2SResult(generated[i], idx, reason)
        if all(r is not None for r in results):
            break
        mark_seen_(seen, tokens.view(b, 1))
        steps += 1
        logits = model.decode_step(tokens.view(b, 1), positions, cache)
        positions += 1
    if record_logits:
        stacked = torch.stack(recorded, dim=1)  # [B, steps, V]
        for i, r in enumerate(results):
            r.step_logits = stacked[i, : r.idx + 1]
    return results  # type: ignore[return-value]
