"""The silence slicer on synthetic signals with known silences (tones and exact zeros at 32 kHz)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from fastsovits.errors import InvalidParameter
from fastsovits.train.slicer import Slicer, SlicerConfig, frame_rms, loudness_mix, slice_folder

SR = 32000


def tone(seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return amp * np.sin(2 * np.pi * 220 * t)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR))


def spans(chunks) -> list[tuple[float, float]]:
    return [(c.start / SR, c.end / SR) for c in chunks]


def test_cuts_long_silences_and_keeps_at_most_max_sil_kept() -> None:
    # 0.8 s lead | 5 s tone | 1 s gap | 5 s tone | 0.2 s gap (too short to cut) | 2 s tone | 1 s tail
    x = np.concatenate([silence(0.8), tone(5), silence(1), tone(5), silence(0.2), tone(2), silence(1)])
    (a0, a1), (b0, b1) = spans(Slicer(SR).slice(x))
    assert 0.25 <= a0 < 0.8 and 5.8 <= a1 <= 6.35  # <= 0.5 s (+ one RMS window) of silence kept
    assert 6.25 <= b0 < 6.8 and 14.0 <= b1 <= 14.55  # the 0.2 s gap stays inside; the tail is trimmed
    assert b0 > a1  # the middle of the 1 s gap is removed


def test_short_clip_is_not_cut_before_min_length() -> None:
    x = np.concatenate([tone(2), silence(0.4), tone(3)])  # the gap comes 2 s in: clip < 4 s, kept
    assert spans(Slicer(SR).slice(x)) == [(0.0, len(x) / SR)]


def test_short_silence_is_one_cut_point_at_its_quietest_frame() -> None:
    x = np.concatenate([tone(4.5), silence(0.4), tone(3)])
    chunks = Slicer(SR).slice(x)
    assert len(chunks) == 2 and chunks[0].end == chunks[1].start  # cut, nothing removed
    assert 4.5 <= chunks[0].end / SR <= 4.9
    assert np.abs(x[chunks[0].end - 320 : chunks[0].end + 320]).max() == 0.0  # inside the silence


def test_threshold_decides_what_is_silence() -> None:
    x = np.concatenate([tone(5), tone(1, amp=0.05), tone(5)])  # -26 dBFS RMS "quiet" part
    assert len(Slicer(SR).slice(x)) == 1  # above -34 dB: not silence
    assert len(Slicer(SR, SlicerConfig(threshold_db=-20)).slice(x)) == 2


def test_frame_rms_matches_direct_computation() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(5000)
    rms = frame_rms(x, 400, 100)
    padded = np.pad(x, (200, 200))
    direct = [np.sqrt(np.mean(padded[i * 100 : i * 100 + 400] ** 2)) for i in range(len(rms))]
    assert len(rms) == 1 + len(x) // 100 and np.allclose(rms, direct)


def test_config_validation() -> None:
    with pytest.raises(InvalidParameter):
        SlicerConfig(min_length_ms=100, min_interval_ms=300)
    with pytest.raises(InvalidParameter):
        SlicerConfig(max_sil_kept_ms=5)
    with pytest.raises(InvalidParameter):
        Slicer(SR).slice(np.zeros((2, 100)))


def test_slice_folder_writes_named_mixed_clips(tmp_path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    x = np.concatenate([tone(5), silence(1), tone(5)])
    sf.write(src / "long.wav", x[::2].astype(np.float32), 16000)  # resampled to 32 kHz on read
    (src / "bad.wav").write_bytes(b"nope")
    summary = slice_folder(src, tmp_path / "out", progress=False)
    assert summary["inputs"] == 2 and summary["clips"] == 2 and summary["failed"][0]["file"].endswith("bad.wav")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert all(n.startswith("long.wav_") and n.endswith(".wav") and len(n) == len("long.wav_") + 25 for n in names)
    start, end = (int(v) for v in names[1][len("long.wav_") : -4].split("_"))
    clip, sr = sf.read(tmp_path / "out" / names[1], dtype="int16")
    assert sr == SR and len(clip) == end - start
    peak = np.abs(clip).max() / 32767
    assert 0.55 <= peak <= 0.62  # 0.5 * 0.75 + 0.9 * 0.25 = 0.6: the official mix (max 0.9, alpha 0.25)
    assert np.allclose(loudness_mix(np.array([0.5, -0.25]), 0.9, 0.25), [0.6, -0.3])


def test_cli_slice(tmp_path, capsys) -> None:
    from fastsovits.cli import main

    sf.write(tmp_path / "a.wav", np.concatenate([tone(5), silence(1), tone(5)]).astype(np.float32), SR)
    assert main(["slice", str(tmp_path / "a.wav"), str(tmp_path / "out"), "--min-length", "3000", "-q"]) == 0
    assert '"clips": 2' in capsys.readouterr().out and len(list((tmp_path / "out").iterdir())) == 2
