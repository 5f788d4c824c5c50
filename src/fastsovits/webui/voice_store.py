"""The voice library: named references (clip, transcript, language) kept on disk.

:class:`VoiceStore` is the interface the tabs use; :class:`DiskVoiceStore` keeps one folder per
voice under ``<data dir>/voices/<name>/`` (``audio.<ext>`` as uploaded + ``voice.json``). A store
shared with the HTTP server (SQLite) can replace it by implementing the same four methods.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from fastsovits.errors import InvalidInput, MissingResource, ReferenceAudioError
from fastsovits.webui.config import MAX_REF_SECONDS
from fastsovits.webui.paths import safe_name

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".webm")
MAX_VOICES = 10_000


@dataclass(frozen=True)
class VoiceRecord:
    name: str
    audio_path: Path
    text: str | None
    language: str | None
    created: float


class VoiceStore(Protocol):
    def list(self) -> list[VoiceRecord]: ...

    def get(self, name: str) -> VoiceRecord: ...

    def save(self, name: str, audio: bytes, suffix: str, text: str | None, language: str | None) -> VoiceRecord: ...

    def delete(self, name: str) -> None: ...


def check_reference_clip(data: bytes) -> float:
    """Refuse what cannot be a reference before it is stored; returns the clip's duration."""
    from fastsovits.audio.io import decode_audio

    if not data:
        raise ReferenceAudioError("the reference audio is empty")
    samples, rate = decode_audio(data)
    seconds = samples.shape[0] / rate
    if seconds > MAX_REF_SECONDS:
        raise ReferenceAudioError(f"the reference audio lasts {seconds:.1f} s; at most {MAX_REF_SECONDS:.0f} s")
    return seconds


class DiskVoiceStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def _read(self, folder: Path) -> VoiceRecord | None:
        try:
            meta = json.loads((folder / "voice.json").read_text("utf-8"))
            audio = folder / meta["audio"]
        except (OSError, ValueError, KeyError):
            return None
        if not audio.is_file():
            return None
        return VoiceRecord(folder.name, audio, meta.get("text"), meta.get("language"), float(meta.get("created", 0)))

    def list(self) -> list[VoiceRecord]:
        out = [r for d in sorted(self.root.iterdir()) if d.is_dir() and (r := self._read(d)) is not None]
        return out

    def get(self, name: str) -> VoiceRecord:
        rec = self._read(self.root / safe_name(name, "voice name"))
        if rec is None:
            raise MissingResource(f"no saved voice named {name!r}")
        return rec

    def save(self, name: str, audio: bytes, suffix: str, text: str | None, language: str | None) -> VoiceRecord:
        name = safe_name(name, "voice name")
        suffix = suffix.lower() if suffix.lower() in AUDIO_SUFFIXES else ".wav"
        if text and not language:
            raise InvalidInput("the voice's text needs its language")
        check_reference_clip(audio)
        with self._lock:
            if len(list(self.root.iterdir())) >= MAX_VOICES:
                raise InvalidInput(f"the library holds {MAX_VOICES} voices; delete some first")
            folder = self.root / name
            tmp = self.root / f".{name}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            (tmp / f"audio{suffix}").write_bytes(audio)
            meta = {
                "audio": f"audio{suffix}",
                "text": text or None,
                "language": language if text else None,
                "created": time.time(),
            }
            (tmp / "voice.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
        rec = self._read(folder)
        assert rec is not None
        return rec

    def delete(self, name: str) -> None:
        folder = self.root / safe_name(name, "voice name")
        if not folder.is_dir():
            raise MissingResource(f"no saved voice named {name!r}")
        shutil.rmtree(folder)


def record_dict(rec: VoiceRecord) -> dict:
    d = asdict(rec)
    d["audio_path"] = rec.audio_path.name
    return d


class SharedVoiceStore:
    """The voice library kept in the voice store ``fastsovits serve`` uses (``fastsovits.voices``): a
    voice saved here can be named in HTTP requests, and voices uploaded to the server appear here.

    Clips are validated by the store's own rules (``voices.validate``) before anything is written;
    the browser plays a copy of each clip written to ``cache_dir``."""

    def __init__(self, data_dir: Path | None, cache_dir: Path) -> None:
        from fastsovits.voices.store import VoiceStore as SqliteStore
        from fastsovits.voices.validate import VoiceLimits

        self.store = SqliteStore.open(data_dir)
        self.limits = VoiceLimits()
        self.cache_dir = cache_dir
        cache_dir.mkdir(parents=True, exist_ok=True)

    def _record(self, name: str) -> VoiceRecord:
        from fastsovits.voices.store import VoiceNotFound

        try:
            voice = self.store.get(name)
        except VoiceNotFound:
            raise MissingResource(f"no saved voice named {name!r}") from None
        path = self.cache_dir / f"{safe_name(voice.name, 'voice name')}-{voice.id}.wav"
        if not path.is_file():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(voice.audio)
            tmp.replace(path)
        return VoiceRecord(voice.name, path, voice.text, voice.language, voice.created)

    def list(self) -> list[VoiceRecord]:
        return [self._record(v.name) for v in self.store.list()]

    def get(self, name: str) -> VoiceRecord:
        return self._record(name)

    def save(self, name: str, audio: bytes, suffix: str, text: str | None, language: str | None) -> VoiceRecord:
        from fastsovits.voices.store import NewVoice
        from fastsovits.voices.validate import check_voice

        if text and not language:
            raise InvalidInput("the voice's text needs its language")
        name, text, language = check_voice(name, text or None, language if text else None, [audio], self.limits)
        self.store.add(NewVoice(name, audio, text, language), replace=True)
        return self._record(name)

    def delete(self, name: str) -> None:
        from fastsovits.voices.store import VoiceNotFound

        try:
            self.store.remove(name)
        except VoiceNotFound:
            raise MissingResource(f"no saved voice named {name!r}") from None
