"""Per-request synthesis parameters (no torch). Names and defaults follow the official ``TTS.run``.

Where the official servers disagree (``api_v2`` defaults ``text_split_method`` to ``cut5``,
``TTS.run`` and the WebUIs to ``cut1``), we follow ``TTS.run``; the server sets its own default.
``batch_size``, ``batch_threshold``, ``split_bucket`` and ``parallel_infer`` are accepted for
compatibility and validated, but the engine batches sentences of all requests by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from fastsovits.errors import InvalidParameter
from fastsovits.limits import MAX_NEW_TOKENS, PARAM_RANGES, SEED_RANGE, SPLIT_METHODS

__all__ = ["SPLIT_METHODS", "SynthesisParams"]


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
    max_new_tokens: int = MAX_NEW_TOKENS  # semantic tokens per sentence (the official cap)
    overlap_length: int = 2  # token streaming: cross-fade between chunks, in semantic tokens
    min_chunk_length: int = 16  # token streaming: tokens per chunk (at least)
    fixed_length_chunk: bool = False  # token streaming: cut every min_chunk_length tokens (else at silences)
    # The sentence guard (engine/guard.py): re-generate sentences that come out too short, too long or looping.
    guard: bool = True
    max_retries: int = 2  # attempts after the first, each with the next seed of a fixed sequence
    guard_min_ratio: float = 0.3  # too short below this share of the voice's tokens per phone
    guard_max_ratio: float = 3.0  # too long above this multiple of it (also the row's token cap)
    guard_loop_share: float = 0.6  # a loop when a period repeats over this share of the sentence's tail
    timestamps: bool = False  # word timestamps in results (one extra T2S forward per sentence); sentence times always

    def __post_init__(self) -> None:
        for name, rng in PARAM_RANGES.items():
            rng.check(name, getattr(self, name))
        if self.text_split_method not in SPLIT_METHODS:
            raise InvalidParameter(f"text_split_method={self.text_split_method!r}: must be one of {SPLIT_METHODS}")
        if self.seed is not None:
            SEED_RANGE.check("seed", self.seed)
        for name in (
            "split_bucket",
            "parallel_infer",
            "return_fragment",
            "streaming_mode",
            "super_sampling",
            "fixed_length_chunk",
            "guard",
            "timestamps",
        ):
            if not isinstance(getattr(self, name), bool):
                raise InvalidParameter(f"{name}={getattr(self, name)!r}: must be true or false")

    @classmethod
    def from_options(cls, base: SynthesisParams | None = None, **given: Any) -> SynthesisParams:
        """``base`` (or the defaults) with the options a user gave; ``None`` values mean "not given"."""
        return replace(base or cls(), **{k: v for k, v in given.items() if v is not None})

    @property
    def fixed_seed(self) -> int | None:
        return None if self.seed in (None, -1) else self.seed

    def with_(self, **changes) -> SynthesisParams:
        return replace(self, **changes)
