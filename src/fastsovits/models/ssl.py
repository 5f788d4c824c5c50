"""Self-supervised speech features: chinese-hubert-base -> 25 Hz semantic tokens of a reference.

The official inference feeds the *raw* 16 kHz waveform to ``HubertModel`` (the feature
extractor's normalisation is not applied), after appending ``int(32000 * 0.3) = 9600`` zero
samples: 0.6 s at 16 kHz, because the official code uses the SoVITS sample rate for a 16 kHz
signal. We keep that padding: the prompt tokens depend on it.

Batching: HuBERT-base normalises its first conv layer over time (GroupNorm), so zero padding of a
shorter row leaks into the statistics of its real samples. References are therefore encoded one
at a time (they are cached by content hash, so this runs once per voice).
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch
from torch import Tensor

from fastsovits.errors import MissingResource, ReferenceAudioError

PROMPT_PAD_SAMPLES = int(32000 * 0.3)  # official padding, applied to the 16 kHz prompt
MIN_SAMPLES_16K, MAX_SAMPLES_16K = 48000, 160000  # the official 3-10 s rule at 16 kHz


def check_prompt_length(n_samples: int, sample_rate: int = 16000) -> None:
    """Raise ``ReferenceAudioError`` unless the reference lasts 3 to 10 seconds (official rule)."""
    n16 = n_samples * 16000 / sample_rate
    if n16 > MAX_SAMPLES_16K or n16 < MIN_SAMPLES_16K:
        raise ReferenceAudioError(
            f"reference audio lasts {n_samples / sample_rate:.2f} s; it must last 3 to 10 seconds"
        )


def pad_prompt(wav16k: Tensor) -> Tensor:
    """Append the official 9600 zero samples: [T] or [1, T] -> [1, T + 9600]."""
    wav = wav16k.reshape(1, -1)
    return torch.cat([wav, wav.new_zeros(1, PROMPT_PAD_SAMPLES)], dim=1)


class SSLExtractor:
    """chinese-hubert-base from a local folder (float32 by default), thread-safe."""

    def __init__(
        self, hubert_dir: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> None:
        from transformers import HubertModel

        path = Path(hubert_dir)
        if not (path / "config.json").is_file():
            what = "not found" if not path.is_dir() else "has no config.json"
            raise MissingResource(f"HuBERT folder {path.name} {what} (expected a chinese-hubert-base folder)")
        self.device = torch.device(device)
        self.dtype = dtype
        model = HubertModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
        self.model = model.to(self.device, dtype).eval()
        self._lock = threading.Lock()

    @torch.inference_mode()
    def features(self, wav16k: Tensor, pad: bool = True) -> Tensor:
        """Hidden states of one waveform: [T] -> [1, 768, T50] (official prompt padding unless ``pad=False``)."""
        wav = pad_prompt(wav16k) if pad else wav16k.reshape(1, -1)
        with self._lock:
            hidden = self.model(wav.to(self.device, self.dtype)).last_hidden_state  # [1, T50, 768]
        return hidden.transpose(1, 2).float()

    def prompt_semantic(self, wav16k: Tensor, synthesizer) -> Tensor:
        """The reference's semantic tokens [T25] (int64): HuBERT then the SoVITS quantizer."""
        check_prompt_length(int(wav16k.numel()))
        ssl = self.features(wav16k).to(next(synthesizer.parameters()).device)
        with torch.inference_mode():
            codes = synthesizer.extract_latent(ssl)  # [B, 1, T25]
        return codes[0, 0].cpu()
