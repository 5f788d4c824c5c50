"""DSP parity with the official spectrograms, mels and Kaldi fbank (io/spectrograms.npz)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastsovits.audio import dsp
from fastsovits.audio.fbank import fbank
from tests.reference import reference_dir

IO = reference_dir() / "io"
pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def data():
    if not (IO / "spectrograms.npz").is_file():
        pytest.skip("no spectrogram fixtures in this reference folder")
    return np.load(IO / "audio_inputs.npz"), np.load(IO / "spectrograms.npz")


def _wav(inputs, key: str) -> torch.Tensor:
    return torch.from_numpy(inputs[key].astype(np.float32))[None]


COMPUTE = {
    "spec_a": lambda i: dsp.reference_spectrogram(_wav(i, "wav32k_a")),
    "spec_b": lambda i: dsp.reference_spectrogram(_wav(i, "wav32k_b")),
    "mel128_a": lambda i: dsp.training_mel(_wav(i, "wav32k_a")),
    "mel_v4_a": lambda i: dsp.mel_v4(_wav(i, "wav32k_a")),
    "mel_v4_a_norm": lambda i: dsp.norm_spec(dsp.mel_v4(_wav(i, "wav32k_a"))),
    "mel_v3_a24": lambda i: dsp.mel_v3(_wav(i, "wav24k_a")),
    "mel_v3_a24_norm": lambda i: dsp.norm_spec(dsp.mel_v3(_wav(i, "wav24k_a"))),
    "fbank80_wav16k_prompt": lambda i: fbank(_wav(i, "wav16k_prompt")[0])[None],
}


def _tolerance(key: str, want: np.ndarray) -> float:
    if key.startswith("spec_"):
        return 1e-5 * float(np.abs(want).max())
    if key.startswith("fbank"):
        return 1e-3
    return 1e-4


def test_every_key_is_known(data) -> None:
    _, outs = data
    assert set(outs.files) <= set(COMPUTE), f"unknown fixture keys: {set(outs.files) - set(COMPUTE)}"


@pytest.mark.parametrize("key", sorted(COMPUTE))
def test_matches_official(data, key: str) -> None:
    inputs, outs = data
    if key not in outs.files:
        pytest.skip(f"{key} not in this fixture folder")
    want = outs[key]
    got = COMPUTE[key](inputs).numpy()
    assert got.shape == want.shape
    diff = float(np.abs(got - want).max())
    assert diff <= _tolerance(key, want), f"{key}: max abs diff {diff}"


def test_denorm_inverts_norm() -> None:
    x = torch.randn(2, 100, 7)
    torch.testing.assert_close(dsp.denorm_spec(dsp.norm_spec(x)), x)


def test_batched_spectrogram_equals_single(data) -> None:
    inputs, _ = data
    a = _wav(inputs, "wav32k_a")[:, :64000]
    b = _wav(inputs, "wav32k_b")[:, :64000]
    both = dsp.reference_spectrogram(torch.cat([a, b]))
    torch.testing.assert_close(both[1:], dsp.reference_spectrogram(b))
