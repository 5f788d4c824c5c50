"""Typed messages between the threads of the engine.

Callers and the frontend worker post :data:`InboxMessage` values to the engine thread; the decode
thread posts :data:`DecodeResult` values (also to the engine's inbox, so all bookkeeping stays on
the engine thread); the engine posts :data:`JobEvent` values to each job's handle. Everything is a
frozen dataclass, matched by type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fastsovits.results import StopReason

if TYPE_CHECKING:
    from fastsovits.engine.engine import JobHandle
    from fastsovits.engine.jobs import SentenceJob


# ----------------------------------------------------------------------------- to the engine thread
@dataclass(frozen=True)
class OpenJob:
    handle: JobHandle


@dataclass(frozen=True)
class AddSentences:
    handle: JobHandle
    start: int  # index of the first of ``sentences`` in the job
    sentences: list[SentenceJob]


@dataclass(frozen=True)
class FailJob:
    handle: JobHandle
    error: BaseException


# ----------------------------------------------------------------------------- from the decode thread
@dataclass(frozen=True)
class WholeDecoded:
    keys: list[Any]  # the engine's row ids
    audio: list[np.ndarray]


@dataclass(frozen=True)
class PieceDecoded:
    key: Any
    audio: np.ndarray
    final: bool  # the sentence's last piece


@dataclass(frozen=True)
class DecodeFailed:
    keys: list[Any]
    error: BaseException


DecodeResult = WholeDecoded | PieceDecoded | DecodeFailed
InboxMessage = OpenJob | AddSentences | FailJob | WholeDecoded | PieceDecoded | DecodeFailed


# ----------------------------------------------------------------------------- to a job's handle
@dataclass(frozen=True)
class SentenceOutcome:
    """How a sentence ended, delivered with its last piece of audio."""

    stop_reason: StopReason
    tokens: tuple[int, ...]  # the generated semantic tokens (of the attempt kept)
    phones: int  # target phones
    retries: tuple[str, ...] = ()  # the guard's reason for each attempt that was generated again
    guard: str | None = None  # what the guard still finds wrong with the attempt kept (None: nothing)

    @property
    def attempts(self) -> int:
        return len(self.retries) + 1


@dataclass(frozen=True)
class AudioEvent:
    index: int  # sentence index
    audio: np.ndarray
    outcome: SentenceOutcome | None = None  # set on the sentence's last piece (None: more follows)

    @property
    def final(self) -> bool:
        return self.outcome is not None


@dataclass(frozen=True)
class JobFailed:
    error: BaseException


JobEvent = AudioEvent | JobFailed
