"""Reading and writing audio without torchaudio: soundfile (libsndfile) + soxr resampling.

``load_audio`` accepts a path, bytes or a binary file object; returns mono float32 at the
requested rate (channels averaged, as the official loader does). Every failure is a typed
``ReferenceAudioError`` naming the problem: unreadable/corrupt data, an empty signal, NaN/inf.
``probe_audio`` reads only the header (frames, rate, channels), and ``max_seconds`` bounds a
decode before it starts: a clip whose header says it is longer is refused without decoding, and
at most that many seconds are ever decoded (a header that understates the length changes nothing).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fastsovits.errors import InvalidParameter, ReferenceAudioError

AudioSource = str | Path | bytes | bytearray | BinaryIO
ENCODE_FORMATS = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "opus": "OGG", "mp3": "MP3", "raw": "RAW", "pcm": "RAW"}
_SUBTYPES = {"wav": "PCM_16", "flac": "PCM_16", "ogg": "VORBIS", "opus": "OPUS", "mp3": "MPEG_LAYER_III"}
OPUS_RATE = 48000  # libopus encodes at 48 kHz


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """High-quality resampling (soxr 'HQ') of a mono float signal."""
    if orig_sr <= 0 or target_sr <= 0:
        raise InvalidParameter(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    if orig_sr == target_sr:
        return wav.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(wav.astype(np.float32, copy=False), orig_sr, target_sr, quality="HQ").astype(np.float32)


UNKNOWN_FRAMES = 2**62  # libsndfile's frame count for a stream whose header does not say (SF_COUNT_MAX)


class AudioTooLong(ReferenceAudioError):
    """The clip lasts longer than the caller's ``max_seconds`` (found from the header or by a bounded decode)."""


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file's header says, read without decoding any sample."""

    frames: int
    sample_rate: int
    channels: int
    format: str

    @property
    def seconds(self) -> float:
        """The header's duration; ``inf`` when the header does not give the length."""
        if self.sample_rate <= 0 or self.frames >= UNKNOWN_FRAMES:
            return math.inf
        return self.frames / self.sample_rate


def _opened(source: AudioSource) -> str | BinaryIO:
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ReferenceAudioError("audio data is empty")
        return io.BytesIO(bytes(source))
    if isinstance(source, (str, Path)):
        if not Path(source).is_file():
            raise ReferenceAudioError(f"audio file {Path(source).name!r} does not exist")
        return str(source)
    return source


def _decode_error(e: BaseException) -> ReferenceAudioError:
    # libsndfile's full message names the file object's repr or the path: keep only what is wrong with the data.
    text = getattr(e, "error_string", None) or type(e).__name__
    return ReferenceAudioError(f"cannot decode audio ({text.rstrip('.')})")


def _too_long(seconds: float, max_seconds: float) -> AudioTooLong:
    return AudioTooLong(f"the audio lasts {seconds:.1f} s; at most {max_seconds:g} s is accepted")


def _read_blocks(f, frames: int | None) -> np.ndarray:
    """Up to ``frames`` (None: all) from a file whose header does not give its length, a block at a time."""
    import soundfile as sf

    parts, got, block = [], 0, max(int(f.samplerate), 1)
    while frames is None or got < frames:
        try:
            x = f.read(frames=block if frames is None else min(block, frames - got), dtype="float32", always_2d=True)
        except sf.LibsndfileError:
            if not parts:
                raise
            break  # libsndfile reports the end of such a stream as a failed seek
        if not len(x):
            break
        parts.append(x)
        got += len(x)
    return np.concatenate(parts) if parts else np.zeros((0, int(f.channels)), np.float32)


def probe_audio(source: AudioSource) -> AudioInfo:
    """The header's frame count, sample rate and channels; no sample is decoded."""
    import soundfile as sf

    opened = _opened(source)
    try:
        with sf.SoundFile(opened) as f:
            return AudioInfo(int(f.frames), int(f.samplerate), int(f.channels), str(f.format))
    except ReferenceAudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise _decode_error(e) from e


def decode_audio(source: AudioSource, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode to (samples [T, C] float32, sample_rate) at the file's own rate.

    ``max_seconds``: refuse (``AudioTooLong``) a clip whose header says it is longer, before decoding,
    and decode at most ``max_seconds`` (plus one sample, to tell "longer") whatever the header says.
    """
    import soundfile as sf

    opened = _opened(source)
    try:
        with sf.SoundFile(opened) as f:
            rate = int(f.samplerate)
            known = f.frames < UNKNOWN_FRAMES
            limit = None if max_seconds is None else int(math.floor(max_seconds * rate))
            if limit is not None and known and f.frames > limit:
                raise _too_long(f.frames / rate, max_seconds)
            if known:
                data = f.read(frames=-1 if limit is None else limit + 1, dtype="float32", always_2d=True)
            else:
                data = _read_blocks(f, None if limit is None else limit + 1)
    except ReferenceAudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise _decode_error(e) from e
    if max_seconds is not None and data.shape[0] > max_seconds * rate:
        raise _too_long(data.shape[0] / rate, max_seconds)
    return data, rate


def load_audio(
    source: AudioSource, target_sr: int | None = None, max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate (``target_sr`` if given, else the file's); ``max_seconds`` as
    ``decode_audio``."""
    data, sr = decode_audio(source, max_seconds)
    if data.shape[0] == 0:
        raise ReferenceAudioError("audio has no samples")
    if not np.isfinite(data).all():
        raise ReferenceAudioError("audio contains NaN or infinite samples")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if target_sr is not None and target_sr != sr:
        mono, sr = resample(mono, sr, target_sr), target_sr
    return np.ascontiguousarray(mono, dtype=np.float32), sr


def encode_audio(wav: np.ndarray, sample_rate: int, fmt: str = "wav") -> bytes:
    """Encode mono float audio: wav/flac (16-bit), ogg (Vorbis), opus (Ogg/Opus at 48 kHz), mp3, raw/pcm
    (headerless 16-bit little-endian samples)."""
    import soundfile as sf

    if fmt not in ENCODE_FORMATS:
        raise InvalidParameter(f"audio format {fmt!r} is not one of {sorted(ENCODE_FORMATS)}")
    samples = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
    if fmt in ("raw", "pcm"):
        return (samples * 32767).astype("<i2").tobytes()
    if fmt == "opus" and sample_rate != OPUS_RATE:
        samples, sample_rate = resample(samples, sample_rate, OPUS_RATE), OPUS_RATE
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format=ENCODE_FORMATS[fmt], subtype=_SUBTYPES[fmt])
    return buf.getvalue()
