"""One heavy stage at a time on a CPU: a first-come, first-served gate around model calls.

On a CPU the T2S step, the SoVITS decode and the reference encoder each use every core through
their intra-op thread pools. Run from several threads at once, the pools oversubscribe the cores
and every stage slows down by more than the overlap gains (measured in docs/engine.md). The gate
lets one model call run at a time, handing over in arrival order so that neither the T2S thread
nor the decode thread starves the other: the engine thread's steps keep coming between decode
calls, and decoding keeps pace with generation.

On CUDA the gate is off: kernels are queued asynchronously and the stages overlap on the device.
No torch import: the gate is plain threading.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager


class ComputeGate(AbstractContextManager):
    """A fair (ticket) lock; ``enabled=False`` makes entering it free."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._cv = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self._owner: int | None = None
        self._depth = 0

    def __enter__(self) -> ComputeGate:
        if not self.enabled:
            return self
        me = threading.get_ident()
        with self._cv:
            if self._owner == me:  # re-entered by the thread that holds it
                self._depth += 1
                return self
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cv.wait()
            self._owner, self._depth = me, 1
        return self

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        with self._cv:
            if self._owner != threading.get_ident():
                raise RuntimeError("the compute gate was left by a thread that does not hold it")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._serving += 1
                self._cv.notify_all()

    @property
    def waiting(self) -> int:
        """Threads queued for the gate, not counting the holder."""
        with self._cv:
            return self._next_ticket - self._serving - (1 if self._owner is not None else 0)
