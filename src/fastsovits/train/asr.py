"""Automatic labelling of sliced clips into an official ``.list`` (``wav_path|speaker|LANG|text``).

Anything with a ``transcribe(path) -> Transcript`` method is a :class:`Transcriber`; the tests use
a fake one. :class:`FasterWhisperTranscriber` wraps faster-whisper (the optional ``asr`` extra,
imported only when it is built) with the official WebUI settings: beam 5, VAD filter with
700 ms minimum silence, language auto-detected unless given. Unlike the official tool, Chinese
and Cantonese are not re-run through FunASR, and the model is only read from disk unless
``allow_download`` is set.

:func:`transcribe_folder` writes one line per clip (absolute path, speaker = the folder's name
by default, the detected language upper-cased as the official tool writes it). A clip that fails
or yields no text is reported and left out. Clips already in an existing output list are kept
and not transcribed again (resume).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from fastsovits.errors import FastSovitsError, InvalidParameter, MissingDependency, MissingResource

log = logging.getLogger("fastsovits.asr")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str  # ISO code as the recogniser reports it ("en", "zh", "ja", ...)


@runtime_checkable
class Transcriber(Protocol):
    def transcribe(self, path: Path) -> Transcript: ...


class FasterWhisperTranscriber:
    """faster-whisper (CTranslate2) recogniser; needs ``pip install 'fastsovits[asr]'``."""

    def __init__(
        self,
        model: str = "large-v3",
        device: str = "auto",
        compute_type: str = "default",
        language: str | None = None,
        beam_size: int = 5,
        allow_download: bool = False,
    ) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise MissingDependency("ASR labelling", "asr", e) from e
        self.language = None if language in (None, "", "auto") else language
        self.beam_size = beam_size
        try:
            self.model = WhisperModel(
                model, device=device, compute_type=compute_type, local_files_only=not allow_download
            )
        except Exception as e:  # noqa: BLE001 - faster-whisper raises many kinds for a missing model
            hint = "" if allow_download else " (pass a local model folder, or allow downloading it)"
            raise MissingResource(f"cannot load the faster-whisper model {model!r}{hint}: {e}") from e

    def transcribe(self, path: Path) -> Transcript:
        segments, info = self.model.transcribe(
            str(path),
            beam_size=self.beam_size,
            vad_filter=True,
            vad_parameters={"min_silence_duration_ms": 700},
            language=self.language,
        )
        return Transcript("".join(s.text for s in segments).strip(), str(info.language))


@dataclass
class TranscribeResult:
    list_path: Path
    written: int = 0  # lines in the output list
    transcribed: int = 0  # clips transcribed in this run
    reused: int = 0  # clips already in the output list
    failed: list[dict] = field(default_factory=list)  # {file, error}


def list_line(path: Path, speaker: str, transcript: Transcript) -> str:
    text = " ".join(transcript.text.replace("|", " ").split())
    return f"{path}|{speaker}|{transcript.language.upper()}|{text}"


def transcribe_folder(
    in_dir: str | Path,
    transcriber: Transcriber,
    out_list: str | Path | None = None,
    speaker: str | None = None,
    progress: bool = True,
) -> TranscribeResult:
    """Transcribe every audio clip of ``in_dir`` (sorted by name) into a ``.list`` file."""
    from tqdm import tqdm

    from fastsovits.train.layout import atomic_path

    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise MissingResource(f"{str(in_dir)!r} is not a folder")
    if not isinstance(transcriber, Transcriber):
        raise InvalidParameter(f"{type(transcriber).__name__} has no transcribe(path) method")
    speaker = speaker or in_dir.resolve().name
    out = Path(out_list) if out_list is not None else in_dir.parent / f"{in_dir.name}.list"
    previous: dict[str, str] = {}
    if out.is_file():
        for line in out.read_text(encoding="utf-8").splitlines():
            if line.count("|") >= 3:
                previous[line.split("|", 1)[0]] = line
    clips = sorted(p.resolve() for p in in_dir.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    result = TranscribeResult(out)
    lines = []
    for clip in tqdm(clips, desc="transcribe", unit="clip", disable=not progress):
        if str(clip) in previous:
            lines.append(previous[str(clip)])
            result.reused += 1
            continue
        try:
            t = transcriber.transcribe(clip)
            if not t.text.strip():
                raise FastSovitsError("no speech recognised")
        except Exception as e:  # noqa: BLE001 - one clip's failure must not stop the folder
            log.warning("transcribe: skipping %s: %s: %s", clip, type(e).__name__, e)
            result.failed.append({"file": str(clip), "error": f"{type(e).__name__}: {e}"})
            continue
        lines.append(list_line(clip, speaker, t))
        result.transcribed += 1
    with atomic_path(out) as tmp:
        tmp.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
    result.written = len(lines)
    return result
