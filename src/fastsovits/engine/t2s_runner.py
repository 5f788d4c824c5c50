"""Text-to-semantic runner: a static KV cache of ``num_slots`` rows driven one step at a time.

The scheduler decides which sentence occupies which slot; the runner only moves tensors:
``admit`` prefills new rows into their slots (one batched prefill for rows of different lengths)
and records their sampling knobs in per-slot ``[S]`` tensors; ``step`` samples one token for every
slot (official order, counter-based noise per row seed, EOS ban for the first 11 steps), then runs
one cached decode step for all slots at once. Shapes never change, so there is one host sync per
step (reading the tokens) and no allocation in the cache. Free slots compute ignored values.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from fastsovits.engine.kv_cache import StaticKVCache
from fastsovits.engine.request import StepOutput
from fastsovits.engine.sampling import GREEDY, RowSampling, SamplingTensors, T2SRow, mark_seen_, pad_rows, sample_step


class T2SRunner:
    def __init__(self, model, num_slots: int, max_len: int) -> None:
        self.model = model
        cfg = model.config
        self.device = next(model.parameters()).device
        self.num_slots, self.max_len, self.eos = num_slots, max_len, cfg.eos
        self.cache = StaticKVCache.for_model(model, num_slots, max_len)
        self.knobs = SamplingTensors.from_rows([GREEDY] * num_slots, cfg.vocab_size, self.device)
        self.seen = torch.zeros(num_slots, cfg.vocab_size, dtype=torch.bool, device=self.device)
        self.steps = torch.zeros(num_slots, dtype=torch.long, device=self.device)
        self.positions = torch.zeros(num_slots, dtype=torch.long, device=self.device)
        self.active = torch.zeros(num_slots, dtype=torch.bool, device=self.device)
        self.logits = torch.zeros(num_slots, cfg.vocab_size, device=self.device)

    @torch.no_grad()
    def admit(self, slots: Sequence[int], rows: Sequence[T2SRow], params: Sequence[RowSampling]) -> None:
        """Prefill ``rows`` into cache ``slots``; their first token is sampled by the next ``step``."""
        idx = torch.as_tensor(list(slots), dtype=torch.long, device=self.device)
        phones, phone_lens, bert, prompts, prompt_lens = pad_rows(rows, self.model.config.bert_dim, self.device)
        logits, positions = self.model.prefill(phones, phone_lens, bert, prompts, prompt_lens, self.cache, rows=idx)
        self.logits[idx] = logits.to(self.logits.dtype)
        self.positions[idx] = positions
        self.steps[idx] = 0
        self.active[idx] = True
        seen = torch.zeros(len(rows), self.seen.shape[1], dtype=torch.bool, device=self.device)
        self.seen[idx] = mark_seen_(seen, prompts, prompt_lens)
        new = SamplingTensors.from_rows(list(params), self.seen.shape[1], self.device)
        for name in ("top_k", "top_p", "temperature", "repetition_penalty", "seed"):
            getattr(self.knobs, name)[idx] = getattr(new, name)

    def release(self, slots: Sequence[int]) -> None:
        """Mark slots free (their rows finished or were aborted)."""
        if slots:
            self.active[torch.as_tensor(list(slots), dtype=torch.long, device=self.device)] = False

    @torch.no_grad()
    def step(self) -> StepOutput:
        """Sample a token for every slot, then decode one step for all slots."""
        tokens, eos = sample_step(self.logits, self.seen, self.knobs, self.steps, self.eos)
        mark_seen_(self.seen, tokens.view(-1, 1))
        self.steps += 1
        out = StepOutput(tokens.tolist(), eos.tolist())  # the one host sync of the step
        # Free slots decode at their first audio position so nothing reads outside the cache.
        self.positions = torch.where(self.active, self.positions, self.cache.text_len)
        self.positions.clamp_(max=self.max_len - 1)
        self.logits = self.model.decode_step(tokens.view(-1, 1), self.positions, self.cache).to(self.logits.dtype)
        self.positions += 1
        return out

    def last_logits(self) -> Tensor:
        return self.logits
