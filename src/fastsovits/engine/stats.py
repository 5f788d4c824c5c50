"""Snapshots of an engine for metrics, benchmarks and callers (plain data, read from any thread)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EngineCounters:
    """Running totals kept by the engine thread."""

    jobs: int = 0
    sentences: int = 0
    steps: int = 0
    tokens: int = 0
    oom_retries: int = 0
    steps_by_rows: dict[int, int] = field(default_factory=dict)  # decode steps counted by rows in the step
    stop_reasons: dict[str, int] = field(default_factory=dict)  # finished sentences by how they ended
    guard_flags: dict[str, int] = field(default_factory=dict)  # attempts the guard found wrong, by reason
    guard_retries: dict[str, int] = field(default_factory=dict)  # attempts generated again, by reason


@dataclass(frozen=True)
class EngineStats:
    num_slots: int  # KV-cache rows (sentences generated together at most)
    max_len: int  # cache positions per row (prefix + generated tokens)
    running_rows: int  # sentences generating now
    waiting_rows: int  # sentences waiting for a slot
    prefill_budget: int  # prefix tokens admitted per step (halved after an out-of-memory error)
    decode_backlog: int  # finished sentences and stream chunks waiting for the decoder
    jobs: int
    sentences: int  # sentences delivered as audio
    steps: int  # T2S decode steps
    tokens: int  # semantic tokens generated
    oom_retries: int
    kv_cache_bytes: int
    stage_seconds: dict[
        str, float
    ]  # busy seconds: t2s (prefill + steps), prefill, decode; TTS adds frontend, reference
    steps_by_rows: dict[int, int]  # the batch-size histogram: decode steps by rows in the step
    stop_reasons: dict[str, int]  # sentences by how they ended (eos, max_tokens, aborted)
    guard_flags: dict[str, int] = field(default_factory=dict)  # attempts the guard found wrong, by reason
    guard_retries: dict[str, int] = field(default_factory=dict)  # attempts generated again, by reason
    cuda_graphs: dict[str, int] | None = None  # {"captured", "replays"} when the T2S step uses CUDA graphs

    @property
    def mean_batch_rows(self) -> float:
        """Mean rows per decode step (0.0 before the first step)."""
        return sum(k * v for k, v in self.steps_by_rows.items()) / self.steps if self.steps else 0.0

    @property
    def max_batch_rows(self) -> int:
        """The most rows any decode step has had (0 before the first step)."""
        return max(self.steps_by_rows, default=0)


@dataclass(frozen=True)
class MemoryReport:
    """Bytes held by a ``TTS``: model weights per stage and the KV cache (allocated once, up front)."""

    weights: dict[str, int]  # stage -> bytes of parameters and buffers (t2s, sovits)
    kv_cache_bytes: int
    num_slots: int
    max_len: int

    @property
    def total(self) -> int:
        return sum(self.weights.values()) + self.kv_cache_bytes
