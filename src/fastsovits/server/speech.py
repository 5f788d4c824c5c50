"""One speech request from admission to last chunk, with the engine work kept off the event loop.

A request is admitted (bounded count, else ``CapacityError`` -> 503), leases its model, encodes
its reference in a thread, and reads its audio from a producer thread that iterates
``tts.stream``; chunks reach the event loop through ``call_soon_threadsafe``. Closing the stream
(client gone, timeout, shutdown) closes the iterator, which cancels the job in the engine and
frees its cache slots.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from anyio import to_thread
from fastapi.responses import Response, StreamingResponse

from fastsovits.errors import Cancelled, CapacityError, EmptyText
from fastsovits.params import SynthesisParams
from fastsovits.results import SentenceResult, capped_indices
from fastsovits.server.config import ServerConfig
from fastsovits.server.errors import RequestTimeout
from fastsovits.server.guard import StreamAborted, access_record
from fastsovits.server.metrics import ServerMetrics
from fastsovits.server.models import ModelRegistry, Resident
from fastsovits.server.streaming import MEDIA_TYPES, encode_whole, stream_encoder
from fastsovits.server.voices import Voice

T = TypeVar("T")
log = logging.getLogger("fastsovits.server")
_END = object()
POLL_S = 0.25  # how often a non-streaming request checks that its client is still there
TIMESTAMPS_HEADER_MAX = 8192  # bytes of X-Timestamps (HTTP clients refuse much larger headers): words go first


class ClientDisconnected(Cancelled):
    status = 499  # nginx's "client closed request": nobody reads the answer, and no server fault is logged


@dataclass(frozen=True)
class SpeechJob:
    text: str
    language: str
    voice: Voice | Callable[[], Voice]  # a callable reads the reference (files) after admission, in a thread
    params: SynthesisParams
    model: str | None = None  # None: the voice's model, else the server's default


class Admission:
    """Requests in flight, counted on the event loop (no lock needed)."""

    def __init__(self, limit: int, metrics: ServerMetrics) -> None:
        self.limit, self.metrics, self.count = limit, metrics, 0

    def enter(self) -> None:
        if self.count >= self.limit:
            self.metrics.rejected.inc()
            raise CapacityError(f"{self.count} requests in flight (limit {self.limit}); retry later")
        self.count += 1
        self.metrics.in_flight.set(self.count)

    def exit(self) -> None:
        self.count -= 1
        self.metrics.in_flight.set(self.count)


class _Producer:
    """Iterates ``tts.stream`` in its own thread and hands chunks to the event loop."""

    def __init__(self, tts, job: SpeechJob, reference) -> None:
        self._loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self._stop = threading.Event()
        self._chunks = None  # the AudioStream, once submitted (its cancel() is thread-safe)
        self.handle = None  # the same, kept after the end for its timestamps
        args = (tts, job.text, reference, job.language, job.params)
        self._thread = threading.Thread(target=self._run, args=args, name="fastsovits-request", daemon=True)
        self._thread.start()

    def _put(self, item) -> None:
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed (shutdown): nobody is listening
            pass

    def _run(self, tts, text, reference, language, params) -> None:
        try:
            chunks = tts.stream(text, reference, language, params)
        except BaseException as e:  # noqa: BLE001 - handed to the request, which maps it to a status
            self._put(e)
            return
        self._chunks = self.handle = chunks
        if self._stop.is_set():
            chunks.cancel()
        try:
            for chunk in chunks:
                self._put(chunk)
                if self._stop.is_set():
                    return
            self._put(_END)
        except BaseException as e:  # noqa: BLE001 - handed to the request, which maps it to a status
            self._put(e)
        finally:
            chunks.close()  # an unfinished job is cancelled in the engine; its slots are freed

    def stop(self) -> None:
        """Client gone, timeout or shutdown: cancel the job now (not at its next audio piece)."""
        self._stop.set()
        if self._chunks is not None:
            self._chunks.cancel()


class SpeechStream:
    """The audio of one admitted request; ``close()`` must run exactly once (idempotent)."""

    def __init__(
        self,
        service: SpeechService,
        route: str,
        res: Resident,
        producer: _Producer,
        t0: float,
        scope: dict | None = None,
    ) -> None:
        self.service, self.route, self.res, self.producer, self.t0 = service, route, res, producer, t0
        self.record = access_record(scope) if scope is not None else None
        self.deadline = t0 + service.config.request_timeout_s
        self.sample_rate = res.tts.sample_rate
        self.samples_out = 0
        self.finished = False
        self.first: np.ndarray | None = None
        self.sentences: list[SentenceResult] = []  # how each sentence ended, as they finish
        self._closed = False

    async def next(self, request=None) -> np.ndarray | None:
        """The next chunk's samples, ``None`` at the end; watches the client when ``request`` is given."""
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.service.metrics.cancelled.labels("timeout").inc()
                raise RequestTimeout(f"request ran past {self.service.config.request_timeout_s} s")
            try:
                item = await asyncio.wait_for(self.producer.queue.get(), min(remaining, POLL_S))
            except asyncio.TimeoutError:
                if request is not None and await request.is_disconnected():
                    self.service.metrics.cancelled.labels("disconnect").inc()
                    raise ClientDisconnected("the client went away") from None
                continue
            if item is _END:
                self.finished = True
                return None
            if isinstance(item, BaseException):
                raise item
            if self.samples_out == 0:
                self.service.metrics.ttfa.labels(self.route).observe(time.monotonic() - self.t0)
            self.samples_out += len(item.samples)
            if item.sentence is not None:
                self.sentences.append(item.sentence)
            return item.samples

    async def collect(self, request=None) -> np.ndarray:
        parts = []
        while (x := await self.next(request)) is not None:
            parts.append(x)
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    async def timestamps(self) -> list[dict]:
        """Sentence (and, with ``params.timestamps``, word) times of the finished request, as JSON values."""
        handle = self.producer.handle
        if handle is None:
            return []
        return [t.to_dict() for t in await to_thread.run_sync(handle.timestamps)]

    def close(self, status: int = 200) -> None:
        if self._closed:
            return
        self._closed = True
        self.producer.stop()
        self.service.models.release(self.res)
        self.service.admission.exit()
        m = self.service.metrics
        m.audio_seconds.inc(self.samples_out / self.sample_rate)
        if self.record is not None:
            self.record.audio_seconds += self.samples_out / self.sample_rate
        m.latency.labels(self.route).observe(time.monotonic() - self.t0)
        m.requests.labels(self.route, str(status)).inc()


class SpeechService:
    def __init__(self, models: ModelRegistry, metrics: ServerMetrics, config: ServerConfig) -> None:
        self.models, self.metrics, self.config = models, metrics, config
        self.admission = Admission(config.queue_limit, metrics)

    @staticmethod
    def reference_of(res: Resident, voice: Voice):
        with res.ref_lock:
            return res.tts.load_reference(voice.audio, voice.text or None, voice.language, aux=voice.aux)

    async def _within(self, deadline: float, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a worker thread, answered by ``RequestTimeout`` at the request's deadline."""
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise asyncio.TimeoutError
            return await asyncio.wait_for(to_thread.run_sync(fn, *args, abandon_on_cancel=True), remaining)
        except asyncio.TimeoutError:
            self.metrics.cancelled.labels("timeout").inc()
            raise RequestTimeout(f"request ran past {self.config.request_timeout_s} s") from None

    async def reference(self, voice: Voice, model: str | None = None, request: bool = True) -> None:
        """Encode ``voice`` on its model now (validation at registration; the result is cached). For a client's
        ``request`` it is admitted and timed out as a synthesis request is (not at start-up)."""
        if not request:
            async with self.models.lease(model or voice.model) as res:
                await to_thread.run_sync(self.reference_of, res, voice)
            return
        self.admission.enter()
        try:
            deadline = time.monotonic() + self.config.request_timeout_s
            async with self.models.lease(model or voice.model) as res:
                await self._within(deadline, self.reference_of, res, voice)
        finally:
            self.admission.exit()

    async def open(self, job: SpeechJob, route: str, request=None) -> SpeechStream:
        """Admit, lease, encode the reference and wait for the first chunk (errors surface here, before any byte)."""
        if not job.text.strip():
            raise EmptyText("the text is empty")
        self.admission.enter()
        t0 = time.monotonic()
        deadline = t0 + self.config.request_timeout_s
        res = stream = None
        try:
            voice: Voice = job.voice if isinstance(job.voice, Voice) else await self._within(deadline, job.voice)
            res = await self.models.acquire(job.model or voice.model)
            ref = await self._within(deadline, self.reference_of, res, voice)
            stream = SpeechStream(
                self, route, res, _Producer(res.tts, job, ref), t0, request.scope if request is not None else None
            )
            stream.first = await stream.next(request)
            return stream
        except BaseException as e:
            if stream is not None:
                stream.close(status=_status(e))
            else:
                if res is not None:
                    self.models.release(res)
                self.admission.exit()
                self.metrics.requests.labels(route, str(_status(e))).inc()
            self.metrics.errors.labels(type(e).__name__).inc()
            raise


def _status(exc: BaseException) -> int:
    from fastsovits.server.errors import status_of

    return 499 if isinstance(exc, (ClientDisconnected, asyncio.CancelledError)) else status_of(exc)


def sentence_headers(sentences: list[SentenceResult]) -> dict[str, str]:
    """How the sentences of a complete response ended: ``X-Stop-Reasons`` (one per sentence, in order),
    ``X-Capped-Sentences`` (indices of those that ran to their token cap; empty when none did) and
    ``X-Guard-Summary`` (JSON: retries in all, each retried sentence's retry reasons, and what the guard
    still found wrong with sentences whose every attempt failed)."""
    ordered = sorted(sentences, key=lambda s: s.index)
    retried = {str(s.index): list(s.retries) for s in ordered if s.retries}
    flagged = {str(s.index): s.guard for s in ordered if s.guard}
    summary = {
        "sentences": len(ordered),
        "retries": sum(len(s.retries) for s in ordered),
        "retried": retried,
        "unresolved": flagged,
    }
    return {
        "X-Stop-Reasons": ",".join(s.stop_reason.value for s in ordered),
        "X-Capped-Sentences": ",".join(str(i) for i in capped_indices(ordered)),
        "X-Guard-Summary": json.dumps(summary, separators=(",", ":")),
    }


def timestamps_header(timestamps: list[dict]) -> dict[str, str]:
    """``X-Timestamps``: compact ASCII JSON ``{"sentences": [...], "truncated": bool}``. Past
    ``TIMESTAMPS_HEADER_MAX`` bytes the words are left out, then the sentences (``truncated`` true)."""
    for kept in (timestamps, [{**t, "words": []} for t in timestamps], []):
        value = json.dumps({"sentences": kept, "truncated": kept is not timestamps}, separators=(",", ":"))
        if len(value) <= TIMESTAMPS_HEADER_MAX:
            break
    return {"X-Timestamps": value}


def sse_event(payload: dict) -> bytes:
    """One server-sent event (``data: <json>`` and a blank line), as OpenAI's ``stream_format="sse"``."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _sse_delta(data: bytes) -> bytes:
    return sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")}) if data else b""


async def respond(
    service: SpeechService,
    job: SpeechJob,
    route: str,
    fmt: str,
    streaming: bool,
    request,
    out_rate: int | None = None,
    headers: dict | None = None,
    sse: bool = False,
) -> Response:
    """The whole response: a complete file, or a stream that starts with the first chunk.

    ``sse``: the stream is OpenAI's server-sent events instead of raw bytes: ``speech.audio.delta``
    events carry the encoded audio in base64, ``speech.audio.done`` ends it (with ``usage``), and an
    ``error`` event reports a failure after the first event.
    """
    stream = await service.open(job, route, request)
    media_type = MEDIA_TYPES[fmt]
    whole_rate = 48000 if fmt == "opus" else out_rate or stream.sample_rate  # soundfile's Opus is 48 kHz
    headers = {"X-Sample-Rate": str(whole_rate), **(headers or {})}
    if not streaming:
        try:
            rest = await stream.collect(request)
            samples = np.concatenate([stream.first, rest])
            whole = await to_thread.run_sync(encode_whole, samples, stream.sample_rate, fmt, out_rate)
            if job.params.timestamps:
                headers.update(timestamps_header(await stream.timestamps()))
        except BaseException as e:
            stream.close(_status(e))
            service.metrics.errors.labels(type(e).__name__).inc()
            raise
        stream.close(200)
        return Response(whole, media_type=media_type, headers={**headers, **sentence_headers(stream.sentences)})
    encoder = stream_encoder(fmt, stream.sample_rate, out_rate)
    headers["X-Sample-Rate"] = str(encoder.out_rate)

    frame = _sse_delta if sse else (lambda data: data)

    async def body() -> AsyncIterator[bytes]:
        status = 499
        try:
            yield frame(await to_thread.run_sync(encoder.feed, stream.first))
            while (x := await stream.next()) is not None:
                data = await to_thread.run_sync(encoder.feed, x)
                if data:
                    yield frame(data)
            yield frame(await to_thread.run_sync(encoder.finish))
            if sse:
                chars = len(job.text)
                yield sse_event(
                    {
                        "type": "speech.audio.done",
                        "usage": {
                            "input_tokens": chars,
                            "output_tokens": stream.samples_out,
                            "total_tokens": chars + stream.samples_out,
                        },
                        "sentences": [s.to_dict() for s in stream.sentences],
                        "capped": capped_indices(stream.sentences),
                        "timestamps": await stream.timestamps(),
                    }
                )
            status = 200
        except (asyncio.CancelledError, GeneratorExit):
            service.metrics.cancelled.labels("disconnect").inc()
            raise
        except Exception as e:  # noqa: BLE001 - headers are gone: the client is told in-band, the cause is logged
            status = _status(e)
            service.metrics.errors.labels(type(e).__name__).inc()
            service.metrics.cancelled.labels("stream_error").inc()
            log.warning("stream of %s failed after %d samples: %s: %s", route, stream.samples_out, type(e).__name__, e)
            if not sse:  # raw audio has no place for an error: cut the connection (no final chunk)
                raise StreamAborted(f"{type(e).__name__}: {e}") from None
            yield sse_event({"type": "error", "error": {"type": type(e).__name__, "message": str(e), "code": status}})
        finally:
            encoder.close()
            stream.close(status)

    if sse:
        headers["Cache-Control"] = "no-cache"
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
    return StreamingResponse(body(), media_type=media_type, headers=headers)
