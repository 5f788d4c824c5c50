"""Audio side of data preparation: 32 kHz loudness mix, HuBERT features, semantic tokens, SV features.

Facts from the official ``2-get-hubert-wav32k.py`` / ``2-get-sv.py`` / ``3-get-semantic.py``:

* audio is decoded to mono 32 kHz; a file whose peak exceeds 2.2 is skipped;
* ``5-wav32k`` holds ``x / peak * 0.95 * 0.5 * 32768 + 0.5 * 32768 * x`` as int16 (we clip to the
  int16 range where the official cast would wrap around);
* HuBERT sees the same mix with 1145.14 in place of 32768, resampled to 16 kHz, with no padding
  (unlike inference prompts); features ``[1, 768, T50]``; NaN features in fp16 are redone in fp32;
* semantic tokens are the pretrained SoVITS ``extract_latent`` of the *saved* features;
* SV features are ``forward3`` of the ``5-wav32k`` file (int16 / 32768) resampled to 16 kHz.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from fastsovits.errors import InvalidInput, ReferenceAudioError

SAMPLE_RATE = 32000
MAX_PEAK = 2.2  # official: louder files are skipped
MIX_MAX, MIX_ALPHA = 0.95, 0.5
HUBERT_SCALE = 1145.14
SSL_HOP_16K = 320  # HuBERT frame step at 16 kHz (50 Hz)


def load_wav32k(path, min_seconds: float) -> np.ndarray:
    """Mono float32 samples at 32 kHz; typed errors for missing, unreadable, silent, too loud or too short audio."""
    from fastsovits.audio.io import load_audio

    audio, _ = load_audio(path, SAMPLE_RATE)
    peak = float(np.abs(audio).max())
    if peak > MAX_PEAK:
        raise ReferenceAudioError(f"peak {peak:.2f} > {MAX_PEAK} (official filter)")
    if peak == 0.0:
        raise ReferenceAudioError("audio is silent (all zeros)")
    seconds = len(audio) / SAMPLE_RATE
    if seconds < min_seconds:
        raise ReferenceAudioError(f"audio lasts {seconds:.2f} s, shorter than the {min_seconds} s minimum")
    return audio


def loudness_mix(audio: np.ndarray, scale: float) -> np.ndarray:
    """``x / peak * MIX_MAX * MIX_ALPHA * scale + (1 - MIX_ALPHA) * scale * x`` in float64."""
    x = audio.astype(np.float64)
    peak = float(np.abs(x).max())
    return x / peak * (MIX_MAX * MIX_ALPHA * scale) + ((1.0 - MIX_ALPHA) * scale) * x


def wav32k_int16(audio: np.ndarray) -> np.ndarray:
    """The ``5-wav32k`` samples: the 32768-scaled mix, truncated toward zero as ``astype`` does, clipped."""
    return np.clip(np.trunc(loudness_mix(audio, 32768.0)), -32768, 32767).astype(np.int16)


def hubert_input(audio: np.ndarray) -> Tensor:
    """The 16 kHz HuBERT input: the 1145.14-scaled mix resampled -> [T16] float32."""
    from fastsovits.audio.io import resample

    mixed = loudness_mix(audio, HUBERT_SCALE).astype(np.float32)
    return torch.from_numpy(resample(mixed, SAMPLE_RATE, 16000).copy())


def hubert_features(extractor, wav16k: Tensor) -> Tensor:
    """``[1, 768, T50]`` features in the extractor's dtype; fp16 NaNs are redone and kept in fp32 (official).

    One clip per forward: HuBERT-base group-normalises its first conv over time, so a padded
    batch would change the features of its shorter rows.
    """
    feats = _forward(extractor, wav16k).to(extractor.dtype)
    if torch.isnan(feats).any() and extractor.dtype != torch.float32:
        feats = _forward(extractor, wav16k, torch.float32)
    if torch.isnan(feats).any():
        raise InvalidInput("HuBERT features contain NaN")
    return feats


def _forward(extractor, wav16k: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    if dtype is None:
        return extractor.features(wav16k, pad=False)
    model = extractor.model
    with torch.inference_mode():
        hidden = model.float()(wav16k.reshape(1, -1).to(extractor.device)).last_hidden_state  # [1, T50, 768]
    model.to(extractor.dtype)
    return hidden.transpose(1, 2).float()


@torch.inference_mode()
def semantic_codes(synthesizer, features: Sequence[Tensor], batch_size: int = 8) -> list[list[int]]:
    """Codes ``extract_latent(ssl)[0, 0]`` of each ``[1, 768, T50]`` feature tensor, batched.

    Exact under right padding: the 25 Hz projection is a stride-2 kernel-2 conv (each output
    frame sees only its own two input frames) and the quantizer is per frame.
    """
    param = next(synthesizer.parameters())
    out: list[list[int]] = []
    for i in range(0, len(features), batch_size):
        chunk = features[i : i + batch_size]
        longest = max(f.shape[-1] for f in chunk)
        batch = torch.zeros(len(chunk), chunk[0].shape[1], longest, dtype=param.dtype)
        for j, f in enumerate(chunk):
            batch[j, :, : f.shape[-1]] = f[0].to(param.dtype)
        codes = synthesizer.extract_latent(batch.to(param.device))  # [B, 1, T25]
        for j, f in enumerate(chunk):
            out.append(codes[j, 0, : f.shape[-1] // 2].cpu().tolist())
    return out


def sv_features(encoder, wav_int16: np.ndarray) -> Tensor:
    """``[1, 20480]`` speaker-verification features of a ``5-wav32k`` signal."""
    from fastsovits.audio.io import resample

    wav16 = resample(wav_int16.astype(np.float32) / 32768.0, SAMPLE_RATE, 16000)
    return encoder.embed([torch.from_numpy(wav16.copy())]).reshape(1, -1).cpu()
