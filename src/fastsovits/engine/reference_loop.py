"""A plain reference decode loop over the T2S model (tests, parity checks, benchmarks).

It checks stops on the host after every step and keeps one cache of its own; the serving engine
reuses the same pieces (``prefill``, ``decode_step``, :func:`~fastsovits.engine.sampling.sample_step`)
through the continuous-batching scheduler instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from fastsovits.engine.sampling import GREEDY, RowSampling, SamplingTensors, mark_seen_, sample_step
from fastsovits.engine.t2s_inputs import T2SRow, pad_rows
from fastsovits.errors import InvalidParameter
from fastsovits.limits import MAX_NEW_TOKENS
from fastsovits.models.kv_cache import StaticKVCache


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


@torch.no_grad()
def generate(
    model,
    rows: Sequence[T2SRow],
    params: RowSampling | Sequence[RowSampling] = GREEDY,
    *,
    early_stop_num: int = -1,
    max_steps: int = MAX_NEW_TOKENS,
    record_logits: bool = False,
) -> list[T2SResult]:
    """Decode rows of different lengths together (one batched prefill, then cached steps).

    A simple reference loop that checks stops on the host every step; the serving engine reuses
    ``prefill`` / ``decode_step`` / :func:`sample_step`. Stop rules as the official single-row
    loop: EOS (dropped), ``len(generated) > early_stop_num`` (token kept; -1 = off), step
    ``max_steps - 1`` (token kept).
    """
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
            assert r is not None
            r.step_logits = stacked[i, : r.idx + 1]
    return results  # type: ignore[return-value]
