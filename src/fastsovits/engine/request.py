"""Plain-data rows the scheduler moves around (no torch). One row = one sentence to generate."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from fastsovits.limits import MAX_NEW_TOKENS
from fastsovits.results import StopReason


class RowStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED_EOS = "finished_eos"
    FINISHED_LENGTH = "finished_length"  # token cap or cache length
    ABORTED = "aborted"

    @property
    def finished(self) -> bool:
        return self in (RowStatus.FINISHED_EOS, RowStatus.FINISHED_LENGTH, RowStatus.ABORTED)


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

    @property
    def length(self) -> int:
        """Cache positions this row occupies now."""
        return self.spec.prefix_len + len(self.generated)

    @property
    def stop_reason(self) -> StopReason | None:
        """Derived from the status (the one home of a row's state); None while the row is live."""
        if self.status is RowStatus.FINISHED_EOS:
            return StopReason.EOS
        if self.status is RowStatus.ABORTED:
            return StopReason.ABORTED
        if self.status is RowStatus.FINISHED_LENGTH:
            capped = len(self.generated) >= self.spec.max_new_tokens
            return StopReason.MAX_TOKENS if capped else StopReason.MAX_LEN
        return None


@dataclass(frozen=True)
class StepOutput:
    """One step of the runner, indexed by cache slot: the sampled token and whether it stops the row."""

    tokens: list[int]
    eos: list[bool]
