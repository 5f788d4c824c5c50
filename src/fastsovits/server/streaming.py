"""Audio encoders for HTTP responses: one encoder per response, fed chunk by chunk.

``feed(samples)`` returns the bytes ready so far, ``finish()`` the rest, ``close()`` frees the encoder
(also when the response is abandoned). A streamed WAV is a
header whose RIFF and data sizes are 0xFFFFFFFF ("unknown length", read to end of stream by
common players and libsndfile) followed by 16-bit PCM. Ogg/Opus, AAC (ADTS), MP3 and FLAC come
from one PyAV encoder per response, so the stream is one continuous file, not one per chunk.
"""

from __future__ import annotations

import struct
from typing import Any, cast

import numpy as np

from fastsovits.audio.io import encode_audio
from fastsovits.errors import InvalidParameter

MEDIA_TYPES = {
    "wav": "audio/wav",
    "raw": "audio/raw",
    "pcm": "audio/pcm",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
}
_AV = {
    "ogg": ("ogg", "libopus", 48000),
    "opus": ("ogg", "libopus", 48000),
    "aac": ("adts", "aac", None),
    "mp3": ("mp3", "libmp3lame", None),
    "flac": ("flac", "flac", None),
}
UNKNOWN_SIZE = 0xFFFFFFFF


def wav_header(sample_rate: int, data_bytes: int = UNKNOWN_SIZE) -> bytes:
    """A 44-byte PCM_16 mono WAV header; the default sizes mean 'unknown, read to the end'."""
    riff = UNKNOWN_SIZE if data_bytes == UNKNOWN_SIZE else 36 + data_bytes
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def to_pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767).astype("<i2").tobytes()


class _Resampler:
    """Streaming soxr resampling (no clicks at chunk joins); identity when the rates agree."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.stream = None
        if in_rate != out_rate:
            import soxr

            self.stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        return x if self.stream is None else self.stream.resample_chunk(x, last=last)


class PcmEncoder:
    def __init__(self, sample_rate: int, out_rate: int | None = None, header: bool = False) -> None:
        self.out_rate = out_rate or sample_rate
        self._resample = _Resampler(sample_rate, self.out_rate)
        self._header = wav_header(self.out_rate) if header else b""

    def feed(self, samples: np.ndarray) -> bytes:
        out, self._header = self._header + to_pcm16(self._resample(samples)), b""
        return out

    def finish(self) -> bytes:
        out, self._header = self._header + to_pcm16(self._resample(np.zeros(0, np.float32), last=True)), b""
        return out

    def close(self) -> None:
        pass


class _Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, b) -> int:
        self.parts.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


class AvEncoder:
    """One PyAV muxer + encoder writing into memory; ``feed`` hands back what has been muxed so far."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        import av

        container, codec, rate = _AV[fmt]
        self.out_rate = rate or sample_rate
        self._resample = _Resampler(sample_rate, self.out_rate)
        self._sink = _Sink()
        options = {"page_duration": "20000"} if container == "ogg" else {}  # small Ogg pages: low latency
        self._out: Any = av.open(self._sink, mode="w", format=container, options=options)
        stream = cast(Any, self._out.add_stream(codec, rate=self.out_rate))  # an audio stream (PyAV types a union)
        stream.layout = "mono"
        if codec == "aac":
            stream.bit_rate = 128_000
        self._stream: Any = stream
        self._av = av

    def _encode(self, frame) -> bytes:
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        return self._sink.take()

    def feed(self, samples: np.ndarray) -> bytes:
        return self._encode_pcm(self._resample(samples))

    def _encode_pcm(self, x: np.ndarray) -> bytes:
        if not x.size:
            return b""
        pcm = (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)[None]  # [1, T]
        frame = self._av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = self.out_rate
        return self._encode(frame)

    def finish(self) -> bytes:
        tail = self._encode_pcm(self._resample(np.zeros(0, np.float32), last=True))
        tail += self._encode(None)
        self.close()  # writes the container's trailer into the sink
        return tail + self._sink.take()

    def close(self) -> None:
        """Free the codec now (idempotent): its native threads otherwise live until the garbage collector
        breaks PyAV's reference cycles."""
        if self._out is not None:
            self._out.close()
        self._out = self._stream = None


def stream_encoder(fmt: str, sample_rate: int, out_rate: int | None = None):
    """An encoder for a streamed response in ``fmt`` (wav, raw/pcm, ogg/opus, aac, mp3, flac)."""
    if fmt == "wav":
        return PcmEncoder(sample_rate, out_rate, header=True)
    if fmt in ("raw", "pcm"):
        return PcmEncoder(sample_rate, out_rate)
    if fmt in _AV:
        return AvEncoder(fmt, sample_rate)
    raise InvalidParameter(f"media type {fmt!r} is not one of {sorted(MEDIA_TYPES)}")


def encode_whole(samples: np.ndarray, sample_rate: int, fmt: str, out_rate: int | None = None) -> bytes:
    """A complete file: wav/flac/ogg (Vorbis, as api_v2)/opus/mp3/raw by soundfile, aac by PyAV."""
    if out_rate and out_rate != sample_rate:
        from fastsovits.audio.io import resample

        samples, sample_rate = resample(np.asarray(samples, np.float32), sample_rate, out_rate), out_rate
    if fmt == "aac":
        enc = AvEncoder("aac", sample_rate)
        try:
            return enc.feed(samples) + enc.finish()
        finally:
            enc.close()
    if fmt not in MEDIA_TYPES:
        raise InvalidParameter(f"media type {fmt!r} is not one of {sorted(MEDIA_TYPES)}")
    return encode_audio(samples, sample_rate, fmt)
