"""The engine deployment: each replica owns the plain server's model registry (one engine per resident model).

``synthesize(job)`` is a streaming method: it yields ``(RouteInfo, first chunk)``, then the other
audio chunks (float32 samples) as the engine makes them. When the ingress stops reading (client gone), Serve
cancels the call and the job is cancelled in the engine. Resident models follow the registry's
LRU (``--max-models``); ``record_routing_stats`` tells the router which models and voices this
replica holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import asdict

from anyio import to_thread

from fastsovits.cluster.messages import EngineJob, RouteInfo, StreamSummary, VoiceRef
from fastsovits.errors import InvalidInput
from fastsovits.server.config import ModelSpec, ServerConfig
from fastsovits.server.errors import status_of
from fastsovits.server.metrics import ServerMetrics
from fastsovits.server.models import ModelRegistry
from fastsovits.server.speech import SpeechJob, SpeechService
from fastsovits.server.voices import Voice

log = logging.getLogger("fastsovits.cluster")
VOICE_CACHE = 64  # voices (and encoded references) a replica keeps; as the engine's own reference cache


class EngineReplica:
    """The class Serve runs as the engine deployment (decorated in ``fastsovits.cluster.app``)."""

    async def __init__(self, default: ModelSpec, config: ServerConfig, namespace: str, threads: int | None = None):
        from ray import serve

        from fastsovits.cluster.voice_store import RayVoiceStore

        if threads:
            import torch

            torch.set_num_threads(threads)
        self.replica = serve.get_replica_context().replica_id.unique_id
        self.config = config
        self.models = ModelRegistry(default, config)
        self.metrics = ServerMetrics()
        self.metrics.models = self.models
        self.models.on_load = self.metrics.attach
        self.service = SpeechService(self.models, self.metrics, config)
        self.store = RayVoiceStore(namespace)
        self._voices: OrderedDict[str, Voice] = OrderedDict()  # content key -> voice fetched from the store
        self._encoded: OrderedDict[tuple[str, str], None] = OrderedDict()  # (model, voice key) encoded here
        self.cancelled = 0  # jobs stopped before their end (the ingress went away: client gone, timeout)
        async with self.models.lease():  # the default model, so the first request does not pay its load
            pass
        log.info("engine replica %s ready", self.replica)

    # ----------------------------------------------------------------------------- voices
    async def _voice(self, ref: VoiceRef) -> Voice:
        if ref.inline is not None:
            return ref.inline
        voice = self._voices.get(ref.key)
        if voice is None:
            voice = await to_thread.run_sync(self.store.get, ref.name)
            if voice is None:
                from fastsovits.server.errors import NotFound

                raise NotFound(f"voice {ref.name!r} does not exist (GET /v1/voices lists them)")
            self._voices[ref.key] = voice
            while len(self._voices) > VOICE_CACHE:
                self._voices.popitem(last=False)
        self._voices.move_to_end(ref.key)
        return voice

    def _mark(self, model: str, key: str) -> bool:
        """Record that (model, voice) is encoded here; whether it already was."""
        hit = (model, key) in self._encoded
        self._encoded[(model, key)] = None
        self._encoded.move_to_end((model, key))
        while len(self._encoded) > VOICE_CACHE:
            self._encoded.popitem(last=False)
        return hit

    def _declare(self, spec: ModelSpec) -> str:
        known = self.models.specs.get(spec.name)
        if known is not None and known != spec:
            raise InvalidInput(f"model {spec.name!r} is declared with other files on this replica")
        self.models.declare(spec)
        return spec.name

    def _info(self, hit: bool, sample_rate: int) -> RouteInfo:
        return RouteInfo(self.replica, hit, sample_rate, tuple(self.models.resident))

    # ----------------------------------------------------------------------------- calls
    async def synthesize(self, job: EngineJob):
        """``(RouteInfo, first chunk)``, then the other chunks' samples; errors raise before any item."""
        model = self._declare(job.model)
        voice = await self._voice(job.voice)
        stream = await self.service.open(SpeechJob(job.text, job.language, voice, job.params, model), job.route)
        status = 499
        try:
            yield self._info(self._mark(model, job.voice.key), stream.sample_rate), stream.first  # one item: one hop
            while (samples := await stream.next()) is not None:
                yield samples
            yield StreamSummary(tuple(stream.sentences), tuple(await stream.timestamps()))
            status = 200
        except BaseException as e:
            status = 499 if isinstance(e, (GeneratorExit, asyncio.CancelledError)) else status_of(e)
            raise
        finally:
            if status == 499:
                self.cancelled += 1
            stream.close(status)  # an unfinished job is cancelled in the engine; its cache slots are freed

    async def reference(self, ref: VoiceRef, model: ModelSpec) -> RouteInfo:
        """Encode a voice on ``model`` now (registration validates the clip; the features stay cached here)."""
        name = self._declare(model)
        voice = await self._voice(ref)
        await self.service.reference(voice, name)
        res_rate = self.models.resident[name].tts.sample_rate if name in self.models.resident else 0
        return self._info(self._mark(name, ref.key), res_rate)

    async def load_model(self, spec: ModelSpec) -> RouteInfo:
        """Load ``spec`` now (``/set_*_weights``: a bad file is that request's error)."""
        async with self.models.lease(self._declare(spec)) as res:
            return self._info(False, res.tts.sample_rate)

    def record_routing_stats(self) -> dict:
        """Read by Serve every ``stats_period_s`` and handed to the router as this replica's ``routing_stats``."""
        return {
            "replica": self.replica,
            "models": list(self.models.resident),
            "voices": [key for (_, key) in self._encoded],
            "queued_rows": sum(s.waiting_rows for s in self.models.stats().values()),
            "in_flight": self.service.admission.count,
            "cancelled": self.cancelled,
        }

    def stats(self) -> dict:
        models = {name: asdict(s) for name, s in self.models.stats().items()}
        return {"replica": self.replica, "models": models, "in_flight": self.service.admission.count}

    def check_health(self) -> None:
        if not self.models.resident and not self.models.specs:
            raise RuntimeError("no model declared")
