"""Voices to and from a zip file: ``manifest.json`` plus each voice's clips as uploaded.

Features are not exported: they belong to the models of the machine that computed them, and the
importing side computes its own on first use. An imported archive is untrusted: its members are
read in memory (nothing is extracted to disk), only the files its manifest names are read, sizes
are checked against the zip directory before reading, and every voice passes the same checks as
an upload before any is stored.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fastsovits.errors import InvalidInput
from fastsovits.voices.store import NewVoice, VoiceExists, VoiceStore
from fastsovits.voices.validate import VoiceLimits, check_voice, probe_clip

FORMAT = "fastsovits-voices/1"
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_CLIP_BYTES = 64 * 2**20  # one clip file in an archive
MAX_ARCHIVE_VOICES = 10_000
_EXT = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3", "AIFF": "aiff"}


class ArchiveError(InvalidInput):
    """A voices archive that is not what ``export_voices`` writes."""


@dataclass(frozen=True)
class ImportResult:
    added: tuple[str, ...]
    replaced: tuple[str, ...]


def _ext(clip: bytes) -> str:
    try:
        return _EXT.get(probe_clip(clip, "clip").format, "audio")
    except InvalidInput:
        return "audio"


def export_voices(store: VoiceStore, path: str | Path, names: list[str] | None = None) -> list[str]:
    """Write the named voices (all when ``names`` is empty) to a zip file; -> the names written."""
    names = names or [s.name for s in store.list()]
    entries = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            v = store.get(name)
            audio = f"{name}/reference.{_ext(v.audio)}"
            zf.writestr(audio, v.audio)
            aux = []
            for i, clip in enumerate(v.aux, 1):
                aux.append(f"{name}/aux-{i}.{_ext(clip)}")
                zf.writestr(aux[-1], clip)
            entries.append(
                {
                    "name": v.name,
                    "text": v.text,
                    "language": v.language,
                    "model": v.model,
                    "created": v.created,
                    "audio": audio,
                    "aux": aux,
                }
            )
        zf.writestr(MANIFEST, json.dumps({"format": FORMAT, "voices": entries}, ensure_ascii=False, indent=1))
    return names


def _member(zf: zipfile.ZipFile, name: object, limit: int) -> bytes:
    if not isinstance(name, str):
        raise ArchiveError(f"the manifest names a file as {name!r}; expected a path inside the archive")
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ArchiveError(f"the archive lacks {name!r}, which its manifest names") from None
    if info.file_size > limit:
        raise ArchiveError(f"{name!r} holds {info.file_size} bytes; at most {limit}")
    with zf.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ArchiveError(f"{name!r} holds more than {limit} bytes")
    return data


def read_archive(path: str | Path, limits: VoiceLimits) -> list[NewVoice]:
    """Every voice of an archive, checked as an upload is; raises before returning any."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise ArchiveError(f"{Path(path).name} is not a zip file ({e})") from None
    with zf:
        try:
            manifest = json.loads(_member(zf, MANIFEST, MAX_MANIFEST_BYTES))
        except ValueError:
            raise ArchiveError(f"{MANIFEST} is not JSON") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ArchiveError(f"{Path(path).name} is not a voices archive ({FORMAT})")
        entries = manifest.get("voices")
        if not isinstance(entries, list) or len(entries) > MAX_ARCHIVE_VOICES:
            raise ArchiveError(f"'voices' must be a list of at most {MAX_ARCHIVE_VOICES} voices")
        voices = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("aux", []), list):
                raise ArchiveError("each voice in the manifest must be an object with 'name' and 'audio'")
            if len(entry.get("aux", [])) > limits.max_aux_clips:
                raise ArchiveError(f"voice {entry.get('name')!r} has more than {limits.max_aux_clips} auxiliary clips")
            text, language, model = entry.get("text"), entry.get("language"), entry.get("model")
            if not all(x is None or isinstance(x, str) for x in (text, language, model)):
                raise ArchiveError(f"voice {entry.get('name')!r}: text, language and model must be strings")
            clips = [_member(zf, entry.get("audio"), MAX_CLIP_BYTES)]
            clips += [_member(zf, a, MAX_CLIP_BYTES) for a in entry.get("aux", [])]
            name, text, language = check_voice(entry.get("name"), text, language, clips, limits)
            voices.append(NewVoice(name, clips[0], text, language, tuple(clips[1:]), model))
    return voices


def import_voices(store: VoiceStore, path: str | Path, limits: VoiceLimits, replace: bool = False) -> ImportResult:
    """Store every voice of an archive; without ``replace`` a name already stored stops it before any is added."""
    voices = read_archive(path, limits)
    existing = [v.name for v in voices if v.name in store]
    if existing and not replace:
        raise VoiceExists(f"voices {existing} exist; remove them first or pass --replace")
    for v in voices:
        store.add(v, replace=replace)
    return ImportResult(tuple(v.name for v in voices if v.name not in existing), tuple(existing))


def archive_bytes(store: VoiceStore, names: list[str] | None = None) -> bytes:
    """``export_voices`` into memory (for a download button)."""
    buf = io.BytesIO()
    export_voices(store, buf, names)  # type: ignore[arg-type]  # zipfile takes a file object too
    return buf.getvalue()
