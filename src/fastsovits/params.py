"""Per-request synthesis parameters (no torch). Names and defaults follow the official ``TTS.run``.

Where the official servers disagree (``api_v2`` defaults ``text_split_method`` to ``cut5``,
``TTS.run`` and the WebUIs to ``cut1``), we follow ``TTS.run``; the server sets its own default.
``batch_size``, ``batch_threshold``, ``split_bucket`` and ``parallel_infer`` are accepted for
compatibility and validated, but the engine batches sentences of all requests by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastsovits.errors import InvalidParameter

SPLIT_METHODS = ("cut0", "cut1", "cut2", "cut3", "cut4", "cut5")


@dataclass(frozen=True)
class SynthesisParams:
    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35
    text_split_method: str = "cut1"
    batch_size: int = 1
    batch_threshold: float = 0.75
    split_bucket: bool = True
    speed_factor: float = 1.0
    fragment_interval: float = 0.3
    seed: int | None = None  # None or -1: random
    noise_scale: float = 0.5
    parallel_infer: bool = True
    return_fragment: bool = False
    streaming_mode: bool = False
    sample_steps: int = 32  # v3/v4 only (validated, unused by v1-v2ProPlus)
    super_sampling: bool = False  # v3 only
    max_new_tokens: int = 1500  # semantic tokens per sentence (official cap 1500 = 60 s)
    overlap_length: int = 2  # token streaming: cross-fade between chunks, in semantic tokens
    min_chunk_length: int = 16  # token streaming: tokens per chunk (at least)
    fixed_length_chunk: bool = False  # token streaming: cut every min_chunk_length tokens (else at silences)

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> InvalidParameter:
            return InvalidParameter(f"{name}={getattr(self, name)!r}: {rule}")

        if not isinstance(self.top_k, int) or not 1 <= self.top_k <= 1025:
            raise bad("top_k", "must be an int in [1, 1025]")
        if not 0.0 < self.top_p <= 1.0:
            raise bad("top_p", "must be in (0, 1]")
        if not 0.0 < self.temperature <= 10.0:
            raise bad("temperature", "must be in (0, 10]")
        if not 0.0 < self.repetition_penalty <= 10.0:
            raise bad("repetition_penalty", "must be in (0, 10]")
        if self.text_split_method not in SPLIT_METHODS:
            raise bad("text_split_method", f"must be one of {SPLIT_METHODS}")
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 1024:
            raise bad("batch_size", "must be an int in [1, 1024]")
        if not 0.0 <= self.batch_threshold <= 1.0:
            raise bad("batch_threshold", "must be in [0, 1]")
        if not 0.25 <= self.speed_factor <= 4.0:
            raise bad("speed_factor", "must be in [0.25, 4]")
        if not 0.0 <= self.fragment_interval <= 10.0:
            raise bad("fragment_interval", "must be in [0, 10] seconds")
        if self.seed is not None and (not isinstance(self.seed, int) or not -1 <= self.seed < 2**63):
            raise bad("seed", "must be None, -1 or an int in [0, 2**63)")
        if not 0.0 <= self.noise_scale <= 2.0:
            raise bad("noise_scale", "must be in [0, 2]")
        if not isinstance(self.sample_steps, int) or not 1 <= self.sample_steps <= 128:
            raise bad("sample_steps", "must be an int in [1, 128]")
        if not isinstance(self.max_new_tokens, int) or not 1 <= self.max_new_tokens <= 1500:
            raise bad("max_new_tokens", "must be an int in [1, 1500]")
        if not isinstance(self.overlap_length, int) or not 0 <= self.overlap_length <= 64:
            raise bad("overlap_length", "must be an int in [0, 64]")
        if not isinstance(self.min_chunk_length, int) or not 1 <= self.min_chunk_length <= 1500:
            raise bad("min_chunk_length", "must be an int in [1, 1500]")

    @property
    def fixed_seed(self) -> int | None:
        return None if self.seed in (None, -1) else self.seed

    def with_(self, **changes) -> SynthesisParams:
        return replace(self, **changes)
