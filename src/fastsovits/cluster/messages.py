"""What the ingress sends an engine replica and what the replica answers first (picklable dataclasses)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fastsovits.params import SynthesisParams
from fastsovits.results import SentenceResult
from fastsovits.server.config import ModelSpec
from fastsovits.server.voices import Voice


def voice_digest(voice: Voice) -> str:
    """Content key of a voice's reference (clip, aux clips, text, language): equal digests, equal features."""
    h = hashlib.sha256(voice.audio)
    for a in voice.aux:
        h.update(hashlib.sha256(a).digest())
    h.update(f"|{voice.text}|{voice.language}".encode())
    return h.hexdigest()[:24]


@dataclass(frozen=True)
class VoiceRef:
    """A voice by name and content digest (the replica fetches it from the voice store once), or inline.

    Request-scoped references (api_v2 ``ref_audio_path``, ``/set_refer_audio``) travel inline.
    """

    key: str  # what the router keys affinity on: the content digest
    name: str | None = None  # a stored voice
    inline: Voice | None = None

    @classmethod
    def of(cls, voice: Voice, stored: bool) -> VoiceRef:
        key = voice_digest(voice)
        return cls(key, name=voice.name) if stored else cls(key, inline=voice)


@dataclass(frozen=True)
class EngineJob:
    text: str
    language: str
    voice: VoiceRef
    params: SynthesisParams
    model: ModelSpec  # resolved by the ingress (the replica declares it if new to it)
    route: str = "/tts"
    avoid: str | None = None  # a replica id not to use (a retry after that replica failed)


@dataclass(frozen=True)
class RouteInfo:
    """The first item a replica yields: where the request ran, before any audio."""

    replica: str
    cache_hit: bool  # the replica already held the voice's reference features for this model
    sample_rate: int
    models: tuple[str, ...]  # models resident on that replica now


@dataclass(frozen=True)
class RoutingKey:
    model: str
    voice: str | None
    avoid: str | None = None


def routing_key(args: list, kwargs: dict) -> RoutingKey | None:
    """What the router keys a pending call on: its job, or a (voice, model) pair; None for other calls."""
    values = (*args, *kwargs.values())
    for x in values:
        if isinstance(x, EngineJob):
            return RoutingKey(x.model.name, x.voice.key, x.avoid)
    voice = next((x for x in values if isinstance(x, VoiceRef)), None)
    model = next((x for x in values if isinstance(x, ModelSpec)), None)
    return RoutingKey(model.name, voice.key if voice else None) if model is not None else None


@dataclass(frozen=True)
class StreamSummary:
    """The last item of a replica's stream: how each sentence ended and the request's timestamps."""

    sentences: tuple[SentenceResult, ...]
    timestamps: tuple[dict, ...]  # sentence (and, when asked, word) times as JSON values
