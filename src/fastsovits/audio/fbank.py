"""Kaldi-compatible log mel filterbank features (no torchaudio), as the v2Pro speaker encoder uses.

Defaults follow Kaldi's ``compute-fbank-feats`` with the settings of the official front end:
25 ms frames every 10 ms with edges snipped, per-frame DC removal, pre-emphasis 0.97, a "povey"
window (Hann to the power 0.85), zero-padding to a power of two, power spectrum, triangular
filters on the HTK mel scale (1127 ln(1 + f/700)) from 20 Hz to Nyquist, natural log floored at
float32 epsilon. No dither.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_EPS = torch.finfo(torch.float32).eps


def _htk_mel(freq: Tensor | float):
    if isinstance(freq, Tensor):
        return 1127.0 * (1.0 + freq / 700.0).log()
    return 1127.0 * math.log(1.0 + freq / 700.0)


def kaldi_mel_banks(n_mels: int, fft_size: int, sample_rate: float, low: float = 20.0, high: float = 0.0) -> Tensor:
    """Triangular filters ``[n_mels, fft_size // 2]`` on the HTK mel scale (Kaldi's layout)."""
    nyquist = sample_rate / 2
    high = high + nyquist if high <= 0.0 else high
    mel_low, mel_high = _htk_mel(low), _htk_mel(high)
    delta = (mel_high - mel_low) / (n_mels + 1)
    idx = torch.arange(n_mels).unsqueeze(1)  # [n_mels, 1]
    left = mel_low + idx * delta
    center = mel_low + (idx + 1.0) * delta
    right = mel_low + (idx + 2.0) * delta
    mel = _htk_mel((sample_rate / fft_size) * torch.arange(fft_size // 2)).unsqueeze(0)  # [1, bins]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    return torch.clamp(torch.minimum(up, down), min=0.0)


def fbank(
    wav: Tensor,
    n_mels: int = 80,
    sample_rate: int = 16000,
    frame_ms: float = 25.0,
    shift_ms: float = 10.0,
    preemphasis: float = 0.97,
) -> Tensor:
    """Log mel energies of one mono waveform ``[T]`` (or ``[1, T]``) -> ``[frames, n_mels]``."""
    if wav.dim() == 2:
        wav = wav[0]
    size = int(sample_rate * frame_ms * 0.001)
    shift = int(sample_rate * shift_ms * 0.001)
    fft_size = 1 << (size - 1).bit_length()
    if wav.shape[0] < size:
        return torch.empty(0, n_mels, dtype=wav.dtype, device=wav.device)
    n_frames = 1 + (wav.shape[0] - size) // shift
    frames = wav.as_strided((n_frames, size), (shift * wav.stride(0), wav.stride(0)))  # [m, size]
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - preemphasis * previous
    window = torch.hann_window(size, periodic=False, dtype=wav.dtype, device=wav.device).pow(0.85)
    frames = torch.nn.functional.pad(frames * window, (0, fft_size - size))
    power = torch.fft.rfft(frames).abs().pow(2.0)  # [m, fft_size // 2 + 1]
    banks = kaldi_mel_banks(n_mels, fft_size, float(sample_rate)).to(wav.device, wav.dtype)
    banks = torch.nn.functional.pad(banks, (0, 1))  # the Nyquist bin gets no weight
    energies = power @ banks.T
    return torch.clamp(energies, min=_EPS).log()
