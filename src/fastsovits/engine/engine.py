"""The engine: one thread owns the models and runs schedule -> prefill -> step -> decode.

``submit(job)`` is thread-safe and returns a :class:`JobHandle`. Sentences of every submitted job
share the T2S batch (continuous batching: a finished row's slot takes the next waiting sentence at
the next step); finished sentences are decoded together by length buckets and delivered to their
handle as soon as they exist. A failing job gets its error on its handle; the loop keeps serving.
An out-of-memory error during a prefill puts the admitted rows back in the queue and halves the
prefill budget (nothing is lost).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from fastsovits.engine.decode_runner import DecodeItem, DecodeRunner
from fastsovits.engine.request import Row, RowSpec
from fastsovits.engine.sampling import RowSampling, T2SRow
from fastsovits.engine.scheduler import Scheduler, SchedulerConfig
from fastsovits.engine.t2s_runner import T2SRunner
from fastsovits.errors import Cancelled, CapacityError, FastSovitsError, InvalidInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SentenceJob:
    """One sentence: T2S inputs (prompt+target phones, BERT, prompt tokens) and decode inputs."""

    t2s: T2SRow
    target_phones: torch.Tensor  # [N] ids the decoder reads (target sentence only, as official)
    ge: torch.Tensor  # [1, gin, 1] style of the voice
    sampling: RowSampling = RowSampling()
    max_new_tokens: int = 1500
    noise_scale: float = 0.5
    speed: float = 1.0
    seed: int | None = None


@dataclass
class SynthesisJob:
    sentences: list[SentenceJob]
    request_id: str = ""


@dataclass
class _Event:
    index: int
    audio: np.ndarray | None = None
    tokens: list[int] | None = None
    error: BaseException | None = None


class JobHandle:
    """Results of one job: ``result()`` (all sentences, in order) or iteration (in order, as ready)."""

    def __init__(self, engine: Engine, request_id: str, n: int) -> None:
        self._engine, self.request_id, self.n = engine, request_id, n
        self._events: queue.Queue[_Event] = queue.Queue()
        self.tokens: dict[int, list[int]] = {}

    def _put(self, event: _Event) -> None:
        self._events.put(event)

    def __iter__(self) -> Iterator[np.ndarray]:
        ready: dict[int, np.ndarray] = {}
        nxt = 0
        while nxt < self.n:
            if nxt in ready:
                yield ready.pop(nxt)
                nxt += 1
                continue
            ev = self._events.get()
            if ev.error is not None:
                raise ev.error
            self.tokens[ev.index] = ev.tokens or []
            ready[ev.index] = ev.audio  # type: ignore[assignment]

    def result(self, timeout: float | None = None) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [None] * self.n
        for _ in range(self.n):
            try:
                ev = self._events.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"job {self.request_id} not finished after {timeout} s") from None
            if ev.error is not None:
                raise ev.error
            self.tokens[ev.index] = ev.tokens or []
            out[ev.index] = ev.audio
        return out  # type: ignore[return-value]

    def cancel(self) -> None:
        self._engine._cancel(self)


@dataclass
class _Pending:
    handle: JobHandle
    job: SynthesisJob
    rows: dict[int, int] = field(default_factory=dict)  # row_id -> sentence index


class Engine:
    def __init__(self, t2s_model, synthesizer, *, num_slots: int = 8, max_len: int = 2600,
                 prefill_token_budget: int = 4096, max_waiting: int = 10_000, decode_batch: int = 8) -> None:
        self.scheduler = Scheduler(SchedulerConfig(num_slots, max_len, prefill_token_budget, max_waiting))
        self.t2s = T2SRunner(t2s_model, num_slots, max_len)
        self.decoder = DecodeRunner(synthesizer, decode_batch)
        self.batch_sizes: deque[int] = deque(maxlen=100_000)  # rows per decode step (recent; tests, demo)
        self.counters = {"steps": 0, "tokens": 0, "sentences": 0, "jobs": 0, "oom_retries": 0}
        self._step_listeners: list[Callable[[int], None]] = []
        self.stage_seconds = {"t2s": 0.0, "decode": 0.0}  # time spent in each stage by the engine thread
        self._inbox: queue.Queue = queue.Queue()
        self._rows: dict[int, tuple[_Pending, SentenceJob, int]] = {}
        self._ids = itertools.count()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------- public
    def start(self) -> Engine:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="fastsovits-engine", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the loop; jobs still running are cancelled (their handles raise ``Cancelled``)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def add_step_listener(self, fn: Callable[[int], None]) -> None:
        """``fn(rows)`` is called on the engine thread after every decode step (keep it cheap)."""
        self._step_listeners.append(fn)

    def stats(self) -> dict[str, int | float]:
        """A snapshot for metrics: queue depth, active rows, slots, totals (read from any thread)."""
        return {"waiting_rows": self.scheduler.num_waiting, "running_rows": self.scheduler.num_running,
                "num_slots": self.scheduler.config.num_slots, "max_len": self.scheduler.config.max_len,
                "prefill_budget": self.scheduler.prefill_budget, **self.counters,
                "t2s_seconds": self.stage_seconds["t2s"], "decode_seconds": self.stage_seconds["decode"]}

    def submit(self, job: SynthesisJob) -> JobHandle:
        job.request_id = job.request_id or f"job-{next(self._ids)}"
        self.counters["jobs"] += 1
        handle = JobHandle(self, job.request_id, len(job.sentences))
        self._inbox.put(("submit", _Pending(handle, job)))
        self._wake.set()
        return handle

    def _cancel(self, handle: JobHandle) -> None:
        self._inbox.put(("cancel", handle))
        self._wake.set()

    # ----------------------------------------------------------------------------- loop
    def _drain(self) -> None:
        while True:
            try:
                kind, item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "submit":
                self._accept(item)
            else:
                self._abort(item.request_id, Cancelled(f"job {item.request_id} was cancelled"))

    def _accept(self, pending: _Pending) -> None:
        added: list[Row] = []
        if not pending.job.sentences:
            pending.handle._put(_Event(-1, error=InvalidInput("a job needs at least one sentence")))
            return
        try:
            for i, s in enumerate(pending.job.sentences):
                prompt = s.t2s.prompt.numel() if s.t2s.prompt is not None else 0
                spec = RowSpec(pending.job.request_id, i, int(s.t2s.phones.numel()) + prompt, s.max_new_tokens)
                row = self.scheduler.add(spec)
                added.append(row)
                self._rows[row.row_id] = (pending, s, i)
        except FastSovitsError as e:
            self._abort(pending.job.request_id, e)
            if not added:  # nothing was queued, so _abort found no row to report through
                pending.handle._put(_Event(-1, error=e))

    def _abort(self, request_id: str, error: BaseException) -> None:
        rows = self.scheduler.abort(request_id)
        self.t2s.release([r.slot for r in rows if r.slot is not None])
        handles = {p.handle for p, _, _ in (self._rows.pop(r.row_id) for r in rows if r.row_id in self._rows)}
        for rid, (p, _, _) in list(self._rows.items()):
            if p.job.request_id == request_id:
                handles.add(p.handle)
                del self._rows[rid]
        for h in handles:
            h._put(_Event(-1, error=error))

    def _prefill(self, rows: list[Row]) -> bool:
        try:
            self.t2s.admit([r.slot for r in rows], [self._rows[r.row_id][1].t2s for r in rows],
                           [self._rows[r.row_id][1].sampling for r in rows])
            return True
        except torch.OutOfMemoryError:
            before = self.scheduler.prefill_budget
            after = self.scheduler.shrink_prefill_budget()
            if len(rows) == 1 and after == before:
                # A single row that cannot be prefilled even alone: fail its job, keep serving.
                self._abort(rows[0].spec.request_id,
                            CapacityError(f"sentence of {rows[0].spec.prefix_len} tokens does not fit in memory"))
                return False
            log.warning("out of memory in prefill; prefill budget %d -> %d, rows requeued", before, after)
            self.counters["oom_retries"] += 1
            self.scheduler.requeue(rows)
            return False

    def _deliver(self, finished: list[Row]) -> None:
        live = [r for r in finished if r.row_id in self._rows]
        if not live:
            return
        items = []
        for r in live:
            _, s, _ = self._rows[r.row_id]
            items.append(DecodeItem(torch.tensor(r.generated, dtype=torch.long), s.target_phones, s.ge,
                                    s.noise_scale, s.speed, s.seed))
        try:
            audios = self.decoder.decode(items)
        except Exception as e:  # noqa: BLE001 - reported to the jobs concerned, the loop goes on
            for request_id in {self._rows[r.row_id][0].job.request_id for r in live}:
                self._abort(request_id, e)
            return
        for r, audio in zip(live, audios):
            pending, _, index = self._rows.pop(r.row_id)
            pending.handle._put(_Event(index, audio=audio, tokens=list(r.generated)))
            self.counters["sentences"] += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._drain()
            if not self.scheduler.has_work():
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            batch = self.scheduler.schedule()
            t0 = time.perf_counter()
            if batch.prefill and not self._prefill(batch.prefill):
                continue
            if not batch.rows:
                continue
            self.batch_sizes.append(len(batch.rows))
            out = self.t2s.step()
            self.counters["steps"] += 1
            self.counters["tokens"] += len(batch.rows)
            for fn in self._step_listeners:
                fn(len(batch.rows))
            finished = self.scheduler.update(batch, out)
            self.t2s.release([r.slot for r in finished])
            t1 = time.perf_counter()
            self._deliver(finished)
            self.stage_seconds["t2s"] += t1 - t0
            self.stage_seconds["decode"] += time.perf_counter() - t1
        for pending, _, _ in list(self._rows.values()):
            self._abort(pending.job.request_id, Cancelled("the engine was closed"))
