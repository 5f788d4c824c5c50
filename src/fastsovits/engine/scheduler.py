"""Continuous batching over a fixed number of cache slots (plain data: no torch here).

Rows wait in arrival order. ``schedule()`` admits waiting rows into free slots, first come first
served across requests (a row never overtakes an earlier one, so nothing starves), as long as the
prefix tokens admitted in this step stay within the prefill budget; a row longer than the whole
budget is admitted alone. ``update()`` applies one step's tokens, stops rows (EOS, their token cap,
or the cache length) and frees their slots, which the next ``schedule()`` refills.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

from fastsovits.engine.request import Row, RowSpec, RowStatus, StepOutput
from fastsovits.errors import CapacityError, InvalidInput, InvalidParameter
from fastsovits.limits import MAX_NEW_TOKENS


@dataclass(frozen=True)
class SchedulerConfig:
    num_slots: int  # rows decoded together (KV-cache batch)
    max_len: int  # cache positions per slot (prefix + generated)
    prefill_token_budget: int  # prefix tokens admitted per step (bounds prefill activation memory)
    max_waiting: int = 10_000  # rows allowed to wait; beyond this add() raises CapacityError

    def __post_init__(self) -> None:
        for name in ("num_slots", "max_len", "prefill_token_budget", "max_waiting"):
            if getattr(self, name) < 1:
                raise InvalidParameter(f"scheduler {name} must be >= 1, got {getattr(self, name)}")


@dataclass
class ScheduledBatch:
    prefill: list[Row] = field(default_factory=list)  # admitted this step (slots assigned)
    decode: list[Row] = field(default_factory=list)  # running before this step

    @property
    def rows(self) -> list[Row]:
        return self.prefill + self.decode


class Scheduler:
    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self.prefill_budget = config.prefill_token_budget
        self._waiting: deque[Row] = deque()
        self._slots: list[Row | None] = [None] * config.num_slots
        self._ids = itertools.count()

    # ----------------------------------------------------------------------------- queries
    @property
    def num_waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> list[Row]:
        return [r for r in self._slots if r is not None]

    @property
    def num_running(self) -> int:
        return len(self.running)

    @property
    def free_slots(self) -> int:
        return self._slots.count(None)

    def has_work(self) -> bool:
        return bool(self._waiting) or self.num_running > 0

    # ----------------------------------------------------------------------------- requests
    def add(self, spec: RowSpec, *, first: bool = False) -> Row:
        """Queue a row (``first``: at the head of the queue, for a row generated again whose request's
        audio waits for it; it still waits for a free slot like any other)."""
        if spec.prefix_len < 1:
            raise InvalidInput(f"row {spec.request_id}#{spec.index} has an empty prefix")
        if spec.prefix_len + 1 > self.config.max_len:
            raise InvalidInput(
                f"sentence {spec.index} of {spec.request_id} needs {spec.prefix_len} prefix tokens; "
                f"the cache holds {self.config.max_len} per row: split the text into shorter sentences"
            )
        if not 1 <= spec.max_new_tokens <= MAX_NEW_TOKENS:
            raise InvalidParameter(f"max_new_tokens must be in [1, {MAX_NEW_TOKENS}], got {spec.max_new_tokens}")
        if len(self._waiting) >= self.config.max_waiting:
            raise CapacityError(f"{len(self._waiting)} sentences are waiting (limit {self.config.max_waiting})")
        n = next(self._ids)
        row = Row(spec, row_id=n, arrival=-n if first else n)
        if first:
            self._waiting.appendleft(row)
        else:
            self._waiting.append(row)
        return row

    def abort(self, request_id: str) -> list[Row]:
        """Remove a request's waiting rows and free its running rows' slots at once."""
        aborted = [r for r in self._waiting if r.spec.request_id == request_id]
        self._waiting = deque(r for r in self._waiting if r.spec.request_id != request_id)
        for i, r in enumerate(self._slots):
            if r is not None and r.spec.request_id == request_id:
                self._slots[i] = None
                aborted.append(r)
        for r in aborted:  # a running row keeps its last slot number so the runner can release it
            r.status = RowStatus.ABORTED
        return aborted

    # ----------------------------------------------------------------------------- steps
    def schedule(self) -> ScheduledBatch:
        batch = ScheduledBatch(decode=self.running)
        spent = 0
        while self._waiting and None in self._slots:
            row = self._waiting[0]
            if batch.prefill and spent + row.spec.prefix_len > self.prefill_budget:
                break  # FIFO: later rows wait for the next step rather than overtake this one
            self._waiting.popleft()
            slot = self._slots.index(None)
            self._slots[slot] = row
            row.slot, row.status = slot, RowStatus.RUNNING
            spent += row.spec.prefix_len
            batch.prefill.append(row)
        return batch

    def update(self, batch: ScheduledBatch, out: StepOutput) -> list[Row]:
        """Apply one step's outputs to the batch's rows; return the rows that finished."""
        finished = []
        for row in batch.rows:
            if row.status is not RowStatus.RUNNING or row.slot is None:
                continue  # aborted during the step
            slot = row.slot
            if out.eos[slot]:
                status = RowStatus.FINISHED_EOS
            else:
                row.generated.append(out.tokens[slot])
                if len(row.generated) < row.spec.max_new_tokens and row.length < self.config.max_len:
                    continue
                status = RowStatus.FINISHED_LENGTH
            row.status = status
            self._slots[slot] = None  # free for the next schedule(); row.slot keeps the number for the runner
            finished.append(row)
        return finished

    def shrink_prefill_budget(self) -> int:
        """Halve the prefill budget after an out-of-memory error (never below 1); returns it."""
        self.prefill_budget = max(1, self.prefill_budget // 2)
        return self.prefill_budget

    def requeue(self, rows: list[Row]) -> None:
        """Put rows admitted in a failed step back at the head of the queue, in arrival order."""
        for row in sorted(rows, key=lambda r: r.arrival, reverse=True):
            if row.slot is not None and self._slots[row.slot] is row:
                self._slots[row.slot] = None
            row.slot, row.status = None, RowStatus.WAITING
            row.generated.clear()
            self._waiting.appendleft(row)
