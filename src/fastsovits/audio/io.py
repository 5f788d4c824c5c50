"""Reading and writing audio without torchaudio: soundfile (libsndfile) + soxr resampling.

``load_audio`` accepts a path, bytes or a binary file object; returns mono float32 at the
requested rate (channels averaged, as the official loader does). Every failure is a typed
``ReferenceAudioError`` naming the problem: unreadable/corrupt data, an empty signal, NaN/inf.
"""

from __future__ import annotations

import io
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


def decode_audio(source: AudioSource) -> tuple[np.ndarray, int]:
    """Decode to (samples [T, C] float32, sample_rate) at the file's own rate."""
    import soundfile as sf

    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ReferenceAudioError("audio data is empty")
        source = io.BytesIO(bytes(source))
    elif isinstance(source, (str, Path)) and not Path(source).is_file():
        raise ReferenceAudioError(f"audio file {str(source)!r} does not exist")
    try:
        data, sr = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise ReferenceAudioError(f"cannot decode audio ({type(e).__name__}: {e})") from e
    return data, int(sr)


def load_audio(source: AudioSource, target_sr: int | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate (``target_sr`` if given, else the file's)."""
    data, sr = decode_audio(source)
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
