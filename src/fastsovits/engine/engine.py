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

Threads talk through typed messages (``engine/messages.py``): the loop drains its inbox and
dispatches on the message type; each row's bookkeeping lives in one :class:`RowContext`.
Every sentence's last piece carries its :class:`~fastsovits.engine.messages.SentenceOutcome`
(how it stopped, its tokens).
"""

from __future__ import annotations

import itertools
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from fastsovits.engine.budget import plan_cache
from fastsovits.engine.compute_gate import ComputeGate, control_thread
from fastsovits.engine.decode_runner import DecodeItem, DecodeRunner, SentenceDecoder
from fastsovits.engine.decode_v3 import InContextDecodeRunner
from fastsovits.engine.decode_worker import ChunkTask, DecodeWorker
from fastsovits.engine.guard import GuardReason, GuardSpec, retry_seed
from fastsovits.engine.jobs import SentenceJob, SynthesisJob
from fastsovits.engine.messages import (
    AddSentences,
    AudioEvent,
    DecodeFailed,
    FailJob,
    InboxMessage,
    JobEvent,
    JobFailed,
    OpenJob,
    PieceDecoded,
    SentenceOutcome,
    WholeDecoded,
)
from fastsovits.engine.request import Row, RowSpec
from fastsovits.engine.scheduler import ScheduledBatch, Scheduler, SchedulerConfig
from fastsovits.engine.stats import EngineCounters, EngineStats
from fastsovits.engine.stream_decode import MUTE_TOKEN, ChunkPlanner, StreamDecoder, StreamSpec, StreamState
from fastsovits.engine.t2s_runner import T2SRunner
from fastsovits.errors import Cancelled, CapacityError, FastSovitsError, InvalidInput
from fastsovits.models.kv_cache import StaticKVCache
from fastsovits.models.sovits import Synthesizer
from fastsovits.models.sovits_v3 import SynthesizerV3
from fastsovits.models.t2s import Text2Semantic
from fastsovits.results import StopReason

log = logging.getLogger(__name__)

__all__ = ["Engine", "JobHandle", "SentenceJob", "SynthesisJob"]


class JobHandle:
    """Results of one job: ``result()`` (all sentences, in order), iteration (each sentence's audio,
    in order, as ready) or ``events()`` (streamed pieces in order; a sentence's last piece carries
    its outcome). ``outcomes[i]`` tells how sentence ``i`` ended once it has been delivered."""

    def __init__(self, engine: Engine, request_id: str, n: int) -> None:
        self._engine, self.request_id, self.n = engine, request_id, n
        self._events: queue.Queue[JobEvent] = queue.Queue()
        self.outcomes: dict[int, SentenceOutcome] = {}
        self.done = False
        self.cancelled = False  # set by cancel(): producers (the frontend worker) stop feeding it

    @property
    def tokens(self) -> dict[int, list[int]]:
        """Generated semantic tokens of each delivered sentence."""
        return {i: list(o.tokens) for i, o in self.outcomes.items()}

    def _put(self, event: JobEvent) -> None:
        self._events.put(event)

    def _get(self, timeout: float | None) -> AudioEvent:
        if self._engine.gate.on_compute_thread():
            raise RuntimeError(
                "waiting for a synthesis from a call on the compute thread would deadlock "
                "(the engine's steps run there): wait outside engine.gate.run"
            )
        try:
            ev = self._events.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"job {self.request_id} not finished after {timeout} s") from None
        if isinstance(ev, JobFailed):
            self.done = True
            raise ev.error
        if ev.outcome is not None:
            self.outcomes[ev.index] = ev.outcome
        return ev

    def events(self, timeout: float | None = None) -> Iterator[AudioEvent]:
        """Pieces of audio in sentence order (pieces of one sentence in the order generated)."""
        pending: dict[int, list[AudioEvent]] = {}
        nxt = 0
        while nxt < self.n:
            queued = pending.get(nxt)
            if queued:
                ev = queued.pop(0)
                yield ev
                if ev.final:
                    del pending[nxt]
                    nxt += 1
                continue
            ev = self._get(timeout)
            pending.setdefault(ev.index, []).append(ev)
        self.done = True

    def __iter__(self) -> Iterator[np.ndarray]:
        parts: list[np.ndarray] = []
        for ev in self.events():
            parts.append(ev.audio)
            if ev.final:
                yield np.concatenate(parts) if len(parts) > 1 else parts[0]
                parts = []

    def result(self, timeout: float | None = None) -> list[np.ndarray]:
        out: dict[int, list[np.ndarray]] = {}
        finished = 0
        while finished < self.n:
            ev = self._get(timeout)
            out.setdefault(ev.index, []).append(ev.audio)
            finished += ev.final
        self.done = True
        return [np.concatenate(out[i]) if len(out[i]) > 1 else out[i][0] for i in range(self.n)]

    def cancel(self) -> None:
        self.cancelled = True
        self._engine.fail(self, Cancelled(f"job {self.request_id} was cancelled"))


@dataclass
class JobState:
    """An open job on the engine thread: its handle and how many sentences have been delivered."""

    handle: JobHandle
    delivered: int = 0


@dataclass
class RowContext:
    """Everything the engine keeps about one row (sentence) between admission and delivery."""

    job: JobState
    sentence: SentenceJob
    index: int  # sentence index in its job
    stream: StreamState | None = None  # token streaming state (streamed sentences only)
    outcome: SentenceOutcome | None = None  # set when generation ended, while its audio is decoded
    attempts: list[Attempt] = field(default_factory=list)  # earlier attempts the guard rejected


@dataclass(frozen=True)
class Attempt:
    tokens: tuple[int, ...]
    stop_reason: StopReason
    verdict: GuardReason


class Engine:
    def __init__(
        self,
        t2s_model: Text2Semantic,
        synthesizer: Synthesizer | SynthesizerV3,
        *,
        vocoder: torch.nn.Module | None = None,
        num_slots: int | None = None,
        max_len: int | None = None,
        prefill_token_budget: int = 4096,
        max_waiting: int = 10_000,
        decode_batch: int | None = None,
        t2s_threads: int | None = None,
        decode_threads: int | None = None,
        exclusive_compute: bool | None = None,
        cuda_graphs: bool | None = None,
    ) -> None:
        device = next(synthesizer.parameters()).device
        if num_slots is None or max_len is None:
            # Size the KV cache (the engine's one large allocation) from the free memory up front.
            cfg = t2s_model.config
            plan = plan_cache(
                cfg.n_layers,
                cfg.hidden_dim,
                device=str(device),
                dtype_bytes=StaticKVCache.dtype_for(t2s_model).itemsize,
                max_slots=num_slots or 32,
            )
            num_slots, max_len = num_slots or plan.num_slots, max_len or plan.max_len
        # On CPU a batch of long waveforms decodes no faster than one at a time (the convolutions are
        # already long along time and batches spill the caches), so CPU decodes v1-v2ProPlus rows one by
        # one; the v3/v4 CFM (a transformer run for every step) gains from batching everywhere.
        cpu = device.type == "cpu"
        in_context = isinstance(synthesizer, SynthesizerV3)
        decode_batch = decode_batch or (1 if cpu and not in_context else 8)
        # CPU: T2S steps and decodes take turns at the cores, on the one compute thread of the process
        # (see compute_gate); CUDA overlaps them.
        exclusive = cpu if exclusive_compute is None else exclusive_compute
        self.gate = ComputeGate.shared() if exclusive else ComputeGate(enabled=False)
        self._t2s_threads = t2s_threads
        self.scheduler = Scheduler(SchedulerConfig(num_slots, max_len, prefill_token_budget, max_waiting))
        # CUDA: the decode step replays captured graphs (None: on for CUDA; see t2s_runner, step_graphs).
        self.t2s = T2SRunner(t2s_model, num_slots, max_len, cuda_graphs=cuda_graphs)
        self.decoder: SentenceDecoder
        self.stream_decoder: StreamDecoder | None
        if isinstance(synthesizer, SynthesizerV3):
            if vocoder is None:
                raise InvalidInput(f"a {synthesizer.config.version} model needs its vocoder")
            self.decoder, self.stream_decoder = InContextDecodeRunner(synthesizer, vocoder, decode_batch), None
        else:
            self.decoder, self.stream_decoder = DecodeRunner(synthesizer, decode_batch), StreamDecoder(synthesizer)
        self.counters = EngineCounters()
        self._step_listeners: list[Callable[[int], None]] = []
        self._t2s_seconds = 0.0  # time the engine thread spent in prefill + steps
        self._prefill_seconds = 0.0  # the prefill part of it
        self._inbox: queue.Queue[InboxMessage] = queue.Queue()
        self._rows: dict[int, RowContext] = {}  # row_id -> context, from admission to delivery
        self._jobs: dict[str, JobState] = {}  # open jobs by request id
        self.worker = DecodeWorker(
            self.decoder, self.stream_decoder, self._post, decode_batch, decode_threads, gate=self.gate
        )
        self._mute_sim: list[float] | None = None
        self._planners: dict[StreamSpec, ChunkPlanner] = {}
        self._ids = itertools.count()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------- public
    @property
    def stage_seconds(self) -> dict[str, float]:
        """Busy seconds of the T2S stage (prefill + steps), of its prefill part, and of the decode stage
        (v3/v4: also of its parts, encoder features / CFM / vocoder)."""
        parts = self.decoder.part_seconds  # v3/v4: "decode.encode", "decode.cfm", "decode.vocoder"
        return {
            "t2s": self._t2s_seconds,
            "prefill": self._prefill_seconds,
            "decode": self.worker.busy_seconds,
            **{f"decode.{k}": v for k, v in parts.items()},
        }

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

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_step_listener(self, fn: Callable[[int], None]) -> None:
        """``fn(rows)`` is called on the engine thread after every decode step (keep it cheap)."""
        self._step_listeners.append(fn)

    def stats(self) -> EngineStats:
        """A snapshot for metrics and callers (read from any thread)."""
        c, cfg = self.counters, self.scheduler.config
        return EngineStats(
            num_slots=cfg.num_slots,
            max_len=cfg.max_len,
            running_rows=self.scheduler.num_running,
            waiting_rows=self.scheduler.num_waiting,
            prefill_budget=self.scheduler.prefill_budget,
            decode_backlog=self.worker.backlog,
            jobs=c.jobs,
            sentences=c.sentences,
            steps=c.steps,
            tokens=c.tokens,
            oom_retries=c.oom_retries,
            kv_cache_bytes=self.t2s.cache.nbytes,
            stage_seconds=dict(self.stage_seconds),
            steps_by_rows=dict(c.steps_by_rows),
            stop_reasons=dict(c.stop_reasons),
            guard_flags=dict(c.guard_flags),
            guard_retries=dict(c.guard_retries),
            cuda_graphs=self._graph_counts(),
        )

    def _graph_counts(self) -> dict[str, int] | None:
        graphs = self.t2s.graphs
        return None if graphs is None else {"captured": graphs.captures, "replays": graphs.replays}

    def submit(self, job: SynthesisJob) -> JobHandle:
        """Queue a job whose sentences are all known."""
        handle = self.open_job(len(job.sentences), job.request_id)
        if job.sentences:
            self.add_sentences(handle, 0, job.sentences)
        return handle

    def open_job(self, n: int, request_id: str = "") -> JobHandle:
        """A job of ``n`` sentences that arrive later through :meth:`add_sentences`."""
        request_id = request_id or f"job-{next(self._ids)}"
        self.counters.jobs += 1
        handle = JobHandle(self, request_id, n)
        self._post(OpenJob(handle))
        return handle

    def add_sentences(self, handle: JobHandle, start: int, sentences: list[SentenceJob]) -> None:
        """Queue sentences ``start ..`` of an open job (thread-safe)."""
        self._post(AddSentences(handle, start, sentences))

    def fail(self, handle: JobHandle, error: BaseException) -> None:
        """End an open job with ``error`` (e.g. its frontend failed, or it was cancelled); its rows are freed."""
        self._post(FailJob(handle, error))

    def _post(self, message: InboxMessage) -> None:  # any thread
        self._inbox.put(message)
        self._wake.set()

    # ----------------------------------------------------------------------------- inbox
    def _drain(self) -> None:
        while True:
            try:
                message = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._dispatch(message)

    def _dispatch(self, message: InboxMessage) -> None:
        if isinstance(message, OpenJob):
            handle = message.handle
            if handle.n == 0:
                handle._put(JobFailed(InvalidInput("a job needs at least one sentence")))
            else:
                self._jobs[handle.request_id] = JobState(handle)
        elif isinstance(message, AddSentences):
            job = self._jobs.get(message.handle.request_id)
            if job is not None and job.handle is message.handle:  # else: cancelled or failed already
                self._accept(job, message.start, message.sentences)
        elif isinstance(message, FailJob):
            if message.handle.request_id in self._jobs:
                self._abort(message.handle.request_id, message.error)
        elif isinstance(message, WholeDecoded):
            for row_id, audio in zip(message.keys, message.audio):
                self._finish_row(row_id, audio)
        elif isinstance(message, PieceDecoded):
            self._on_piece(message)
        elif isinstance(message, DecodeFailed):
            for request_id in {self._rows[r].job.handle.request_id for r in message.keys if r in self._rows}:
                self._abort(request_id, message.error)
        else:  # pragma: no cover - the message union is closed
            raise TypeError(f"unknown engine message {type(message).__name__}")

    def _accept(self, job: JobState, start: int, sentences: list[SentenceJob]) -> None:
        request_id = job.handle.request_id
        try:
            for i, s in enumerate(sentences, start):
                if not 0 <= i < job.handle.n:
                    raise InvalidInput(f"sentence index {i} outside job {request_id} of {job.handle.n}")
                row = self.scheduler.add(RowSpec(request_id, i, s.prefix_len, s.max_new_tokens))
                self._rows[row.row_id] = RowContext(job, s, i, StreamState() if s.stream is not None else None)
        except FastSovitsError as e:
            self._abort(request_id, e)

    def _abort(self, request_id: str, error: BaseException) -> None:
        rows = self.scheduler.abort(request_id)
        self.t2s.release([r.slot for r in rows if r.slot is not None])
        for row_id, ctx in list(self._rows.items()):
            if ctx.job.handle.request_id == request_id:
                del self._rows[row_id]
        self._count_stop(StopReason.ABORTED, len(rows))
        job = self._jobs.pop(request_id, None)
        if job is not None:
            job.handle._put(JobFailed(error))

    # ----------------------------------------------------------------------------- rows
    def _prefill(self, rows: list[Row]) -> bool:
        try:
            ctxs = [self._rows[r.row_id] for r in rows]
            self.t2s.admit(
                [r.slot for r in rows if r.slot is not None],
                [c.sentence.t2s for c in ctxs],
                [c.sentence.sampling for c in ctxs],
            )
            return True
        except torch.OutOfMemoryError:
            before = self.scheduler.prefill_budget
            after = self.scheduler.shrink_prefill_budget()
            if len(rows) == 1 and after == before:
                # A single row that cannot be prefilled even alone: fail its job, keep serving.
                self._abort(
                    rows[0].spec.request_id,
                    CapacityError(f"sentence of {rows[0].spec.prefix_len} tokens does not fit in memory"),
                )
                return False
            log.warning("out of memory in prefill; prefill budget %d -> %d, rows requeued", before, after)
            self.counters.oom_retries += 1
            self.scheduler.requeue(rows)
            return False

    def _deliver(self, finished: list[Row]) -> None:
        """Judge finished rows (the guard may generate one again), then hand them to the decode thread
        (streaming rows: their last chunk)."""
        for r in finished:
            ctx = self._rows.get(r.row_id)
            if ctx is None:
                continue
            assert r.stop_reason is not None
            guard, phones = ctx.sentence.guard, int(ctx.sentence.decode.phones.numel())
            tokens, stop = tuple(r.generated), r.stop_reason.public
            filled = r.stop_reason is StopReason.MAX_LEN
            verdict = guard.check(tokens, phones, filled) if guard is not None else None
            if verdict is not None and guard is not None:  # (a kept attempt's verdict is its own)
                self.counters.guard_flags[verdict.value] = self.counters.guard_flags.get(verdict.value, 0) + 1
                if self._retryable(ctx, guard):
                    ctx.attempts.append(Attempt(tokens, stop, verdict))
                    self._retry(r, ctx)
                    continue
                if ctx.attempts:  # keep the best of all attempts
                    current = Attempt(tokens, stop, verdict)
                    best = min([*ctx.attempts, current], key=lambda a: guard.badness(a.tokens, phones, a.verdict))
                    tokens, stop, verdict = best.tokens, best.stop_reason, best.verdict
            retries = tuple(a.verdict.value for a in ctx.attempts)
            ctx.outcome = SentenceOutcome(stop, tokens, phones, retries, verdict.value if verdict else None)
            if ctx.stream is not None:
                self._stream_piece(r, ctx, final=True)
            else:
                codes = torch.tensor(tokens, dtype=torch.long)
                self.worker.put_whole(r.row_id, DecodeItem(codes, ctx.sentence.decode))

    @staticmethod
    def _retryable(ctx: RowContext, guard: GuardSpec) -> bool:
        """A sampled, not token-streamed row with attempts left (greedy rows repeat themselves)."""
        return ctx.stream is None and ctx.sentence.sampling.top_k != 1 and len(ctx.attempts) < guard.max_retries

    def _retry(self, r: Row, ctx: RowContext) -> None:
        """Generate the sentence of ``r`` again as a new row with the next seed of its sequence."""
        sampling = ctx.sentence.sampling
        base = sampling.seed if sampling.seed is not None else random.SystemRandom().getrandbits(62)
        ctx.sentence = replace(ctx.sentence, sampling=replace(sampling, seed=retry_seed(base, 1)))
        del self._rows[r.row_id]
        reason = ctx.attempts[-1].verdict.value
        self.counters.guard_retries[reason] = self.counters.guard_retries.get(reason, 0) + 1
        try:
            spec = RowSpec(r.spec.request_id, ctx.index, ctx.sentence.prefix_len, ctx.sentence.max_new_tokens)
            row = self.scheduler.add(spec, first=True)  # queued first: its request's audio waits for it
        except FastSovitsError as e:
            self._abort(r.spec.request_id, e)
            return
        self._rows[row.row_id] = ctx

    def _on_piece(self, message: PieceDecoded) -> None:
        ctx = self._rows.get(message.key)
        if ctx is None:
            return  # its job was cancelled meanwhile
        if message.final:
            self._finish_row(message.key, message.audio)
        elif message.audio.size:
            ctx.job.handle._put(AudioEvent(ctx.index, message.audio))

    def _finish_row(self, row_id: int, audio: np.ndarray) -> None:
        ctx = self._rows.pop(row_id, None)
        if ctx is None:
            return  # its job was cancelled while it was being decoded
        assert ctx.outcome is not None
        ctx.job.handle._put(AudioEvent(ctx.index, audio, ctx.outcome))
        self.counters.sentences += 1
        self._count_stop(ctx.outcome.stop_reason)
        ctx.job.delivered += 1
        if ctx.job.delivered == ctx.job.handle.n:
            self._jobs.pop(ctx.job.handle.request_id, None)

    def _count_stop(self, reason: StopReason, n: int = 1) -> None:
        if n:
            self.counters.stop_reasons[reason.value] = self.counters.stop_reasons.get(reason.value, 0) + n

    # ----------------------------------------------------------------------------- streaming
    def _mute_similarity(self) -> list[float]:
        if self._mute_sim is None:
            with torch.no_grad():
                self._mute_sim = self.t2s.model.audio_token_similarity(MUTE_TOKEN).tolist()
        return self._mute_sim

    def _stream_pieces(self) -> None:
        """Decode a chunk of every streaming row whose next chunk boundary has been generated."""
        for r in self.scheduler.running:
            ctx = self._rows.get(r.row_id)
            if ctx is None or ctx.stream is None or ctx.sentence.stream is None:
                continue
            spec = ctx.sentence.stream
            planner = self._planners.get(spec)
            if planner is None:  # one per distinct spec; planners hold no per-row state
                planner = self._planners[spec] = ChunkPlanner(
                    spec, None if spec.fixed_length else self._mute_similarity()
                )
            cut = planner.next_cut(r.generated, ctx.stream.cut)
            if cut is not None:
                ctx.stream.cut = cut
                self._stream_piece(r, ctx, final=False)

    def _stream_piece(self, r: Row, ctx: RowContext, final: bool) -> None:
        assert ctx.stream is not None and ctx.sentence.stream is not None
        end = len(r.generated) if final else ctx.stream.cut
        self.worker.put_chunk(
            ChunkTask(
                r.row_id,
                ctx.stream,
                torch.tensor(r.generated[:end], dtype=torch.long),
                ctx.sentence.decode,
                ctx.sentence.stream,
                final,
            )
        )

    # ----------------------------------------------------------------------------- loop
    def _compute(self, batch: ScheduledBatch):
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
            rows = len(batch.rows)
            c = self.counters
            c.steps += 1
            c.tokens += rows
            c.steps_by_rows[rows] = c.steps_by_rows.get(rows, 0) + 1
            for fn in self._step_listeners:
                fn(rows)
            finished = self.scheduler.update(batch, out)
            self.t2s.release([r.slot for r in finished if r.slot is not None])
            self._t2s_seconds += time.perf_counter() - t0
            self._stream_pieces()
            self._deliver(finished)
        self.worker.close()
        self._drain()
        for request_id in list(self._jobs):
            self._abort(request_id, Cancelled("the engine was closed"))
