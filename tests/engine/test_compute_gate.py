"""The compute gate: calls run one at a time on ONE thread, first come first served; inline when off."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from fastsovits.engine.compute_gate import ComputeGate


def test_calls_run_one_at_a_time_on_one_thread_in_arrival_order() -> None:
    gate = ComputeGate()
    inside, order, overlap, idents = [], [], [], set()
    release = threading.Event()

    def work(name: str) -> str:
        if inside:
            overlap.append(name)
        inside.append(name)
        order.append(name)
        idents.add(threading.get_ident())
        if name == "hold":
            release.wait(5)
        time.sleep(0.01)
        inside.remove(name)
        return name.upper()

    results: dict[str, str] = {}
    holder = threading.Thread(target=lambda: results.update(hold=gate.run(work, "hold")))
    holder.start()
    deadline = time.monotonic() + 5
    while not gate.busy and time.monotonic() < deadline:
        time.sleep(0.001)
    threads = []
    for i in range(4):  # queue in a known order while the first call holds the thread
        t = threading.Thread(target=lambda n=f"t{i}": results.update({n: gate.run(work, n)}))
        t.start()
        threads.append(t)
        while gate.waiting < i + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
    assert gate.waiting == 4
    release.set()
    for t in [holder, *threads]:
        t.join(10)
    assert order == ["hold", "t0", "t1", "t2", "t3"]
    assert not overlap
    assert results == {"hold": "HOLD", "t0": "T0", "t1": "T1", "t2": "T2", "t3": "T3"}
    assert len(idents) == 1 and threading.get_ident() not in idents  # all on the gate's own thread


def test_errors_reach_the_caller_and_the_gate_keeps_serving() -> None:
    gate = ComputeGate()

    def boom() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        gate.run(boom)
    assert gate.run(lambda x: x + 1, 41) == 42


def test_reentrant_calls_run_inline_and_grad_mode_travels() -> None:
    gate = ComputeGate()
    outer = gate.run(lambda: (threading.get_ident(), gate.run(threading.get_ident)))
    assert outer[0] == outer[1]  # the inner call did not queue behind the outer one (no deadlock)
    with torch.no_grad():
        assert gate.run(torch.is_grad_enabled) is False
    assert gate.run(torch.is_grad_enabled) is True


def test_threads_option_is_applied_per_call() -> None:
    gate = ComputeGate()
    default = gate.run(torch.get_num_threads)
    assert gate.run(torch.get_num_threads, threads=1) == 1
    assert gate.run(torch.get_num_threads) == default  # back to the thread's default


def test_a_busy_caller_does_not_starve_another() -> None:
    """A thread that calls in a loop lets a queued call in between."""
    gate = ComputeGate()
    got_in = threading.Event()
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            gate.run(time.sleep, 0.002)

    t = threading.Thread(target=busy)
    t.start()
    try:
        waiter = threading.Thread(target=lambda: gate.run(got_in.set))
        waiter.start()
        assert got_in.wait(5), "the waiter never got its turn"
        waiter.join(5)
    finally:
        stop.set()
        t.join(5)


def test_disabled_gate_runs_calls_in_place_and_together() -> None:
    gate = ComputeGate(enabled=False)
    barrier = threading.Barrier(3, timeout=5)
    idents = []

    def work() -> None:
        idents.append(threading.get_ident())
        barrier.wait()  # all three inside together, or this times out

    threads = [threading.Thread(target=gate.run, args=(work,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not barrier.broken and len(set(idents)) == 3


def test_cpu_engines_share_one_gate() -> None:
    assert ComputeGate.shared() is ComputeGate.shared()
    assert ComputeGate.shared().enabled


def test_on_compute_thread_is_true_only_inside_a_call() -> None:
    gate = ComputeGate()
    assert not gate.on_compute_thread()
    assert gate.run(gate.on_compute_thread) is True
    assert not ComputeGate(enabled=False).on_compute_thread()
