"""Text-to-semantic runner: a static KV cache of ``num_slots`` rows driven one step at a time.

The scheduler decides which sentence occupies which slot; the runner only moves tensors:
``admit`` prefills new rows into their slots (one batched prefill for rows of different lengths)
and records their sampling knobs in per-slot ``[S]`` tensors; ``step`` samples one token for every
slot (official order, counter-based noise per row seed, EOS ban for the first 11 steps), then runs
one cached decode step for the slots in use. There is one host sync per step (reading the tokens)
and no allocation in the cache.

Only the used part of the cache is touched: a step runs rows ``0 .. n-1`` where ``n`` is one past
the highest busy slot (the scheduler hands out the lowest free slot, so busy slots stay packed)
and attends over positions ``0 .. kv_len-1``, the longest busy row rounded up to ``kv_bucket`` (16 on
CPU, where a step reads the whole fp32 KV window from memory and rounding is pure waste; 64 on CUDA, where
fewer distinct lengths mean fewer graph buckets).
Both are host-side integers (no sync) and views of the cache (no copy). Free slots inside
``0 .. n-1`` compute ignored values.

CUDA graphs (``cuda_graphs``; on by default on CUDA): ``n`` is rounded up to a row bucket and the
model's decode step replays a graph captured for that (rows, kv_len) shape (``step_graphs``). If a
capture fails under the default setting the runner logs a warning once and steps eagerly from then
on; with ``cuda_graphs=True`` the failure is raised.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor

from fastsovits.engine.request import StepOutput
from fastsovits.engine.sampling import GREEDY, RowSampling, SamplingTensors, mark_seen_, sample_step
from fastsovits.engine.step_graphs import Capture, GraphCaptureError, GraphedStep
from fastsovits.engine.t2s_inputs import T2SRow, pad_rows
from fastsovits.models.kv_cache import StaticKVCache

log = logging.getLogger(__name__)

KV_BUCKET = {"cpu": 16}  # attention length granularity (positions) per device type
KV_BUCKET_DEFAULT = 64


class T2SRunner:
    def __init__(
        self,
        model,
        num_slots: int,
        max_len: int,
        *,
        cuda_graphs: bool | None = None,
        graph_capture: Capture | None = None,
    ) -> None:
        self.model = model
        cfg = model.config
        self.device = next(model.parameters()).device
        self.kv_bucket = KV_BUCKET.get(self.device.type, KV_BUCKET_DEFAULT)
        self.num_slots, self.max_len, self.eos = num_slots, max_len, cfg.eos
        self.cache = StaticKVCache.for_model(model, num_slots, max_len)
        self.knobs = SamplingTensors.from_rows([GREEDY] * num_slots, cfg.vocab_size, self.device)
        self.seen = torch.zeros(num_slots, cfg.vocab_size, dtype=torch.bool, device=self.device)
        self.steps = torch.zeros(num_slots, dtype=torch.long, device=self.device)
        self.positions = torch.zeros(num_slots, dtype=torch.long, device=self.device)
        self.active = torch.zeros(num_slots, dtype=torch.bool, device=self.device)
        self.logits = torch.zeros(num_slots, cfg.vocab_size, device=self.device)
        self._host_pos: dict[int, int] = {}  # busy slot -> next write position (host copy, no sync)
        # Graphs hold the positional table by address: size it for the whole cache before any capture.
        model.ensure_positions(max_len)
        self._graphs_required = bool(cuda_graphs)
        # A capture of one's own (tests) turns graphs on too, unless cuda_graphs=False.
        use_graphs = (
            cuda_graphs if cuda_graphs is not None else (self.device.type == "cuda" or graph_capture is not None)
        )
        self.graphs = GraphedStep(model, self.cache, num_slots, capture=graph_capture) if use_graphs else None

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
        for slot, row in zip(slots, rows):
            self._host_pos[int(slot)] = int(row.phones.numel()) + (0 if row.prompt is None else int(row.prompt.numel()))
        seen = torch.zeros(len(rows), self.seen.shape[1], dtype=torch.bool, device=self.device)
        self.seen[idx] = mark_seen_(seen, prompts, prompt_lens)
        new = SamplingTensors.from_rows(list(params), self.seen.shape[1], self.device)
        for name in ("top_k", "top_p", "temperature", "repetition_penalty", "seed"):
            getattr(self.knobs, name)[idx] = getattr(new, name)

    def release(self, slots: Sequence[int]) -> None:
        """Mark slots free (their rows finished or were aborted)."""
        if slots:
            self.active[torch.as_tensor(list(slots), dtype=torch.long, device=self.device)] = False
            for slot in slots:
                self._host_pos.pop(int(slot), None)

    def window(self) -> tuple[int, int]:
        """(rows, kv_len) the next step covers."""
        if not self._host_pos:
            return 1, min(self.max_len, self.kv_bucket)  # (1 is a row bucket)
        n = max(self._host_pos) + 1
        if self.graphs is not None:
            n = self.graphs.rows_for(n)
        longest = max(self._host_pos.values()) + 1
        return n, min(self.max_len, -(-longest // self.kv_bucket) * self.kv_bucket)

    @torch.no_grad()
    def step(self) -> StepOutput:
        """Sample a token for every busy slot, then decode one step for them (rows 0..n-1)."""
        n, kv_len = self.window()
        k = self.knobs
        knobs = SamplingTensors(
            k.top_k[:n], k.top_p[:n], k.temperature[:n], k.repetition_penalty[:n], k.seed[:n], vocab_ids=k.vocab_ids
        )
        seen, steps, active = self.seen[:n], self.steps[:n], self.active[:n]
        tokens, eos = sample_step(self.logits[:n], seen, knobs, steps, self.eos)
        mark_seen_(seen, tokens.view(-1, 1))
        steps += 1
        out = StepOutput(tokens.tolist(), eos.tolist())  # the one host sync of the step
        # Free slots decode at their first audio position so nothing reads outside the cache.
        positions = torch.where(active, self.positions[:n], self.cache.text_len[:n])
        positions.clamp_(max=kv_len - 1)
        self.logits[:n] = self._decode_step(tokens.view(-1, 1), positions, kv_len)
        self.positions[:n] = positions + 1
        for slot in self._host_pos:
            self._host_pos[slot] += 1
        return out

    def _decode_step(self, tokens: Tensor, positions: Tensor, kv_len: int) -> Tensor:
        if self.graphs is not None:
            try:
                return self.graphs(tokens, positions, kv_len)
            except GraphCaptureError as e:
                if self._graphs_required:
                    raise
                log.warning("%s; the T2S step runs without CUDA graphs from now on", e)
                self.graphs = None
        return self.model.decode_step(tokens, positions, self.cache, kv_len)
