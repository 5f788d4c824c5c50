"""Plain-data rows the scheduler moves around (no torch). One row = one sentence to generate."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

MAX_NEW_TOKENS = 1500  # the official hard cap on generated semantic tokens (60 s at 25 Hz)


class RowStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"
    ABORTED = "aborted"


@dataclass(frozen=True)
class RowSpec:
    """What the scheduler needs to know about a sentence."""

    request_id: str
    index: int  # sentence index within its request
    prefix_len: int  # text phones (prompt + target) + prompt semantic tokens
    max_new_tokens: int = MAX_NEW_TOKENS


@dataclass(eq=False)
class Row:
    spec: RowSpec
    row_id: int
    arrival: int
    status: RowStatus = RowStatus.WAITING
    slot: int | None = None  # cache slot while running (kept after the row ends, for the runner)
    generated: list[int] = field(default_factory=list)
    stop_reason: str | None = None  # "eos" | "max_tokens" | "max_len" | "aborted"

    @property
    def length(self) -> int:
        """Cache positions this row occupies now."""
        return self.spec.prefix_len + len(self.generated)


@dataclass(frozen=True)
class StepOutput:
    """One step of the runner, indexed by cache slot: the sampled token and whether it stops the row."""

    tokens: list[int]
    eos: list[bool]
