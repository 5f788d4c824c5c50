"""Clips for the voice-store tests: WAV and FLAC bytes made here, the reference clip from the fixtures."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from fastsovits.voices.store import VoiceStore
from tests.reference import reference_dir

REF = reference_dir()
REF_TEXT = "This is the reference."


def audio_bytes(seconds: float, rate: int = 32000, fmt: str = "WAV", channels: int = 1, silent: bool = False) -> bytes:
    n = int(seconds * rate)
    t = np.arange(n, dtype=np.float32) / rate
    tone = np.zeros(n, np.float32) if silent else (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    data = tone if channels == 1 else np.stack([tone] * channels, axis=1)
    buf = io.BytesIO()
    sf.write(buf, data, rate, format=fmt, subtype="VORBIS" if fmt == "OGG" else "PCM_16")
    return buf.getvalue()


def reference_wav() -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.load(REF / "io/audio_inputs.npz")["wav32k_b"], 32000, format="WAV", subtype="PCM_16")
    return buf.getvalue()  # 3.1 s


@pytest.fixture()
def store(tmp_path) -> VoiceStore:
    return VoiceStore.open(tmp_path / "data")
