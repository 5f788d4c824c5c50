"""Bucketed SoVITS decode: each sentence's audio equals its unbatched decode."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from fastsovits.checkpoints.sovits import load_sovits
from fastsovits.engine.decode_runner import DecodeItem, DecodeRunner
from fastsovits.engine.jobs import DecodeInputs
from tests.reference import reference_dir


@pytest.fixture(scope="module", params=["v2", "v2ProPlus"])
def synth(request):
    model, cfg, _ = load_sovits(reference_dir() / "tiny" / f"tiny_s2_{request.param}.pth")
    return model


def _items(synth, n=5):
    g = torch.Generator().manual_seed(0)
    spec = torch.rand(1, 1025, 60, generator=g)
    sv = torch.randn(1, 20480, generator=g) if synth.config.is_pro else None
    with torch.no_grad():
        ge = synth.style([spec], [sv] if sv is not None else None)
    items = []
    for i in range(n):
        t = int(torch.randint(8, 40, (1,), generator=g))
        phones = torch.randint(1, 700, (int(torch.randint(3, 20, (1,), generator=g)),), generator=g)
        items.append(
            DecodeItem(
                torch.randint(0, 1024, (t,), generator=g),
                DecodeInputs(
                    phones, ge, noise_scale=0.5 if i % 2 else 0.0, speed=(1.0, 1.25, 0.8)[i % 3], seed=100 + i
                ),
            )
        )
    return items


def test_batched_equals_single(synth) -> None:
    items = _items(synth)
    batched = DecodeRunner(synth, max_batch=4).decode(items)
    for item, audio in zip(items, batched):
        alone = DecodeRunner(synth, max_batch=1).decode([item])[0]
        assert audio.shape == alone.shape
        assert float(np.abs(audio - alone).max()) <= 1e-4


def test_lengths_and_seed(synth) -> None:
    items = _items(synth, 3)
    out = DecodeRunner(synth).decode(items)
    for item, audio in zip(items, out):
        expected = int(synth.wav_lengths(torch.tensor([item.codes.numel()]), [item.inputs.speed])[0])
        assert audio.shape == (expected,)
    noisy = items[1]
    a = DecodeRunner(synth).decode([noisy])[0]
    b = DecodeRunner(synth).decode([DecodeItem(noisy.codes, replace(noisy.inputs, seed=7))])[0]
    assert np.array_equal(a, DecodeRunner(synth).decode([noisy])[0])
    assert not np.array_equal(a, b)


def test_bf16_decode_stays_close_to_fp32(synth) -> None:
    """The bf16 CPU path (weights and activations bf16) gives the fp32 waveform within a few percent."""
    import copy

    low = copy.deepcopy(synth).to(torch.bfloat16)
    items = _items(synth, n=3)
    full = DecodeRunner(synth, max_batch=1).decode(items)
    half = DecodeRunner(low, max_batch=1).decode(items)
    for a, b in zip(full, half):
        assert a.shape == b.shape and b.dtype == np.float32
        rel = float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-9))
        assert rel < 0.08, f"bf16 waveform {rel:.3f} away from fp32 (relative L2)"
        assert float(np.abs(a - b).max()) < 0.05
