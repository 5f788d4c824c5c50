"""Audio I/O without torchaudio: decoding, mono mixing, resampling, typed errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from fastsovits.audio.io import encode_audio, load_audio, resample
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
