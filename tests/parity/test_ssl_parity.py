"""Reference audio -> HuBERT -> prompt semantic tokens, as official (io/hubert_prompt_semantic.npz)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastsovits.errors import MissingResource, ReferenceAudioError
from fastsovits.models.ssl import SSLExtractor, check_prompt_length, pad_prompt
from tests.reference import reference_dir

REF = reference_dir()
pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def case():
    path = REF / "io" / "hubert_prompt_semantic.npz"
    if not path.is_file():
        pytest.skip("no HuBERT fixture in this reference folder")
    import json

    meta = json.loads((REF / "io" / "hubert_prompt_semantic.json").read_text())
    return np.load(path), meta


@pytest.fixture(scope="module")
def extractor(case):
    _, meta = case
    return SSLExtractor(REF / meta["hubert_dir"])


def test_padding_rule(case) -> None:
    data, meta = case
    padded = pad_prompt(torch.from_numpy(data["wav16k"]))
    assert padded.shape[1] - data["wav16k"].shape[0] == meta["zero_pad_samples"]
    np.testing.assert_array_equal(padded.numpy(), data["hubert_input"])


def test_hidden_state(case, extractor) -> None:
    data, _ = case
    got = extractor.features(torch.from_numpy(data["wav16k"])).transpose(1, 2).numpy()
    want = data["last_hidden_state"]
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) <= 1e-4


def test_prompt_semantic(case, extractor) -> None:
    from fastsovits.checkpoints.sovits import load_sovits

    data, meta = case
    synth, _, _ = load_sovits(REF / meta["s2_checkpoint"])
    tokens = extractor.prompt_semantic(torch.from_numpy(data["wav16k"]), synth)
    np.testing.assert_array_equal(tokens.numpy(), data["prompt_semantic"])


@pytest.mark.parametrize("seconds", [2.9, 10.1])
def test_length_rule(seconds: float) -> None:
    with pytest.raises(ReferenceAudioError):
        check_prompt_length(int(16000 * seconds))
    check_prompt_length(int(16000 * 5))


def test_missing_folder(tmp_path) -> None:
    with pytest.raises(MissingResource):
        SSLExtractor(tmp_path)
