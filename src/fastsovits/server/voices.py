"""Registered voices: a reference clip (bytes), its text and language, optionally bound to a model.

Voices come from uploads (``POST /v1/audio/voices``, ``POST /v1/voices``), kept in the voice store
(``fastsovits.voices``, SQLite under ``--data-dir``) so they survive a restart, or from a
``voices.yaml`` the operator writes (kept in memory, read again at each start)::

    models:                      # fine-tuned models, loaded on first use (LRU)
      alice-ft: {gpt: ft/alice-e15.ckpt, sovits: ft/alice_e8_s200.pth}
    voices:
      alice: {audio: refs/alice.wav, text: "Hello, I am Alice.", language: en, model: alice-ft}
      narrator: {audio: refs/narrator.wav, text: "...", language: zh, aux: [refs/n2.wav]}
    default_voice: narrator

Paths in the file are relative to the file (the operator's own files; clients never name paths).
A name in the file hides a stored voice of the same name.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from fastsovits.audio.io import AudioTooLong, decode_audio
from fastsovits.errors import InvalidInput
from fastsovits.server.config import ModelSpec
from fastsovits.server.errors import NotFound, PayloadTooLarge
from fastsovits.voices.store import VoiceExists, VoiceNotFound, VoiceStore, VoiceSummary
from fastsovits.voices.validate import NAME, check_name, probe_clip

__all__ = ["NAME", "Conflict", "Voice", "VoiceRegistry", "check_clip", "check_name", "load_voices_file"]
MAX_VOICES = 10_000
LOADED_VOICES = 256  # stored voices kept in memory (their clips), least recently used dropped first
Conflict = VoiceExists


@dataclass(frozen=True)
class Voice:
    name: str
    audio: bytes  # the clip as uploaded (any format libsndfile reads)
    text: str | None = None  # None: reference-free (style only)
    language: str | None = None
    aux: tuple[bytes, ...] = ()  # extra clips averaged into the style vector
    model: str | None = None  # bound fine-tuned model; None: the server's default model
    source: str = "api"
    created: float = field(default_factory=time.time)
    store_id: int | None = None  # the voice store's row (its features are stored per model under it)

    def info(self) -> dict:
        return {
            "id": self.name,
            "name": self.name,
            "object": "voice",
            "text": self.text,
            "language": self.language,
            "model": self.model,
            "aux": len(self.aux),
            "source": self.source,
            "created_at": int(self.created),
        }


def summary_info(s: VoiceSummary) -> dict:
    return {
        "id": s.name,
        "name": s.name,
        "object": "voice",
        "text": s.text,
        "language": s.language,
        "model": s.model,
        "aux": s.aux,
        "source": "store",
        "created_at": int(s.created),
    }


def check_clip(data: bytes, max_seconds: float) -> float:
    """Refuse what cannot be a reference, from its header before decoding it (channels, rate, length), then
    by decoding at most ``max_seconds``; returns its duration."""
    info = probe_clip(data, "the reference audio")  # mono, 16-48 kHz, a stated length: nothing decoded yet
    if info.seconds > max_seconds:
        raise PayloadTooLarge(
            f"the reference audio lasts {info.seconds:.1f} s; this server accepts at most {max_seconds} s"
        )
    try:
        samples, rate = decode_audio(data, max_seconds)
    except AudioTooLong as e:  # a header that understated the length
        raise PayloadTooLarge(f"reference audio: {e} (the server's --max-audio-seconds)") from None
    return samples.shape[0] / rate


class VoiceRegistry:
    """The voices a request may name: the voices file's (in memory) over the store's (on disk)."""

    def __init__(self, store: VoiceStore | None = None, max_voices: int = MAX_VOICES) -> None:
        self._voices: dict[str, Voice] = {}
        self._lock = threading.Lock()
        self._loaded: OrderedDict[int, Voice] = OrderedDict()  # store id -> voice (stored rows never change)
        self.store = store
        self.max_voices = max_voices
        self.default: str | None = None

    def add(self, voice: Voice, replace: bool = False) -> Voice:
        """Register an in-memory voice (the voices file's; every voice when there is no store)."""
        check_name(voice.name)
        with self._lock:
            if voice.name in self._voices and not replace:
                raise Conflict(f"voice {voice.name!r} exists; delete it first or pass replace=true")
            if voice.name not in self._voices and len(self._voices) >= self.max_voices:
                raise PayloadTooLarge(f"this server holds at most {self.max_voices} voices")
            self._voices[voice.name] = voice
        return voice

    def in_memory(self, name: str) -> bool:
        return name in self._voices

    def get(self, name: str) -> Voice:
        with self._lock:
            if name in self._voices:
                return self._voices[name]
        store = self.store
        voice_id = store.id_of(name) if store is not None else None
        if store is None or voice_id is None:
            raise NotFound(f"voice {name!r} does not exist (GET /v1/audio/voices lists them)")
        with self._lock:
            if voice_id in self._loaded:
                self._loaded.move_to_end(voice_id)
                return self._loaded[voice_id]
        try:
            s = store.get(name)
        except VoiceNotFound:  # deleted since id_of
            raise NotFound(f"voice {name!r} does not exist (GET /v1/audio/voices lists them)") from None
        voice = Voice(s.name, s.audio, s.text, s.language, s.aux, s.model, "store", s.created, s.id)
        with self._lock:
            self._loaded[s.id] = voice
            while len(self._loaded) > LOADED_VOICES:
                self._loaded.popitem(last=False)
        return voice

    def __contains__(self, name: object) -> bool:
        return name in self._voices or (self.store is not None and name in self.store)

    def remove(self, name: str) -> None:
        with self._lock:
            if name in self._voices:
                if self.default == name:
                    self.default = None
                del self._voices[name]
                return
        if self.store is None:
            raise NotFound(f"voice {name!r} does not exist")
        try:
            self.store.remove(name)
        except VoiceNotFound:
            raise NotFound(f"voice {name!r} does not exist") from None
        if self.default == name:
            self.default = None

    def memory_voices(self) -> list[Voice]:
        with self._lock:
            return sorted(self._voices.values(), key=lambda v: v.name)

    def infos(self) -> list[dict]:
        """Every voice a request may name, by name (a file voice hides a stored one of its name)."""
        out = {v.name: v.info() for v in self.memory_voices()}
        for s in self.store.list() if self.store is not None else ():
            out.setdefault(s.name, summary_info(s))
        return [out[name] for name in sorted(out)]

    def info(self, name: str) -> dict:
        with self._lock:
            if name in self._voices:
                return self._voices[name].info()
        try:
            if self.store is not None:
                return summary_info(self.store.summary(name))
        except VoiceNotFound:
            pass
        raise NotFound(f"voice {name!r} does not exist (GET /v1/audio/voices lists them)")


def load_voices_file(
    path: str | Path, voices: VoiceRegistry, base_model: ModelSpec, max_seconds: float
) -> list[ModelSpec]:
    """Register the file's voices; return its models (fine-tuned GPT/SoVITS over the base's HuBERT/BERT/SV)."""
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise InvalidInput(f"cannot read voices file {str(path)!r}: {e}") from e
    if not isinstance(doc, dict):
        raise InvalidInput(f"voices file {str(path)!r} must hold a mapping with 'voices' (and 'models')")
    base = path.parent

    def rel(p: str | None) -> str | None:
        return None if p is None else str((base / p).resolve())

    models = []
    for name, m in (doc.get("models") or {}).items():
        if not isinstance(m, dict):
            raise InvalidInput(f"model {name!r} in {path} must be a mapping (path or gpt/sovits)")
        models.append(
            base_model.with_(
                name=check_name(str(name)),
                path=rel(m.get("path")),
                gpt=rel(m.get("gpt")),
                sovits=rel(m.get("sovits")),
                version=m.get("version"),
            )
        )
    known = {m.name for m in models} | {base_model.name}
    for name, v in (doc.get("voices") or {}).items():
        if not isinstance(v, dict) or "audio" not in v:
            raise InvalidInput(f"voice {name!r} in {path} needs at least 'audio'")
        if v.get("model") and v["model"] not in known:
            raise InvalidInput(f"voice {name!r} in {path} names model {v['model']!r}, not declared under 'models'")
        clips = [Path(str(rel(v["audio"]))).read_bytes()] + [Path(str(rel(a))).read_bytes() for a in v.get("aux") or []]
        for clip in clips:
            check_clip(clip, max_seconds)
        voices.add(
            Voice(
                check_name(str(name)),
                clips[0],
                v.get("text"),
                v.get("language"),
                tuple(clips[1:]),
                v.get("model"),
                source="file",
            ),
            replace=True,
        )
    if doc.get("default_voice"):
        voices.get(doc["default_voice"])
        voices.default = doc["default_voice"]
    return models
