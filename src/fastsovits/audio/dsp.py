"""Spectrograms and mel spectrograms exactly as the official models expect them.

All frames are computed without centering: the signal is reflect-padded by ``(n_fft - hop) / 2``
on both sides, framed with a periodic Hann window, and the magnitude is
``sqrt(re^2 + im^2 + 1e-8)``. Mel filters are Slaney-style (area-normalised triangles on the
Slaney mel scale), as librosa's defaults; we compute them ourselves (no librosa/numba).
Windows and filterbanks are cached per (size, dtype, device) on first use, under a lock.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import torch
from torch import Tensor

_cache: dict[tuple, Tensor] = {}
_lock = threading.Lock()

# Normalisation range of the v3/v4 log-mels fed to the flow-matching model.
SPEC_MIN, SPEC_MAX = -12.0, 2.0


def _cached(key: tuple, make) -> Tensor:
    t = _cache.get(key)
    if t is None:
        with _lock:
            t = _cache.get(key)
            if t is None:
                t = _cache[key] = make()
    return t


def _hz_to_slaney_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    step = 200.0 / 3  # linear part: 0..1000 Hz
    log_start_mel = 1000.0 / step
    log_step = math.log(6.4) / 27.0
    mel = hz / step
    high = hz >= 1000.0
    mel[high] = log_start_mel + np.log(hz[high] / 1000.0) / log_step
    return mel


def _slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    step = 200.0 / 3
    log_start_mel = 1000.0 / step
    log_step = math.log(6.4) / 27.0
    hz = mel * step
    high = mel >= log_start_mel
    hz[high] = 1000.0 * np.exp(log_step * (mel[high] - log_start_mel))
    return hz


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Slaney-normalised triangular filters ``[n_mels, n_fft // 2 + 1]`` (float32)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    bins = np.linspace(0.0, sample_rate / 2, 1 + n_fft // 2)
    edges = _slaney_mel_to_hz(
        np.linspace(_hz_to_slaney_mel(np.array([fmin]))[0], _hz_to_slaney_mel(np.array([fmax]))[0], n_mels + 2)
    )
    widths = np.diff(edges)
    dist = edges[:, None] - bins[None, :]  # [n_mels + 2, n_bins]
    rising = -dist[:-2] / widths[:-1, None]
    falling = dist[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def _window(win: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    return _cached(("hann", win, dtype, device), lambda: torch.hann_window(win, dtype=dtype, device=device))


def _filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None, dtype, device) -> Tensor:
    key = ("mel", sr, n_fft, n_mels, fmin, fmax, dtype, device)
    return _cached(key, lambda: torch.from_numpy(mel_filterbank(sr, n_fft, n_mels, fmin, fmax)).to(device, dtype))


def linear_spectrogram(wav: Tensor, n_fft: int, hop: int, win: int) -> Tensor:
    """Magnitude spectrogram: wav [B, T] -> [B, n_fft // 2 + 1, frames] (no centering)."""
    if wav.dim() != 2:
        raise ValueError(f"expected wav of shape [B, T], got {tuple(wav.shape)}")
    pad = (n_fft - hop) // 2
    padded = torch.nn.functional.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)  # [B, T + 2 pad]
    spec = torch.stft(
        padded,
        n_fft,
        hop_length=hop,
        win_length=win,
        window=_window(win, wav.dtype, wav.device),
        center=False,
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-8)


def mel_spectrogram(
    wav: Tensor,
    n_fft: int,
    n_mels: int,
    sample_rate: int,
    hop: int,
    win: int,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> Tensor:
    """Log mel spectrogram (natural log, clamped at 1e-5): wav [B, T] -> [B, n_mels, frames]."""
    spec = linear_spectrogram(wav, n_fft, hop, win)
    mel = torch.matmul(_filters(sample_rate, n_fft, n_mels, fmin, fmax, spec.dtype, spec.device), spec)
    return torch.log(torch.clamp(mel, min=1e-5))


def reference_spectrogram(wav32k: Tensor) -> Tensor:
    """The SoVITS reference spectrogram (v1-v2ProPlus): 32 kHz [B, T] -> [B, 1025, T / 640]."""
    return linear_spectrogram(wav32k, 2048, 640, 2048)


def training_mel(wav32k: Tensor) -> Tensor:
    """The 128-band mel of SoVITS training (32 kHz, 2048/640/2048)."""
    return mel_spectrogram(wav32k, 2048, 128, 32000, 640, 2048)


def mel_v3(wav24k: Tensor) -> Tensor:
    """The v3 reference mel: 24 kHz, 1024/256/1024, 100 bands."""
    return mel_spectrogram(wav24k, 1024, 100, 24000, 256, 1024)


def mel_v4(wav32k: Tensor) -> Tensor:
    """The v4 reference mel: 32 kHz, 1280/320/1280, 100 bands."""
    return mel_spectrogram(wav32k, 1280, 100, 32000, 320, 1280)


def norm_spec(x: Tensor) -> Tensor:
    return (x - SPEC_MIN) / (SPEC_MAX - SPEC_MIN) * 2 - 1


def denorm_spec(x: Tensor) -> Tensor:
    return (x + 1) / 2 * (SPEC_MAX - SPEC_MIN) + SPEC_MIN
