"""Audio I/O without torchaudio: decoding, mono mixing, resampling, typed errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from fastsovits.audio.io import AudioTooLong, decode_audio, encode_audio, load_audio, probe_audio, resample
from fastsovits.errors import InvalidParameter, ReferenceAudioError


def _tone(sr: int, seconds: float = 1.0, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_round_trip_and_resample(tmp_path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, _tone(24000), 24000, subtype="FLOAT")
    wav, sr = load_audio(path)
    assert sr == 24000 and wav.shape == (24000,)
    wav32, sr32 = load_audio(path, 32000)
    assert sr32 == 32000 and abs(len(wav32) - 32000) <= 1
    # the tone survives resampling: same peak frequency
    spec = np.abs(np.fft.rfft(wav32))
    assert abs(np.argmax(spec) * 32000 / len(wav32) - 440) < 2


def test_stereo_is_averaged() -> None:
    left, right = _tone(16000), np.zeros(16000, np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.stack([left, right], 1), 16000, format="WAV", subtype="FLOAT")
    wav, _ = load_audio(buf.getvalue())
    np.testing.assert_allclose(wav, left / 2, atol=1e-6)


@pytest.mark.parametrize("data", [b"", b"not audio at all" * 10, b"RIFF\x00\x00\x00\x00WAVEfmt "])
def test_corrupt_bytes(data: bytes) -> None:
    with pytest.raises(ReferenceAudioError):
        load_audio(data)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ReferenceAudioError):
        load_audio(tmp_path / "nope.wav")


def test_nan_audio() -> None:
    buf = io.BytesIO()
    sf.write(buf, np.full(100, np.nan, np.float32), 16000, format="WAV", subtype="FLOAT")
    with pytest.raises(ReferenceAudioError):
        load_audio(buf.getvalue())


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3", "opus"])
def test_encode_decodes_back(fmt: str) -> None:
    data = encode_audio(_tone(32000, 0.5), 32000, fmt)
    wav, sr = load_audio(data, 32000)
    assert sr == 32000
    assert abs(len(wav) - 16000) <= (2000 if fmt in ("mp3", "opus") else 1)  # lossy codecs pad frames
    spec = np.abs(np.fft.rfft(wav))
    assert abs(np.argmax(spec) * 32000 / len(wav) - 440) < 5


def test_raw_pcm() -> None:
    data = encode_audio(np.array([0.0, 0.5, -1.0, 2.0], np.float32), 32000, "raw")
    assert np.frombuffer(data, "<i2").tolist() == [0, 16383, -32767, 32767]


def test_bad_parameters() -> None:
    with pytest.raises(InvalidParameter):
        encode_audio(_tone(8000), 8000, "mp9")
    with pytest.raises(InvalidParameter):
        resample(_tone(8000), 0, 16000)


def _silence_flac(seconds: int, sr: int = 16000) -> bytes:
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", sr, 1, format="FLAC", subtype="PCM_16") as f:
        for _ in range(seconds // 60):
            f.write(np.zeros(sr * 60, np.float32))
    return buf.getvalue()


def test_probe_reads_the_header_only() -> None:
    data = _silence_flac(3600)
    info = probe_audio(data)
    assert (info.frames, info.sample_rate, info.channels, info.seconds) == (3600 * 16000, 16000, 1, 3600.0)
    with pytest.raises(ReferenceAudioError) as e:
        probe_audio(b"RIFF\x00\x00garbage" * 10)
    assert "<" not in str(e.value) and "0x" not in str(e.value)


def test_max_seconds_refuses_before_decoding() -> None:
    data = _silence_flac(3600)  # 180 KB of FLAC, 230 MB once decoded
    with pytest.raises(AudioTooLong, match="3600"):
        decode_audio(data, max_seconds=20)
    wav, sr = load_audio(_silence_flac(60), max_seconds=60)
    assert (len(wav), sr) == (60 * 16000, 16000)


def test_max_seconds_bounds_the_decode_when_the_header_hides_the_length() -> None:
    data = bytearray(_silence_flac(600))
    data[21] &= 0xF0  # STREAMINFO's 36-bit total-samples field := 0, "unknown"
    data[22:26] = b"\0\0\0\0"
    assert probe_audio(bytes(data)).seconds == float("inf")
    with pytest.raises(AudioTooLong, match="20"):
        decode_audio(bytes(data), max_seconds=20)
    full, sr = decode_audio(bytes(data))  # without a bound it still reads the whole stream
    assert 599 * sr <= len(full) <= 600 * sr  # libsndfile may fail the last read of such a stream
