"""Silence-based slicing of long recordings into utterance-sized clips (the official WebUI tool's behaviour).

The signal's loudness is measured as RMS over windows of ``min(min_interval, 4 * hop)`` samples
every ``hop`` samples (centred windows, zero padding at the ends). A run of frames quieter than
``threshold_db`` is a cut candidate when it lasts at least ``min_interval`` and the clip since
the last cut already lasts ``min_length``. Each cut keeps at most ``max_sil_kept`` of silence
on either side, cutting at the quietest frame of the run (or of its edges when the run is
long). Leading silence longer than ``max_sil_kept`` is always trimmed; trailing silence is
trimmed when it lasts ``min_interval``. Official WebUI defaults: -34 dB, 4000 ms, 300 ms,
10 ms hop, 500 ms kept; clips are then loudness-mixed (``max`` 0.9, ``alpha`` 0.25) and written
as 32 kHz int16 wavs named ``<source name>_<start sample>_<end sample>.wav`` (10 digits each).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastsovits.errors import FastSovitsError, InvalidParameter

log = logging.getLogger("fastsovits.slice")
SAMPLE_RATE = 32000


@dataclass(frozen=True)
class SlicerConfig:
    threshold_db: float = -34.0  # frames with RMS below this are silence
    min_length_ms: int = 4000  # a clip is not cut before it lasts this long
    min_interval_ms: int = 300  # shortest silence that may become a cut
    hop_ms: int = 10  # RMS frame step
    max_sil_kept_ms: int = 500  # silence kept around each cut
    max_peak: float = 0.9  # loudness mix of the written clips: peak target ...
    alpha: float = 0.25  # ... and the share of the peak-normalised signal in the mix

    def __post_init__(self) -> None:
        if not self.min_length_ms >= self.min_interval_ms >= self.hop_ms > 0:
            raise InvalidParameter("slicer needs min_length_ms >= min_interval_ms >= hop_ms > 0")
        if self.max_sil_kept_ms < self.hop_ms:
            raise InvalidParameter("slicer needs max_sil_kept_ms >= hop_ms")
        if not 0.0 <= self.alpha <= 1.0 or not 0.0 < self.max_peak <= 1.0:
            raise InvalidParameter("slicer needs 0 <= alpha <= 1 and 0 < max_peak <= 1")


@dataclass(frozen=True)
class Chunk:
    start: int  # first sample (inclusive)
    end: int  # last sample (exclusive)


def frame_rms(samples: np.ndarray, win: int, hop: int) -> np.ndarray:
    """RMS of centred windows of ``win`` samples every ``hop`` samples -> [1 + len // hop]."""
    half = win // 2
    padded = np.pad(samples.astype(np.float64), (half, half))
    n_frames = 1 + (len(padded) - win) // hop
    # windows: [n_frames, win] strided view
    windows = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:n_frames]
    return np.sqrt(np.mean(windows**2, axis=1))


class Slicer:
    """Finds the cut points of one mono signal at a given sample rate."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, config: SlicerConfig = SlicerConfig()) -> None:
        self.config = config
        self.hop = round(sample_rate * config.hop_ms / 1000)
        interval = sample_rate * config.min_interval_ms / 1000  # samples
        self.win = min(round(interval), 4 * self.hop)
        self.threshold = 10 ** (config.threshold_db / 20.0)
        self.min_length = round(sample_rate * config.min_length_ms / 1000 / self.hop)  # frames
        self.min_interval = round(interval / self.hop)  # frames
        self.max_kept = round(sample_rate * config.max_sil_kept_ms / 1000 / self.hop)  # frames

    def _quietest(self, rms: np.ndarray, lo: int, hi: int) -> int:
        """Index of the smallest RMS in frames [lo, hi] (inclusive)."""
        return lo + int(np.argmin(rms[lo : hi + 1]))

    def _cut(self, rms: np.ndarray, sil_start: int, sil_end: int) -> tuple[int, int]:
        """The frames (left, right) removed for a silence [sil_start, sil_end) that ends in sound."""
        kept, length = self.max_kept, sil_end - sil_start
        leading = sil_start == 0
        if length <= kept:  # short: one cut at the quietest frame
            pos = self._quietest(rms, sil_start, sil_end)
            return (0, pos) if leading else (pos, pos)
        right = self._quietest(rms, sil_end - kept, sil_end)
        if leading:
            return 0, right
        left = self._quietest(rms, sil_start, sil_start + kept)
        if length <= 2 * kept:  # medium: the cut may widen to the overall quietest frame in the middle
            mid = self._quietest(rms, sil_end - kept, sil_start + kept)
            return min(left, mid), max(right, mid)
        return left, right

    def cut_frames(self, samples: np.ndarray) -> tuple[list[tuple[int, int]], int]:
        """Silences to remove as frame ranges ``(from, to)`` (``to`` may be ``n + 1``: to the end), and n frames."""
        rms = frame_rms(samples, self.win, self.hop)
        cuts: list[tuple[int, int]] = []
        sil_start: int | None = None
        clip_start = 0
        for i, value in enumerate(rms):
            if value < self.threshold:
                if sil_start is None:
                    sil_start = i
                continue
            if sil_start is None:
                continue
            leading = sil_start == 0 and i > self.max_kept
            long_enough = i - sil_start >= self.min_interval and i - clip_start >= self.min_length
            if leading or long_enough:
                cut = self._cut(rms, sil_start, i)
                cuts.append(cut)
                clip_start = cut[1]
            sil_start = None
        n = len(rms)
        if sil_start is not None and n - sil_start >= self.min_interval:
            pos = self._quietest(rms, sil_start, min(n, sil_start + self.max_kept))
            cuts.append((pos, n + 1))
        return cuts, n

    def slice(self, samples: np.ndarray) -> list[Chunk]:
        """Clips of a mono signal as sample ranges (the whole signal when nothing is cut)."""
        if samples.ndim != 1:
            raise InvalidParameter(f"slicer needs a mono 1-D signal, got shape {samples.shape}")
        total = len(samples)
        if total <= self.min_length:  # (compares samples with frames, as the official tool does)
            return [Chunk(0, total)]
        cuts, n = self.cut_frames(samples)
        if not cuts:
            return [Chunk(0, total)]
        bounds = [(0, cuts[0][0])] if cuts[0][0] > 0 else []
        bounds += [(prev[1], nxt[0]) for prev, nxt in zip(cuts, cuts[1:])]
        if cuts[-1][1] < n:
            bounds.append((cuts[-1][1], n))
        chunks = [Chunk(a * self.hop, min(total, b * self.hop)) for a, b in bounds]
        return [c for c in chunks if c.end > c.start]


def loudness_mix(chunk: np.ndarray, max_peak: float, alpha: float) -> np.ndarray:
    """``x / peak * max_peak * alpha + (1 - alpha) * x`` (after scaling a clip that peaks above 1)."""
    peak = float(np.abs(chunk).max())
    if peak == 0.0:
        return chunk.astype(np.float32)
    if peak > 1.0:
        chunk = chunk / peak
        peak = 1.0
    return (chunk / peak * (max_peak * alpha) + (1.0 - alpha) * chunk).astype(np.float32)


AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".aif")


def slice_folder(
    src: str | Path, dest: str | Path, config: SlicerConfig = SlicerConfig(), progress: bool = True
) -> dict:
    """Slice every audio file of ``src`` (or the one file ``src``) into ``dest``; returns a summary.

    Files that cannot be read are reported (logged, listed under ``failed``) and skipped.
    """
    import soundfile as sf
    from tqdm import tqdm

    from fastsovits.audio.io import load_audio

    src, dest = Path(src), Path(dest)
    if src.is_file():
        inputs = [src]
    elif src.is_dir():
        inputs = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    else:
        raise InvalidParameter(f"{str(src)!r} is neither a file nor a folder")
    dest.mkdir(parents=True, exist_ok=True)
    slicer = Slicer(SAMPLE_RATE, config)
    written, failed = [], []
    for path in tqdm(inputs, desc="slice", unit="file", disable=not progress):
        try:
            audio, _ = load_audio(path, SAMPLE_RATE)
        except FastSovitsError as e:
            log.warning("slice: skipping %s: %s", path, e)
            failed.append({"file": str(path), "error": str(e)})
            continue
        for c in slicer.slice(audio):
            clip = loudness_mix(audio[c.start : c.end], config.max_peak, config.alpha)
            out = dest / f"{path.name}_{c.start:010d}_{c.end:010d}.wav"
            tmp = out.with_name(out.name + ".tmp")
            sf.write(str(tmp), (clip * 32767).astype(np.int16), SAMPLE_RATE, subtype="PCM_16", format="WAV")
            tmp.replace(out)
            written.append(str(out))
    return {"inputs": len(inputs), "clips": len(written), "written": written, "failed": failed}
