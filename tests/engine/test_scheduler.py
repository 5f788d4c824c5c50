"""The scheduler with fake step outputs: admission, slot reuse, FIFO, budget, stops, abort."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastsovits.engine.request import RowSpec, RowStatus, StepOutput
from fastsovits.engine.scheduler import Scheduler, SchedulerConfig
from fastsovits.errors import CapacityError, InvalidInput, InvalidParameter


def _sched(slots=2, max_len=100, budget=1000, waiting=100) -> Scheduler:
    return Scheduler(SchedulerConfig(slots, max_len, budget, waiting))


def _step(s: Scheduler, eos_slots=(), token=7):
    batch = s.schedule()
    n = s.config.num_slots
    out = StepOutput([token] * n, [i in eos_slots for i in range(n)])
    return batch, s.update(batch, out)


def test_imports_no_torch() -> None:
    code = "import sys, fastsovits.engine.scheduler; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_slot_reuse_and_sharing() -> None:
    s = _sched(slots=2)
    a0, a1 = s.add(RowSpec("a", 0, 10)), s.add(RowSpec("a", 1, 10))
    b0 = s.add(RowSpec("b", 0, 10))
    batch, done = _step(s)
    assert batch.prefill == [a0, a1] and not done and s.num_waiting == 1
    _, done = _step(s, eos_slots={a0.slot})
    assert done == [a0] and a0.stop_reason == "eos" and a0.generated == [7]
    batch, _ = _step(s)  # the freed slot is refilled at the next step
    assert batch.prefill == [b0] and {r.spec.request_id for r in batch.rows} == {"a", "b"}
    assert s.free_slots == 0


def test_fifo_across_requests() -> None:
    s = _sched(slots=1)
    rows = [s.add(RowSpec(r, i, 5)) for r in ("x", "y") for i in range(2)]
    order = []
    while s.has_work():
        batch = s.schedule()
        order += batch.prefill
        s.update(batch, StepOutput([1], [True]))
    assert order == rows


def test_prefill_budget() -> None:
    s = _sched(slots=4, budget=20)
    small = [s.add(RowSpec("a", i, 8)) for i in range(3)]
    batch, _ = _step(s)
    assert batch.prefill == small[:2]  # 8 + 8 <= 20, a third would exceed
    s2 = _sched(slots=4, budget=20)
    big = s2.add(RowSpec("b", 0, 50))
    s2.add(RowSpec("b", 1, 5))
    batch = s2.schedule()
    assert batch.prefill == [big]  # a row over the budget is admitted alone
    assert s2.shrink_prefill_budget() == 10 and s2.shrink_prefill_budget() == 5
    for _ in range(10):
        s2.shrink_prefill_budget()
    assert s2.prefill_budget == 1


def test_stop_rules() -> None:
    s = _sched(slots=3, max_len=14)
    capped = s.add(RowSpec("a", 0, 5, max_new_tokens=2))
    long = s.add(RowSpec("a", 1, 10))
    _step(s)
    _, done = _step(s)
    assert done == [capped] and capped.stop_reason == "max_tokens" and len(capped.generated) == 2
    _step(s)
    _, done = _step(s)
    assert done == [long] and long.stop_reason == "max_len" and long.length == 14


def test_abort_frees_slots_and_leaves_others() -> None:
    s = _sched(slots=2)
    a = [s.add(RowSpec("a", i, 5)) for i in range(3)]
    b = s.add(RowSpec("b", 0, 5))
    batch = s.schedule()
    aborted = s.abort("a")
    assert set(aborted) == set(a) and all(r.status is RowStatus.ABORTED for r in a)
    assert s.free_slots == 2 and s.num_waiting == 1
    assert s.update(batch, StepOutput([1, 1], [True, True])) == []  # aborted rows ignore the step
    assert s.schedule().prefill == [b]


def test_requeue_after_failed_step() -> None:
    s = _sched(slots=2)
    rows = [s.add(RowSpec("a", i, 5)) for i in range(3)]
    batch = s.schedule()
    s.requeue(batch.prefill)
    assert s.free_slots == 2 and s.schedule().prefill == rows[:2]


def test_typed_errors() -> None:
    s = _sched(slots=1, max_len=10, waiting=2)
    with pytest.raises(InvalidInput):
        s.add(RowSpec("a", 0, 10))
    with pytest.raises(InvalidParameter):
        s.add(RowSpec("a", 0, 5, max_new_tokens=1501))
    s.add(RowSpec("a", 0, 5))
    s.add(RowSpec("a", 1, 5))
    with pytest.raises(CapacityError):
        s.add(RowSpec("a", 2, 5))
    with pytest.raises(InvalidParameter):
        SchedulerConfig(0, 10, 10)


@settings(max_examples=60, deadline=None)
@given(
    slots=st.integers(1, 4),
    budget=st.integers(1, 40),
    rows=st.lists(st.tuples(st.sampled_from("abcd"), st.integers(1, 30), st.integers(1, 20)), min_size=1, max_size=25),
    seed=st.integers(0, 10_000),
)
def test_random_workload_invariants(slots, budget, rows, seed) -> None:
    import random

    rng = random.Random(seed)
    s = _sched(slots=slots, max_len=60, budget=budget, waiting=1000)
    added = [s.add(RowSpec(r, i, p, max_new_tokens=m)) for i, (r, p, m) in enumerate(rows)]
    admitted_order = []
    for _ in range(10_000):
        if not s.has_work():
            break
        batch = s.schedule()
        if len(batch.prefill) > 1:
            assert sum(r.spec.prefix_len for r in batch.prefill) <= s.prefill_budget
        admitted_order += batch.prefill
        occupied = [r.slot for r in s.running]
        assert len(occupied) == len(set(occupied)) <= slots
        if rng.random() < 0.05:
            s.abort(rng.choice("abcd"))
        out = StepOutput([rng.randrange(1024) for _ in range(slots)], [rng.random() < 0.2 for _ in range(slots)])
        s.update(batch, out)
    assert not s.has_work(), "every row ends"
    assert all(r.status.finished for r in added)
    assert [r.arrival for r in admitted_order] == sorted(r.arrival for r in admitted_order)  # FIFO


def test_a_row_generated_again_is_queued_first() -> None:
    s = Scheduler(SchedulerConfig(num_slots=1, max_len=64, prefill_token_budget=100))
    rows = [s.add(RowSpec("a", i, 5)) for i in range(3)]
    retry = s.add(RowSpec("b", 0, 5), first=True)
    assert s.schedule().prefill == [retry]  # ahead of rows that arrived before it
    s.requeue([retry])
    assert s.schedule().prefill == [retry] and s.num_waiting == len(rows)
