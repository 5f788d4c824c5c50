"""One heavy stage at a time on a CPU, all on one thread: the compute lane.

On a CPU the T2S step, the SoVITS decode, BERT and the reference encoders each use every core
through torch's OpenMP thread pool. Two things follow (both measured in docs/engine.md):

- Run from several threads at once, the pools oversubscribe the cores and every stage slows down
  by more than the overlap gains. So the stages take turns, in arrival order, so that neither the
  T2S thread nor the decode thread starves the other.
- Every thread that runs a parallel region gets an OpenMP team of its own. With more pool threads
  than cores, libgomp stops spinning between regions (it sleeps at once), and a T2S step, which
  is hundreds of short regions, then pays a wake-up for each: about twice as slow at batch 1. So
  the turns are not taken by a lock but on ONE thread: :meth:`ComputeGate.run` hands the call to
  the gate's compute thread and waits for its result. One team exists, and it may spin.

The engines on a CPU share one process-wide gate (:meth:`ComputeGate.shared`), so several resident
models take turns too. Calls made on the compute thread itself run inline (re-entrant). The
caller's autograd mode travels with the call. With ``enabled=False`` (CUDA, where kernels queue
asynchronously and the stages overlap on the device) ``run`` calls the function in place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def control_thread() -> None:
    """Call first in a thread that only coordinates (engine loop, decode hand-over, text frontend) on a
    CPU: its stray tensor work then runs single-threaded and never starts an OpenMP team of its own."""
    torch.set_num_threads(1)


class _Call:
    __slots__ = ("fn", "args", "kwargs", "grad", "threads", "done", "result", "error")

    def __init__(self, fn, args, kwargs, grad: bool, threads: int | None) -> None:
        self.fn, self.args, self.kwargs, self.grad, self.threads = fn, args, kwargs, grad, threads
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class ComputeGate:
    """Runs model calls one at a time on a single thread, first come first served; inline when off."""

    _shared: ComputeGate | None = None
    _shared_lock = threading.Lock()

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.threads = torch.get_num_threads()  # the compute thread's intra-op threads (the creator's setting)
        self._cv = threading.Condition()
        self._calls: list[_Call] = []
        self._thread: threading.Thread | None = None
        self._ident: int | None = None
        self.busy = False

    @classmethod
    def shared(cls) -> ComputeGate:
        """The process-wide gate of CPU engines."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls(True)
            return cls._shared

    def run(self, fn: Callable[..., T], *args, threads: int | None = None, **kwargs) -> T:
        """``fn(*args, **kwargs)`` on the compute thread (with ``threads`` intra-op threads if given)."""
        if not self.enabled or threading.get_ident() == self._ident:
            if threads and torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            return fn(*args, **kwargs)
        call = _Call(fn, args, kwargs, torch.is_grad_enabled(), threads)
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="fastsovits-compute", daemon=True)
                self._thread.start()
            self._calls.append(call)
            self._cv.notify()
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def on_compute_thread(self) -> bool:
        """True when called from inside a call the gate is running (where waiting on the engine would deadlock)."""
        return self.enabled and threading.get_ident() == self._ident

    @property
    def waiting(self) -> int:
        """Calls queued and not started yet."""
        with self._cv:
            return len(self._calls)

    def _loop(self) -> None:
        self._ident = threading.get_ident()
        default_threads = self.threads
        torch.set_num_threads(default_threads)
        while True:
            with self._cv:
                while not self._calls:
                    self._cv.wait()
                call = self._calls.pop(0)
                self.busy = True
            try:
                want = call.threads or default_threads
                if torch.get_num_threads() != want:
                    torch.set_num_threads(want)
                with torch.set_grad_enabled(call.grad):
                    call.result = call.fn(*call.args, **call.kwargs)
            except BaseException as e:  # noqa: BLE001 - handed to the caller, which raises it
                call.error = e
            finally:
                self.busy = False
                call.done.set()
                del call  # drop references to the call's tensors while idle
