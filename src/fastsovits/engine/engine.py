"""The engine: one thread owns the models and runs schedule -> prefill -> step -> decode.

``submit(job)`` is thread-safe and returns a :class:`JobHandle`. Sentences of every submitted job
share the T2S batch (continuous batching: a finished row's slot takes the next waiting sentence at
the next step); finished sentences are decoded together by length buckets and delivered to their
handle as soon as they exist. A failing job gets its error on its handle; the loop keeps serving.
An out-of-memory error during a prefill puts the admitted rows back in the queue and halves the
prefill budget (nothing is lost).

A job may be opened before its sentences exist (``open_job`` then ``add_sentences``): the API's
frontend worker phonemizes sentence by sentence while the first ones are already generating.
A sentence with a ``StreamSpec`` is delivered in pieces while it is generated (token-chunk streaming).
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

from fastsovits.engine.compute_gate import ComputeGate, control_thread
from fastsovits.engine.decode_runner import DecodeItem, DecodeRunner
from fastsovits.engine.decode_worker import ChunkTask, DecodeWorker
from fastsovits.engine.request import Row, RowSpec, StepOutput
from fastsovits.engine.sampling import RowSampling, T2SRow
from fastsovits.engine.scheduler import Scheduler, SchedulerConfig
from fastsovits.engine.stream_decode import MUTE_TOKEN, ChunkPlanner, StreamDecoder, StreamSpec, StreamState
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
    stream: StreamSpec | None = None  # token-chunk streaming of this sentence


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
    final: bool = True  # False: a streamed piece; more of this sentence follows


class JobHandle:
    """Results of one job: ``result()`` (all sentences, in order), iteration (each sentence's audio,
    in order, as ready) or ``pieces()`` (streamed pieces in order: ``(index, audio, last_of_sentence)``)."""

    def __init__(self, engine: Engine, request_id: str, n: int) -> None:
        self._engine, self.request_id, self.n = engine, request_id, n
        self._events: queue.Queue[_Event] = queue.Queue()
        self.tokens: dict[int, list[int]] = {}
        self.done = False

    def _put(self, event: _Event) -> None:
        self._events.put(event)

    def _get(self, timeout: float | None) -> _Event:
        if self._engine.gate.on_compute_thread():
            raise RuntimeError("waiting for a synthesis from a call on the compute thread would deadlock "
                               "(the engine's steps run there): wait outside engine.gate.run")
        try:
            ev = self._events.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"job {self.request_id} not finished after {timeout} s") from None
        if ev.error is not None:
            self.done = True
            raise ev.error
        if ev.final:
            self.tokens[ev.index] = ev.tokens or []
        return ev

    def pieces(self, timeout: float | None = None) -> Iterator[tuple[int, np.ndarray, bool]]:
        pending: dict[int, list[_Event]] = {}
        nxt = 0
        while nxt < self.n:
            queued = pending.get(nxt)
            if queued:
                ev = queued.pop(0)
                yield nxt, ev.audio, ev.final  # type: ignore[misc]
                if ev.final:
                    del pending[nxt]
                    nxt += 1
                continue
            ev = self._get(timeout)
            pending.setdefault(ev.index, []).append(ev)
        self.done = True

    def __iter__(self) -> Iterator[np.ndarray]:
        parts: list[np.ndarray] = []
        for _, audio, last in self.pieces():
            parts.append(audio)
            if last:
                yield np.concatenate(parts) if len(parts) > 1 else parts[0]
                parts = []

    def result(self, timeout: float | None = None) -> list[np.ndarray]:
        out: dict[int, list[np.ndarray]] = {}
        finished = 0
        while finished < self.n:
            ev = self._get(timeout)
            out.setdefault(ev.index, []).append(ev.audio)  # type: ignore[arg-type]
            finished += ev.final
        self.done = True
        return [np.concatenate(out[i]) if len(out[i]) > 1 else out[i][0] for i in range(self.n)]

    def cancel(self) -> None:
        self._engine._cancel(self)


@dataclass
class _Pending:
    handle: JobHandle
    job: SynthesisJob
    rows: dict[int, int] = field(default_factory=dict)  # row_id -> sentence index
    delivered: int = 0


class Engine:
    def __init__(self, t2s_model, synthesizer, *, num_slots: int = 8, max_len: int = 2600,
                 prefill_token_budget: int = 4096, max_waiting: int = 10_000, decode_batch: int | None = None,
                 t2s_threads: int | None = None, decode_threads: int | None = None,
                 exclusive_compute: bool | None = None, cuda_graphs: bool | None = None) -> None:
        # On CPU a batch of long waveforms decodes no faster than one at a time (the convolutions are
        # already long along time and batches spill the caches), so CPU decodes rows one by one.
        cpu = next(synthesizer.parameters()).device.type == "cpu"
        decode_batch = decode_batch or (1 if cpu else 8)
        # CPU: T2S steps and decodes take turns at the cores, on the one compute thread of the process
        # (see compute_gate); CUDA overlaps them.
        exclusive = cpu if exclusive_compute is None else exclusive_compute
        self.gate = ComputeGate.shared() if exclusive else ComputeGate(enabled=False)
        self._t2s_threads = t2s_threads
        self.scheduler = Scheduler(SchedulerConfig(num_slots, max_len, prefill_token_budget, max_waiting))
        # CUDA: the decode step replays captured graphs (None: on for CUDA; see t2s_runner, step_graphs).
        self.t2s = T2SRunner(t2s_model, num_slots, max_len, cuda_graphs=cuda_graphs)
        self.decoder = DecodeRunner(synthesizer, decode_batch)
        self.batch_sizes: deque[int] = deque(maxlen=100_000)  # rows per decode step (recent; tests, demo)
        self.counters = {"steps": 0, "tokens": 0, "sentences": 0, "jobs": 0, "oom_retries": 0}
        self._step_listeners: list[Callable[[int], None]] = []
        self._t2s_seconds = 0.0  # time the engine thread spent in prefill + steps
        self._prefill_seconds = 0.0  # the prefill part of it
        self._inbox: queue.Queue = queue.Queue()
        self._rows: dict[int, tuple[_Pending, SentenceJob, int]] = {}
        self._jobs: dict[str, _Pending] = {}  # open jobs by request id
        self._streams: dict[int, StreamState] = {}  # row_id -> streaming state
        self._tokens: dict[int, list[int]] = {}  # row_id -> generated tokens, while its audio is decoded
        self.stream_decoder = StreamDecoder(synthesizer)
        self.worker = DecodeWorker(self.decoder, self.stream_decoder, self._post_decoded, decode_batch, decode_threads,
                                   gate=self.gate)
        self._mute_sim: list[float] | None = None
        self._planners: dict[StreamSpec, ChunkPlanner] = {}
        self._ids = itertools.count()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------- public
    @property
    def stage_seconds(self) -> dict[str, float]:
        """Busy seconds of the T2S stage (prefill + steps), of its prefill part, and of the decode stage."""
        return {"t2s": self._t2s_seconds, "prefill": self._prefill_seconds, "decode": self.worker.busy_seconds}

    def start(self) -> Engine:
        self.worker.start()
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
                "decode_backlog": self.worker.backlog,
                "t2s_seconds": self._t2s_seconds, "prefill_seconds": self._prefill_seconds,
                "decode_seconds": self.worker.busy_seconds}

    def submit(self, job: SynthesisJob) -> JobHandle:
        """Queue a job whose sentences are all known."""
        handle = self.open_job(len(job.sentences), job.request_id)
        if job.sentences:
            self.add_sentences(handle, 0, job.sentences)
        return handle

    def open_job(self, n: int, request_id: str = "") -> JobHandle:
        """A job of ``n`` sentences that arrive later through :meth:`add_sentences`."""
        request_id = request_id or f"job-{next(self._ids)}"
        self.counters["jobs"] += 1
        handle = JobHandle(self, request_id, n)
        self._inbox.put(("open", _Pending(handle, SynthesisJob([], request_id))))
        self._wake.set()
        return handle

    def add_sentences(self, handle: JobHandle, start: int, sentences: list[SentenceJob]) -> None:
        """Queue sentences ``start ..`` of an open job (thread-safe)."""
        self._inbox.put(("add", (handle, start, sentences)))
        self._wake.set()

    def fail(self, handle: JobHandle, error: BaseException) -> None:
        """End an open job with ``error`` (e.g. its frontend failed); its rows are freed."""
        self._inbox.put(("fail", (handle, error)))
        self._wake.set()

    def _cancel(self, handle: JobHandle) -> None:
        self.fail(handle, Cancelled(f"job {handle.request_id} was cancelled"))

    # ----------------------------------------------------------------------------- loop
    def _drain(self) -> None:
        while True:
            try:
                kind, item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "open":
                if item.handle.n == 0:
                    item.handle._put(_Event(-1, error=InvalidInput("a job needs at least one sentence")))
                else:
                    self._jobs[item.handle.request_id] = item
            elif kind == "decoded":
                self._on_decoded(item)
            elif kind == "add":
                handle, start, sentences = item
                pending = self._jobs.get(handle.request_id)
                if pending is not None and pending.handle is handle:  # else: cancelled or failed already
                    self._accept(pending, start, sentences)
            else:
                handle, error = item
                if handle.request_id in self._jobs:
                    self._abort(handle.request_id, error)

    def _accept(self, pending: _Pending, start: int, sentences: list[SentenceJob]) -> None:
        request_id = pending.handle.request_id
        try:
            for i, s in enumerate(sentences, start):
                if not 0 <= i < pending.handle.n:
                    raise InvalidInput(f"sentence index {i} outside job {request_id} of {pending.handle.n}")
                prompt = s.t2s.prompt.numel() if s.t2s.prompt is not None else 0
                spec = RowSpec(request_id, i, int(s.t2s.phones.numel()) + prompt, s.max_new_tokens)
                row = self.scheduler.add(spec)
                self._rows[row.row_id] = (pending, s, i)
                if s.stream is not None:
                    self._streams[row.row_id] = StreamState()
        except FastSovitsError as e:
            self._abort(request_id, e)

    def _abort(self, request_id: str, error: BaseException) -> None:
        rows = self.scheduler.abort(request_id)
        self.t2s.release([r.slot for r in rows if r.slot is not None])
        for rid, (p, _, _) in list(self._rows.items()):
            if p.handle.request_id == request_id:
                del self._rows[rid]
                self._streams.pop(rid, None)
                self._tokens.pop(rid, None)
        pending = self._jobs.pop(request_id, None)
        if pending is not None:
            pending.handle._put(_Event(-1, error=error))

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

    def _post_decoded(self, result: tuple) -> None:  # called on the decode thread
        self._inbox.put(("decoded", result))
        self._wake.set()

    def _deliver(self, finished: list[Row]) -> None:
        """Hand finished rows to the decode thread (streaming rows: their last chunk)."""
        for r in finished:
            if r.row_id not in self._rows:
                continue
            if r.row_id in self._streams:
                self._stream_piece(r, final=True)
                continue
            _, s, _ = self._rows[r.row_id]
            self.worker.put_whole(r.row_id, DecodeItem(torch.tensor(r.generated, dtype=torch.long), s.target_phones,
                                                       s.ge, s.noise_scale, s.speed, s.seed))
            self._tokens[r.row_id] = list(r.generated)

    def _on_decoded(self, result: tuple) -> None:
        kind = result[0]
        if kind == "whole":
            for row_id, audio in zip(result[1], result[2]):
                self._finish_row(row_id, audio)
        elif kind == "piece":
            _, row_id, audio, final = result
            if row_id not in self._rows:
                return  # its job was cancelled meanwhile
            if final:
                self._finish_row(row_id, audio)
            elif audio.size:
                pending, _, index = self._rows[row_id]
                pending.handle._put(_Event(index, audio=audio, final=False))
        else:
            _, row_ids, error = result
            for request_id in {self._rows[r][0].handle.request_id for r in row_ids if r in self._rows}:
                self._abort(request_id, error)

    def _finish_row(self, row_id: int, audio: np.ndarray) -> None:
        tokens = self._tokens.pop(row_id, [])
        if row_id not in self._rows:
            return  # its job was cancelled while it was being decoded
        pending, _, index = self._rows.pop(row_id)
        self._streams.pop(row_id, None)
        pending.handle._put(_Event(index, audio=audio, tokens=tokens))
        self.counters["sentences"] += 1
        pending.delivered += 1
        if pending.delivered == pending.handle.n:
            self._jobs.pop(pending.handle.request_id, None)

    def _mute_similarity(self) -> list[float]:
        if self._mute_sim is None:
            with torch.no_grad():
                self._mute_sim = self.t2s.model.audio_token_similarity(MUTE_TOKEN).tolist()
        return self._mute_sim

    def _stream_pieces(self) -> None:
        """Decode a chunk of every streaming row whose next chunk boundary has been generated."""
        for r in self.scheduler.running:
            state = self._streams.get(r.row_id)
            if state is None or r.row_id not in self._rows:
                continue
            spec = self._rows[r.row_id][1].stream
            planner = self._planners.get(spec)
            if planner is None:  # one per distinct spec; planners hold no per-row state
                planner = self._planners[spec] = ChunkPlanner(spec, None if spec.fixed_length else self._mute_similarity())
            cut = planner.next_cut(r.generated, state.cut)
            if cut is not None:
                state.cut = cut
                self._stream_piece(r, final=False)

    def _stream_piece(self, r: Row, final: bool) -> None:
        _, s, _ = self._rows[r.row_id]
        state = self._streams[r.row_id]
        seed = s.seed if s.seed is not None else r.row_id * 7919 + 1
        end = len(r.generated) if final else state.cut
        if final:
            self._tokens[r.row_id] = list(r.generated)
        self.worker.put_chunk(ChunkTask(r.row_id, state, torch.tensor(r.generated[:end], dtype=torch.long),
                                        s.target_phones, s.ge, s.stream, s.noise_scale, s.speed, seed, final))

    def _compute(self, batch) -> StepOutput | None:
        """Prefill the batch's new rows, then step (on the compute thread; the engine thread waits)."""
        t0 = time.perf_counter()
        try:
            if batch.prefill:
                admitted = self._prefill(batch.prefill)
                self._prefill_seconds += time.perf_counter() - t0
                if not admitted:
                    return None
            return self.t2s.step() if batch.rows else None
        finally:
            self._t2s_seconds += time.perf_counter() - t0

    def _loop(self) -> None:
        if self.gate.enabled:
            control_thread()
        while not self._stop.is_set():
            self._drain()
            if not self.scheduler.has_work():
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            batch = self.scheduler.schedule()
            out = self.gate.run(self._compute, batch, threads=self._t2s_threads)
            if out is None:
                continue
            t0 = time.perf_counter()
            self.batch_sizes.append(len(batch.rows))
            self.counters["steps"] += 1
            self.counters["tokens"] += len(batch.rows)
            for fn in self._step_listeners:
                fn(len(batch.rows))
            finished = self.scheduler.update(batch, out)
            self.t2s.release([r.slot for r in finished])
            self._t2s_seconds += time.perf_counter() - t0
            if self._streams:
                self._stream_pieces()
            self._deliver(finished)
        self.worker.close()
        self._drain()
        for request_id in list(self._jobs):
            self._abort(request_id, Cancelled("the engine was closed"))
