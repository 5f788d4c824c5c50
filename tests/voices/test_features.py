"""Features as safetensors bytes, the model identity, the cache-fit check, and reuse without re-encoding."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from fastsovits.api import TTS
from fastsovits.errors import InvalidParameter, TextTooLong
from fastsovits.params import SynthesisParams
from fastsovits.voices.features import (
    BadFeatures,
    cache_positions,
    check_prompt_fits,
    model_identity,
    prompt_positions,
    reference_from_bytes,
    reference_to_bytes,
    tts_identity,
)
from fastsovits.voices.references import stored_reference
from fastsovits.voices.store import NewVoice
from tests.voices.conftest import REF, REF_TEXT, reference_wav

FILES = {"sovits": REF / "tiny/tiny_s2_v2.pth", "hubert": REF / "tiny/tiny_hubert"}
GREEDY = SynthesisParams(top_k=1, repetition_penalty=1.0, seed=1, noise_scale=0.0, max_new_tokens=30)
FIELDS = ("prompt_semantic", "prompt_phones", "prompt_bert", "ge")


@pytest.fixture(scope="module")
def tts():
    t = TTS.from_pretrained(
        gpt=REF / "tiny/tiny_s1_v2.ckpt",
        sovits=FILES["sovits"],
        hubert_dir=FILES["hubert"],
        device="cpu",
        num_slots=2,
        max_len=256,
    )
    yield t
    t.close()


def same(a, b) -> bool:
    return all(
        (x is None and y is None) or (x.dtype == y.dtype and torch.equal(x, y))
        for x, y in ((getattr(a, f), getattr(b, f)) for f in FIELDS)
    )


def test_bytes_round_trip_gives_the_same_audio(tts) -> None:
    ref = tts.load_reference(reference_wav(), REF_TEXT, "en")
    data = reference_to_bytes(ref)
    assert data[8:].lstrip().startswith(b"{") and b"fastsovits-reference/1" in data  # safetensors, not pickle
    back = reference_from_bytes(data, tts.device)
    assert same(ref, back) and back.key == ref.key
    a = tts.synthesize("Hello there.", ref, "en", GREEDY).samples
    b = tts.synthesize("Hello there.", back, "en", GREEDY).samples
    assert np.array_equal(a, b)
    style_only = tts.load_reference(reference_wav())
    assert same(style_only, reference_from_bytes(reference_to_bytes(style_only)))


@pytest.mark.parametrize("bad", [b"", b"\x00" * 7, b"\xff" * 64, b"\x10\x00\x00\x00\x00\x00\x00\x00{}garbage....."])
def test_bad_bytes_are_typed(bad) -> None:
    with pytest.raises(BadFeatures):
        reference_from_bytes(bad)


def test_identity_follows_the_files(tmp_path) -> None:
    f = tmp_path / "s2.pth"
    f.write_bytes(b"weights")
    one = model_identity("v2", {"sovits": f})
    assert one == model_identity("v2", {"sovits": f}) and one.startswith("v2-")
    assert one != model_identity("v2", {"sovits": f}, dtype="float16")
    assert one != model_identity("v2", {"sovits": f}, device="cuda:0")
    server_style = {"folder": None, "sovits": str(f), "hubert": None, "bert": None, "sv": None, "gpt": "x.ckpt"}
    assert model_identity("v2", server_style) == one  # absent, None and the GPT do not change the identity
    with pytest.raises(InvalidParameter):
        model_identity("v2", {"sovit": f})
    os.utime(f, ns=(1, 1))
    assert one != model_identity("v2", {"sovits": f})


def test_prompt_too_long_for_the_cache(tts) -> None:
    ref = tts.load_reference(reference_wav(), REF_TEXT, "en")
    positions = cache_positions(tts)
    assert positions == 256
    check_prompt_fits(ref, REF_TEXT, positions)
    used = prompt_positions(ref)
    with pytest.raises(TextTooLong, match="the voice's text 'This is the reference.'"):
        check_prompt_fits(ref, REF_TEXT, used + 31)
    check_prompt_fits(ref, REF_TEXT, used + 32)


def test_stored_reference_is_encoded_once(tts, store, monkeypatch) -> None:
    store.add(NewVoice("alice", reference_wav(), REF_TEXT, "en"))
    first = stored_reference(store, tts, "alice", FILES)
    assert store.summary("alice").features == (tts_identity(tts, FILES),)

    def encoder_called(*args, **kwargs):
        raise AssertionError("the encoder ran again")

    monkeypatch.setattr(tts, "load_reference", encoder_called)
    again = stored_reference(store, tts, "alice", FILES)
    assert again is not first and same(first, again)
