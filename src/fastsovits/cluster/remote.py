"""The ingress side of a request: the plain server's ``SpeechService`` interface over the engine deployment.

``RemoteSpeechService.open`` sends an ``EngineJob`` through a streaming deployment handle (the
router picks the replica) and returns a ``RemoteStream`` with the interface ``respond`` uses
(``first``, ``next``, ``collect``, ``close``). Faults: a replica that dies before the first chunk,
or during a non-streaming request, costs one retry on another replica; a stream that has sent
audio ends with an error (an ``error`` event for SSE). Backpressure from Serve is a 503.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from dataclasses import replace

import numpy as np
from anyio import to_thread

from fastsovits.cluster.messages import EngineJob, RouteInfo, StreamSummary, VoiceRef
from fastsovits.errors import CapacityError, EmptyText
from fastsovits.results import SentenceResult
from fastsovits.server.config import ServerConfig
from fastsovits.server.errors import RequestTimeout, ServerError
from fastsovits.server.metrics import ServerMetrics
from fastsovits.server.speech import POLL_S, Admission, ClientDisconnected, SpeechJob
from fastsovits.server.voices import Voice, VoiceRegistry

log = logging.getLogger("fastsovits.cluster")
MAX_DIGESTS = 4096  # voice content digests the ingress remembers (cleared when full)
STORED_SOURCES = ("api", "file")  # voices that live in the shared store; others travel inline
# The current HTTP request's routing record, set by the ingress's header middleware; the service fills it in.
CURRENT_ROUTE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("fastsovits_route", default=None)


class ReplicaFailed(ServerError):
    """The engine replica running this request died (Serve restarts it)."""

    status = 503


def replica_failure(exc: BaseException) -> bool:
    from ray.exceptions import RayActorError
    from ray.serve.exceptions import ReplicaUnavailableError

    return isinstance(exc, (RayActorError, ReplicaUnavailableError))


def unwrap(exc: BaseException) -> BaseException:
    """The typed error a replica raised (Ray wraps it), Serve's backpressure as ``CapacityError``, else as is."""
    from ray.exceptions import RayTaskError
    from ray.serve.exceptions import BackPressureError

    if isinstance(exc, BackPressureError):
        return CapacityError("every engine replica's queue is full; retry later")
    if isinstance(exc, RayTaskError) and exc.cause is not None:
        return exc.cause
    return exc


class RemoteStream:
    """One request's audio from an engine replica; ``close()`` runs exactly once (idempotent)."""

    def __init__(self, service: RemoteSpeechService, route: str, job: EngineJob, t0: float, request) -> None:
        self.service, self.route, self.job, self.t0, self.request = service, route, job, t0, request
        self.deadline = t0 + service.config.request_timeout_s
        self.info: RouteInfo | None = None
        self.sample_rate = 0
        self.samples_out = 0
        self.first: np.ndarray | None = None
        self.sentences: list[SentenceResult] = []  # from the replica's StreamSummary, at the end
        self._timestamps: list[dict] = []
        self.retried = False
        self._gen = None
        self._pending: asyncio.Future | None = None
        self._closed = False

    # ----------------------------------------------------------------------------- remote generator
    async def _pull(self, request=None):
        """The replica's next item (StopAsyncIteration at the end, after taking its StreamSummary), watching
        the deadline and the client."""
        item = await self._pull_raw(request)
        if isinstance(item, StreamSummary):
            self.sentences, self._timestamps = list(item.sentences), list(item.timestamps)
            raise StopAsyncIteration
        return item

    async def timestamps(self) -> list[dict]:
        """The finished request's timestamps, as the replica computed them."""
        return self._timestamps

    async def _pull_raw(self, request=None):
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._gen.__anext__())
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.service.metrics.cancelled.labels("timeout").inc()
                raise RequestTimeout(f"request ran past {self.service.config.request_timeout_s} s")
            done, _ = await asyncio.wait({self._pending}, timeout=min(remaining, POLL_S))
            if done:
                fut, self._pending = self._pending, None
                return fut.result()
            if request is not None and await request.is_disconnected():
                self.service.metrics.cancelled.labels("disconnect").inc()
                raise ClientDisconnected("the client went away")

    async def _start(self, job: EngineJob) -> None:
        self._cancel_remote()
        self.job, self.samples_out = job, 0
        self._gen = self.service.handle.options(stream=True).synthesize.remote(job)
        try:
            self.info, self.first = await self._pull(self.request)
        except StopAsyncIteration:
            raise ServerError("the engine replica ended the request without audio") from None
        self.sample_rate = self.info.sample_rate
        self.samples_out = len(self.first)
        self.service.record_route(self.info)
        self.service.metrics.ttfa.labels(self.route).observe(time.monotonic() - self.t0)

    def _retry_job(self, exc: BaseException) -> EngineJob:
        """Once per request, after its replica failed: the same job for another replica (the router avoids it)."""
        failed = self.info.replica if self.info is not None else None
        self.service.count_failure("retried" if not self.retried else "failed")
        if self.retried:
            raise ReplicaFailed("the engine replicas running this request failed twice") from exc
        self.retried = True
        log.warning("engine replica %s failed (%s); retrying on another", failed, type(exc).__name__)
        return replace(self.job, avoid=failed)

    async def open(self) -> None:
        job = self.job
        while True:
            try:
                return await self._start(job)
            except Exception as e:  # noqa: BLE001 - replica failures retry; everything else is the request's error
                if not replica_failure(e):
                    raise unwrap(e) from None
                job = self._retry_job(e)

    # ----------------------------------------------------------------------------- respond()'s interface
    async def next(self, request=None) -> np.ndarray | None:
        """The next chunk (``None`` at the end). A replica failure here ends the stream: audio has been sent."""
        try:
            samples = await self._pull(request)
        except StopAsyncIteration:
            return None
        except Exception as e:  # noqa: BLE001
            if replica_failure(e):
                self.service.count_failure("stream_ended")
                raise ReplicaFailed("the engine replica running this stream failed; the audio is incomplete") from e
            raise unwrap(e) from None
        self.samples_out += len(samples)
        return samples

    async def collect(self, request=None) -> np.ndarray:
        """The rest of the audio after ``first``. Nothing has reached the client yet, so a replica failure
        restarts the request elsewhere once; ``first`` is then the new run's first chunk (``respond`` reads
        it after this returns)."""
        parts: list[np.ndarray] = []
        while True:
            try:
                samples = await self._pull(request)
            except StopAsyncIteration:
                return np.concatenate(parts) if parts else np.zeros(0, np.float32)
            except Exception as e:  # noqa: BLE001
                if not replica_failure(e):
                    raise unwrap(e) from None
                parts = []
                self.job = self._retry_job(e)
                await self.open()  # a failure there raises ReplicaFailed: this was the one retry
                continue
            self.samples_out += len(samples)
            parts.append(samples)

    def _cancel_remote(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._gen is not None:
            self._gen.cancel()  # Serve cancels the replica's call: the engine drops the job
            self._gen = None

    def close(self, status: int = 200) -> None:
        if self._closed:
            return
        self._closed = True
        if status != 200:
            self._cancel_remote()
        self._gen = None
        self.service.admission.exit()
        m = self.service.metrics
        if self.sample_rate:
            m.audio_seconds.inc(self.samples_out / self.sample_rate)
        m.latency.labels(self.route).observe(time.monotonic() - self.t0)
        m.requests.labels(self.route, str(status)).inc()


class RemoteSpeechService:
    """What the plain server's routes call (``open``, ``reference``), backed by the engine deployment."""

    def __init__(
        self, handle, models, voices: VoiceRegistry, metrics: ServerMetrics, config: ServerConfig, cluster_metrics
    ) -> None:
        self.handle, self.models, self.voices, self.metrics, self.config = handle, models, voices, metrics, config
        self.cluster = cluster_metrics
        self.admission = Admission(config.queue_limit, metrics)
        self.creating: set[str] = set()  # voice names being created now (a second upload gets 409)
        self._digests: dict[tuple[str, float], VoiceRef] = {}

    def voice_ref(self, voice: Voice) -> VoiceRef:
        stored = voice.source in STORED_SOURCES and voice.name in self.voices
        if not stored:
            return VoiceRef.of(voice, stored=False)
        memo = (voice.name, voice.created)
        if memo not in self._digests:
            if len(self._digests) > MAX_DIGESTS:
                self._digests.clear()
            self._digests[memo] = VoiceRef.of(voice, stored=True)
        return self._digests[memo]

    def record_route(self, info: RouteInfo) -> None:
        self.cluster.observe(info)
        holder = CURRENT_ROUTE.get()
        if holder is not None:
            holder["info"] = info

    def count_failure(self, outcome: str) -> None:
        self.cluster.failures.labels(outcome).inc()

    async def build_voice(self, voice: Voice) -> tuple[None, None]:
        """A voice being created: encoded on a replica (the router keeps it there); its features stay on
        the replicas, so nothing is handed back for the store."""
        await self.reference(voice, voice.model)
        return None, None

    def remember(self, identity: str, voice_id: int, ref: object) -> None:  # the plain server's feature cache
        pass

    async def reference(self, voice: Voice, model: str | None = None, request: bool = True) -> None:
        """Encode ``voice`` on a replica now (validation at registration); the router then keeps it there.
        ``request`` is the plain server's admission switch: here Serve's own queue admits the call."""
        spec = self.models.spec(model or voice.model)
        try:
            info = await self.handle.reference.remote(VoiceRef.of(voice, stored=False), spec)
        except Exception as e:  # noqa: BLE001 - the replica's typed error is the registration's error
            raise unwrap(e) from None
        self.record_route(info)

    async def open(self, job: SpeechJob, route: str, request=None) -> RemoteStream:
        if not job.text.strip():
            raise EmptyText("the text is empty")
        self.admission.enter()
        t0 = time.monotonic()
        stream = None
        try:
            # api_v2 clips named by path are read only now, after admission (a callable reads them)
            voice = job.voice if isinstance(job.voice, Voice) else await to_thread.run_sync(job.voice)
            spec = self.models.spec(job.model or voice.model)
            remote = EngineJob(job.text, job.language, self.voice_ref(voice), job.params, spec, route)
            stream = RemoteStream(self, route, remote, t0, request)
            await stream.open()
            return stream
        except BaseException as e:
            status = 499 if isinstance(e, (ClientDisconnected, asyncio.CancelledError)) else _status_of(e)
            if stream is not None:
                stream.close(status)
            else:
                self.admission.exit()
            self.metrics.errors.labels(type(e).__name__).inc()
            if isinstance(e, CapacityError):
                self.metrics.rejected.inc()
            raise


def _status_of(exc: BaseException) -> int:
    from fastsovits.server.errors import status_of

    return status_of(exc)
