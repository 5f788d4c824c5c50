"""Features of stored voices: read from the voice store per model, computed and kept there once.

``StoredVoiceService`` is the server's ``SpeechService`` with one change: the reference of a voice
that lives in the store comes from its stored features for the resident model when they exist
(no encoder call after a restart), else it is encoded once and its features stored. Voices of
the voices file and per-request clips are encoded as before (``TTS.load_reference``'s cache).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, cast

from anyio import to_thread

from fastsovits.server.config import ServerConfig
from fastsovits.server.metrics import ServerMetrics
from fastsovits.server.models import ModelRegistry, Resident
from fastsovits.server.speech import SpeechService
from fastsovits.server.voices import Voice
from fastsovits.voices.features import (
    BadFeatures,
    cache_positions,
    check_prompt_fits,
    reference_from_bytes,
    reference_to_bytes,
    tts_identity,
)
from fastsovits.voices.store import VoiceStore

if TYPE_CHECKING:
    from fastsovits.api import TTS, Reference

log = logging.getLogger("fastsovits.server")
CACHED_REFERENCES = 256  # references of stored voices kept in memory per server


def spec_identity(res: Resident) -> str:
    """The model identity features of ``res`` are stored under (its files, version, dtype, device)."""
    s = res.spec
    return tts_identity(
        cast("TTS", res.tts),
        {"folder": s.path, "sovits": s.sovits, "hubert": s.hubert_dir, "bert": s.bert_dir, "sv": s.sv},
    )


class StoredVoiceService(SpeechService):
    def __init__(
        self, models: ModelRegistry, metrics: ServerMetrics, config: ServerConfig, store: VoiceStore | None
    ) -> None:
        super().__init__(models, metrics, config)
        self.store = store
        self._identities: dict[object, str] = {}
        self._refs: OrderedDict[tuple[str, int], Reference] = OrderedDict()
        self._lock = threading.Lock()
        self.creating: set[str] = set()  # names being created now (a second upload of one gets 409 at once)

    def identity(self, res: Resident) -> str:
        key = (res.spec, id(res.tts))
        if key not in self._identities:
            self._identities[key] = spec_identity(res)
        return self._identities[key]

    def remember(self, identity: str, voice_id: int, ref: Reference) -> None:
        with self._lock:
            self._refs[(identity, voice_id)] = ref
            while len(self._refs) > CACHED_REFERENCES:
                self._refs.popitem(last=False)

    async def build_voice(self, voice: Voice) -> tuple[Reference | None, str | None]:
        """A voice being created, on its model: its reference (checked to fit the cache) and the model's
        identity, which the store keys its features by."""
        async with self.models.lease(voice.model) as res:
            return await to_thread.run_sync(self._encode_new, res, voice)

    def _encode_new(self, res: Resident, voice: Voice) -> tuple[Reference, str]:  # worker thread
        return self.encode_new(res, voice), self.identity(res)

    def encode_new(self, res: Resident, voice: Voice) -> Reference:
        """A voice being created: encode it and refuse a prompt the model's cache cannot hold (worker thread)."""
        ref = SpeechService.reference_of(res, voice)
        check_prompt_fits(ref, voice.text, cache_positions(cast("TTS", res.tts)))
        return ref

    def reference_of(self, res: Resident, voice: Voice) -> Reference:  # type: ignore[override]  # worker thread
        voice_id, store = voice.store_id, self.store
        if voice_id is None or store is None:
            return SpeechService.reference_of(res, voice)
        identity = self.identity(res)
        key = (identity, voice_id)
        with self._lock:
            if key in self._refs:
                self._refs.move_to_end(key)
                return self._refs[key]
        with res.ref_lock:
            ref = self._refs.get(key)
            if ref is None:
                ref = self._load_or_encode(store, res, voice, voice_id, identity)
        self.remember(identity, voice_id, ref)
        return ref

    def _load_or_encode(
        self, store: VoiceStore, res: Resident, voice: Voice, voice_id: int, identity: str
    ) -> Reference:
        data = store.features(voice_id, identity)
        if data is not None:
            try:
                ref = reference_from_bytes(data, cast("TTS", res.tts).device)
                self.metrics.voice_features.labels("stored").inc()
                return ref
            except BadFeatures as e:
                log.warning("stored features of voice %s are unusable (%s); encoding it again", voice.name, e)
        ref = self.encode_new(res, voice)
        store.put_features(voice_id, identity, reference_to_bytes(ref))
        self.metrics.voice_features.labels("computed").inc()
        return ref
