"""Registered voices: a reference clip (bytes), its text and language, optionally bound to a model.

Voices come from uploads (``POST /v1/voices``) or from a ``voices.yaml`` the operator writes::

    models:                      # fine-tuned models, loaded on first use (LRU)
      alice-ft: {gpt: ft/alice-e15.ckpt, sovits: ft/alice_e8_s200.pth}
    voices:
      alice: {audio: refs/alice.wav, text: "Hello, I am Alice.", language: en, model: alice-ft}
      narrator: {audio: refs/narrator.wav, text: "...", language: zh, aux: [refs/n2.wav]}
    default_voice: narrator

Paths in the file are relative to the file (the operator's own files; clients never name paths).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastsovits.audio.io import AudioTooLong, decode_audio, probe_audio
from fastsovits.errors import InvalidInput, InvalidParameter, ReferenceAudioError
from fastsovits.server.config import ModelSpec
from fastsovits.server.errors import NotFound, PayloadTooLarge

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
MIN_RATE, MAX_RATE = 16000, 48000  # below 16 kHz the SSL model gets less than it needs; above: not a speech clip
MAX_VOICES = 10_000


class Conflict(InvalidInput):
    status = 409


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

    def info(self) -> dict:
        return {"id": self.name, "name": self.name, "object": "voice", "text": self.text, "language": self.language,
                "model": self.model, "aux": len(self.aux), "source": self.source, "created_at": int(self.created)}


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidParameter(f"voice name {name!r} must be 1-64 characters of letters, digits, '_', '-', '.'")
    return name


def check_clip(data: bytes, max_seconds: float) -> float:
    """Refuse what cannot be a reference, from the header first (channels, rate, length), then by decoding at
    most ``max_seconds``; returns its duration."""
    if not data:
        raise ReferenceAudioError("the reference audio is empty")
    info = probe_audio(data)
    if info.channels != 1:
        raise ReferenceAudioError(f"the reference audio has {info.channels} channels; send a mono clip")
    if not MIN_RATE <= info.sample_rate <= MAX_RATE:
        raise ReferenceAudioError(
            f"the reference audio's sample rate {info.sample_rate} Hz is outside [{MIN_RATE}, {MAX_RATE}]")
    try:
        samples, rate = decode_audio(data, max_seconds)
    except AudioTooLong as e:
        raise PayloadTooLarge(f"reference audio: {e} (the server's --max-audio-seconds)") from None
    return samples.shape[0] / rate


class VoiceRegistry:
    def __init__(self, max_voices: int = MAX_VOICES) -> None:
        self._voices: dict[str, Voice] = {}
        self._lock = threading.Lock()
        self.max_voices = max_voices
        self.default: str | None = None

    def add(self, voice: Voice, replace: bool = False) -> Voice:
        check_name(voice.name)
        with self._lock:
            if voice.name in self._voices and not replace:
                raise Conflict(f"voice {voice.name!r} exists; delete it first or pass replace=true")
            if voice.name not in self._voices and len(self._voices) >= self.max_voices:
                raise PayloadTooLarge(f"this server holds at most {self.max_voices} voices")
            self._voices[voice.name] = voice
        return voice

    def get(self, name: str) -> Voice:
        with self._lock:
            if name not in self._voices:
                raise NotFound(f"voice {name!r} does not exist (GET /v1/voices lists them)")
            return self._voices[name]

    def __contains__(self, name: object) -> bool:
        return name in self._voices

    def remove(self, name: str) -> Voice:
        with self._lock:
            if name not in self._voices:
                raise NotFound(f"voice {name!r} does not exist")
            if self.default == name:
                self.default = None
            return self._voices.pop(name)

    def list(self) -> list[Voice]:
        with self._lock:
            return sorted(self._voices.values(), key=lambda v: v.name)


def load_voices_file(path: str | Path, voices: VoiceRegistry, base_model: ModelSpec,
                     max_seconds: float) -> list[ModelSpec]:
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
        models.append(base_model.with_(name=check_name(str(name)), path=rel(m.get("path")), gpt=rel(m.get("gpt")),
                                       sovits=rel(m.get("sovits")), version=m.get("version")))
    known = {m.name for m in models} | {base_model.name}
    for name, v in (doc.get("voices") or {}).items():
        if not isinstance(v, dict) or "audio" not in v:
            raise InvalidInput(f"voice {name!r} in {path} needs at least 'audio'")
        if v.get("model") and v["model"] not in known:
            raise InvalidInput(f"voice {name!r} in {path} names model {v['model']!r}, not declared under 'models'")
        clips = [Path(rel(v["audio"])).read_bytes()] + [Path(rel(a)).read_bytes() for a in v.get("aux") or []]
        for clip in clips:
            check_clip(clip, max_seconds)
        voices.add(Voice(check_name(str(name)), clips[0], v.get("text"), v.get("language"), tuple(clips[1:]),
                         v.get("model"), source="file"), replace=True)
    if doc.get("default_voice"):
        voices.get(doc["default_voice"])
        voices.default = doc["default_voice"]
    return models
