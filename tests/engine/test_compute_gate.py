"""The compute gate: one holder at a time, first come first served, re-entrant, free when off."""

from __future__ import annotations

import threading
import time

import pytest

from fastsovits.engine.compute_gate import ComputeGate


def test_one_holder_at_a_time_and_fifo_handover() -> None:
    gate = ComputeGate()
    inside, order, overlap = [], [], []

    def work(name: str) -> None:
        with gate:
            if inside:
                overlap.append(name)
            inside.append(name)
            order.append(name)
            time.sleep(0.02)
            inside.remove(name)

    with gate:  # hold it while the others queue in a known order
        threads = []
        for i in range(4):
            t = threading.Thread(target=work, args=(f"t{i}",))
            t.start()
            threads.append(t)
            deadline = time.monotonic() + 5
            while gate.waiting < i + 1 and time.monotonic() < deadline:
                time.sleep(0.001)
        assert gate.waiting == 4
    for t in threads:
        t.join(10)
    assert order == ["t0", "t1", "t2", "t3"]
    assert not overlap


def test_reentrant_for_its_holder_and_checked_on_exit() -> None:
    gate = ComputeGate()
    with gate, gate:
        assert gate.waiting == 0
    with pytest.raises(RuntimeError):
        gate.__exit__(None, None, None)  # not held by this thread


def test_a_holder_does_not_starve_a_waiter() -> None:
    """A thread that leaves and re-enters in a loop lets a queued thread in between."""
    gate = ComputeGate()
    got_in = threading.Event()
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            with gate:
                time.sleep(0.002)

    t = threading.Thread(target=busy)
    t.start()
    try:
        waiter = threading.Thread(target=lambda: (gate.__enter__(), got_in.set(), gate.__exit__(None, None, None)))
        waiter.start()
        assert got_in.wait(5), "the waiter never got the gate"
        waiter.join(5)
    finally:
        stop.set()
        t.join(5)


def test_disabled_gate_lets_everyone_in_at_once() -> None:
    gate = ComputeGate(enabled=False)
    barrier = threading.Barrier(3, timeout=5)

    def work() -> None:
        with gate:
            barrier.wait()  # all three inside together, or this times out

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not barrier.broken
