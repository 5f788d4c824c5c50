"""A stored voice's ``Reference`` for a loaded ``TTS``, outside the server (WebUI, scripts).

    store = VoiceStore.open()
    files = {"sovits": "s2.pth", "hubert": "chinese-hubert-base", "bert": "...", "sv": "..."}
    ref = stored_reference(store, tts, "alice", files)   # encoded once per model, then read back

The features are read from the store when it holds them for this model (no encoder call);
otherwise the clip is encoded with ``tts.load_reference``, checked to fit the engine's cache,
and its features stored for the next time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from fastsovits.voices.features import (
    BadFeatures,
    cache_positions,
    check_prompt_fits,
    reference_from_bytes,
    reference_to_bytes,
    tts_identity,
)
from fastsovits.voices.store import StoredVoice, VoiceStore

if TYPE_CHECKING:
    from fastsovits.api import TTS, Reference

log = logging.getLogger(__name__)


def encode_voice(tts: TTS, voice: StoredVoice) -> Reference:
    """Encode a stored voice's clips on ``tts`` and refuse a prompt its cache cannot hold."""
    ref = tts.load_reference(voice.audio, voice.text, voice.language, aux=voice.aux)
    check_prompt_fits(ref, voice.text, cache_positions(tts))
    return ref


def stored_reference(store: VoiceStore, tts: TTS, name: str, files: Mapping[str, str | Path | None]) -> Reference:
    """The ``Reference`` of stored voice ``name`` on ``tts`` (whose model files are ``files``)."""
    voice = store.get(name)
    identity = tts_identity(tts, files)
    data = store.features(voice.id, identity)
    if data is not None:
        try:
            return reference_from_bytes(data, tts.device)
        except BadFeatures as e:
            log.warning("stored features of voice %s are unusable (%s); encoding it again", name, e)
    ref = encode_voice(tts, voice)
    store.put_features(voice.id, identity, reference_to_bytes(ref))
    return ref
