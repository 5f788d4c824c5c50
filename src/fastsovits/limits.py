"""The one home of every limit and per-request default range.

``SynthesisParams`` validates against :data:`PARAM_RANGES` (once, when it is built); the server's
request schemas, the CLI and the engine read the same values from here, so a limit changes in one
place. Process-level capacity (cache slots, queue sizes) belongs to the runtime options of
``TTS``/the server, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastsovits.errors import InvalidParameter

MAX_NEW_TOKENS = 1500  # the official hard cap on semantic tokens per sentence (60 s at 25 Hz)
TOKEN_RATE_HZ = 25  # semantic tokens per second of audio
EARLY_STOP_HZ = 50  # the official early_stop_num is this constant times the GPT checkpoint's max_sec
SPLIT_METHODS = ("cut0", "cut1", "cut2", "cut3", "cut4", "cut5")
SAMPLE_STEPS = (4, 8, 16, 32)  # the official CFM step counts of v3/v4
MAX_CLIP_SECONDS = 30.0  # the longest clip decoded for a voice (a reference itself must last 3-10 s)


@dataclass(frozen=True)
class Range:
    """A closed (or, with ``low_open``, half-open) numeric range; ``integer`` asks for an int."""

    low: float
    high: float
    integer: bool = False
    low_open: bool = False

    def describe(self) -> str:
        kind = "an int" if self.integer else "a number"
        left = "(" if self.low_open else "["
        return f"must be {kind} in {left}{self.low:g}, {self.high:g}]"

    def contains(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False  # True/False are not numbers here
        if self.integer and not isinstance(value, int):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return bool(above and value <= self.high)

    def check(self, name: str, value: object) -> None:
        if not self.contains(value):
            raise InvalidParameter(f"{name}={value!r}: {self.describe()}")


# Ranges of the numeric SynthesisParams fields (official limits where the official code has them).
PARAM_RANGES: dict[str, Range] = {
    "top_k": Range(1, 1025, integer=True),
    "top_p": Range(0.0, 1.0, low_open=True),
    "temperature": Range(0.0, 10.0, low_open=True),
    "repetition_penalty": Range(0.0, 10.0, low_open=True),
    "batch_size": Range(1, 1024, integer=True),
    "batch_threshold": Range(0.0, 1.0),
    "speed_factor": Range(0.25, 4.0),
    "fragment_interval": Range(0.0, 10.0),
    "noise_scale": Range(0.0, 2.0),
    "sample_steps": Range(1, 128, integer=True),
    "max_new_tokens": Range(1, MAX_NEW_TOKENS, integer=True),
    "overlap_length": Range(0, 64, integer=True),
    "min_chunk_length": Range(1, MAX_NEW_TOKENS, integer=True),
    "max_retries": Range(0, 5, integer=True),
    "guard_min_ratio": Range(0.0, 1.0),
    "guard_max_ratio": Range(1.0, 20.0),
    "guard_loop_share": Range(0.1, 1.0),
}
SEED_RANGE = Range(-1, 2**63 - 1, integer=True)  # -1 (or None) means a random seed


@dataclass(frozen=True)
class TextStreamLimits:
    """Bounds of one text-in/audio-out session (``TTS.stream_text``, WebSocket ``/v1/audio/speech/stream``).

    The server takes ``max_chars`` from its ``--max-text-chars`` and ``max_session_s`` from its request
    timeout; everything else is these defaults."""

    max_chars: int = 20_000  # text of the whole session
    max_delta_chars: int = 4_096  # one delta
    max_pending_chars: int = 300  # text without a place to cut is cut at this length (see text/incremental.py)
    max_sentences: int = 1_000  # sentences of the whole session
    max_ahead: int = 8  # sentences generating ahead of the listener; beyond it, reading more text waits
    idle_timeout_s: float = 60.0  # no new text while nothing is left to play: the session ends
    max_session_s: float = 1_800.0  # wall time of the whole session

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_delta_chars", "max_pending_chars", "max_sentences", "max_ahead"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InvalidParameter(f"{name}={getattr(self, name)!r}: must be a positive int")
        for name in ("idle_timeout_s", "max_session_s"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) <= 0:
                raise InvalidParameter(f"{name}={getattr(self, name)!r}: must be a positive number of seconds")
