"""The sentence guard: catch dropped, runaway and looping sentences, and re-generate them.

The autoregressive model sometimes ends a sentence too early (swallowed words), loops on a pattern
of tokens (stutters, repeated words) or runs to its token cap (a minute of noise). The guard judges
every finished sentence from its tokens alone (no audio needed):

- **too short**: fewer tokens than ``min_ratio`` × the voice's speaking rate × the sentence's phones.
  The rate is learned from the voice itself: its reference clip's tokens per reference-text phone
  (a voice without reference text uses :data:`DEFAULT_TOKENS_PER_PHONE`). Sentences of fewer than
  :data:`MIN_PHONES_TO_JUDGE` phones are never called short (their length varies too much);
- **too long**: it ran to the guard's own cap, ``max_ratio`` × rate × phones (plus a small margin),
  which the engine applies as the row's token cap, so a runaway stops early instead of running to 1500
  (a row that fills its cache row first is too long as well);
- **loop**: a period of 1-24 tokens repeats over at least ``loop_share`` of the sentence's tail.

A failed sentence is generated again with the next seed of a deterministic sequence, up to
``max_retries`` times; the retry is just another row of the continuous batch, so other rows never
wait for it and their tokens do not change. When every attempt fails, the best one (least bad by
the same criteria) is kept. Rows sampled greedily (``top_k=1``) give the same tokens for any seed,
so they are judged and reported but not retried; token-streamed sentences are judged too, but their
audio has already been sent, so they are not retried either.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_TOKENS_PER_PHONE = 2.5  # used when a voice has no reference text to learn its rate from
MIN_PHONES_TO_JUDGE = 4
LIMIT_MARGIN = 10  # tokens added to the guard's cap (short sentences vary most)
LOOP_MIN_TOKENS = 32  # sentences shorter than this are never called loops
LOOP_MAX_PERIOD = 24
_SEED_STEP = 0x9E3779B97F4A7C15  # the golden-ratio increment: retry seeds spread over the whole range


class GuardReason(str, enum.Enum):
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    LOOP = "loop"


@dataclass(frozen=True)
class GuardSpec:
    """The guard of one sentence: the voice's rate and the thresholds (``SynthesisParams`` guard_*)."""

    tokens_per_phone: float
    min_ratio: float = 0.3
    max_ratio: float = 3.0
    loop_share: float = 0.6
    max_retries: int = 2

    def token_limit(self, phones: int) -> int:
        """The most tokens a sentence of ``phones`` phones may take before it is called too long."""
        return math.ceil(self.max_ratio * self.tokens_per_phone * max(phones, 1)) + LIMIT_MARGIN

    def check(self, tokens: Sequence[int], phones: int, filled_cache: bool = False) -> GuardReason | None:
        """What is wrong with a sentence's tokens, or None when it looks right (``filled_cache``: the row
        stopped because its cache row was full, which only a runaway does)."""
        n = len(tokens)
        if filled_cache or n >= self.token_limit(phones):
            return GuardReason.TOO_LONG
        if phones >= MIN_PHONES_TO_JUDGE and n < self.min_ratio * self.tokens_per_phone * phones:
            return GuardReason.TOO_SHORT
        if has_loop(tokens, self.loop_share):
            return GuardReason.LOOP
        return None

    def badness(self, tokens: Sequence[int], phones: int, reason: GuardReason | None) -> float:
        """How far an attempt judged ``reason`` is from acceptable (0 = fine): keeps the best of failed attempts."""
        if reason is None:
            return 0.0
        if reason is GuardReason.TOO_SHORT:  # in (0, 1]: the missing share of the expected minimum
            return 1.0 - len(tokens) / (self.min_ratio * self.tokens_per_phone * phones)
        return 2.0 if reason is GuardReason.LOOP else 3.0  # a loop keeps some speech; a runaway is worst


def has_loop(tokens: Sequence[int], share: float) -> bool:
    """True when some period p (1..24) repeats over at least ``share`` of the second half of ``tokens``."""
    n = len(tokens)
    if n < LOOP_MIN_TOKENS:
        return False
    start = n // 2
    tail = n - start
    for p in range(1, min(LOOP_MAX_PERIOD, tail // 2) + 1):
        same = sum(1 for i in range(start, n) if tokens[i] == tokens[i - p])
        if same >= share * tail:
            return True
    return False


def retry_seed(seed: int, attempt: int) -> int:
    """The seed of retry ``attempt`` (1, 2, ...) of a row first sampled with ``seed``: deterministic."""
    return (seed + attempt * _SEED_STEP) % 2**63


def voice_rate(prompt_tokens: int, prompt_phones: int) -> float:
    """Tokens per phone of a voice's reference (its speaking rate), or the default without one."""
    if prompt_tokens > 0 and prompt_phones > 0:
        return prompt_tokens / prompt_phones
    return DEFAULT_TOKENS_PER_PHONE
