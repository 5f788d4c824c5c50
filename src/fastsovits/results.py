"""What a synthesis tells its caller besides the audio: how each sentence ended (no torch).

Every result carries one :class:`SentenceResult` per sentence, in order, like faster-whisper's
segments: its text, why generation stopped, how many semantic tokens and phones it had, how long
its audio is, and what the sentence guard did (the reason of each retry, and what it still finds
wrong with the attempt kept). A sentence that ran to its token cap (``StopReason.MAX_TOKENS``) is the classic
GPT-SoVITS runaway (minutes of noise or a truncated sentence); callers can detect and report it.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass


class StopReason(str, enum.Enum):
    """Why a sentence stopped generating (compares equal to its string value)."""

    EOS = "eos"  # the model ended the sentence
    MAX_TOKENS = "max_tokens"  # it ran to its token cap
    MAX_LEN = "max_len"  # (engine-internal) it filled its cache row; users see MAX_TOKENS
    ABORTED = "aborted"  # its request was cancelled or failed

    @property
    def public(self) -> StopReason:
        """What a user is told: ``eos``, ``max_tokens`` (either length cap) or ``aborted``."""
        return StopReason.MAX_TOKENS if self is StopReason.MAX_LEN else self


@dataclass(frozen=True)
class SentenceResult:
    index: int  # position of the sentence in its request
    text: str  # the sentence as synthesised (after the split method)
    stop_reason: StopReason
    tokens: int  # semantic tokens generated (25 per second of audio at speed 1)
    phones: int  # phones of the sentence
    audio_seconds: float  # duration of its audio (without the pause that follows it)
    retries: tuple[str, ...] = ()  # the sentence guard's reason for each attempt it generated again
    guard: str | None = None  # what the guard still finds wrong with the attempt kept (None: nothing)

    @property
    def attempts(self) -> int:
        """Attempts generated for this sentence (1 + retries)."""
        return len(self.retries) + 1

    @property
    def capped(self) -> bool:
        """True when the sentence ran to its token cap instead of ending by itself."""
        return self.stop_reason is StopReason.MAX_TOKENS

    def to_dict(self) -> dict:
        out = asdict(self)
        out["stop_reason"] = self.stop_reason.value
        out["retries"] = list(self.retries)
        out["attempts"] = self.attempts
        return out


def capped_indices(sentences: tuple[SentenceResult, ...] | list[SentenceResult]) -> list[int]:
    """Indices of the sentences that ran to their token cap."""
    return [s.index for s in sentences if s.capped]
