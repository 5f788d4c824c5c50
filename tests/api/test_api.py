"""The TTS facade end to end with the tiny official-format models (random weights: noise, not speech)."""

from __future__ import annotations

import numpy as np
import pytest

from fastsovits.api import TTS, Audio
from fastsovits.errors import EmptyText, InvalidParameter, ReferenceAudioError, UnsupportedLanguage
from fastsovits.params import SynthesisParams
from tests.reference import reference_dir

REF = reference_dir()
GREEDY = SynthesisParams(top_k=1, repetition_penalty=1.0, seed=1, noise_scale=0.0, max_new_tokens=40)


@pytest.fixture(scope="module")
def tts():
    t = TTS.from_pretrained(gpt=REF / "tiny/tiny_s1_v2.ckpt", sovits=REF / "tiny/tiny_s2_v2.pth",
                            hubert_dir=REF / "tiny/tiny_hubert", device="cpu", num_slots=4, max_len=256)
    yield t
    t.close()


@pytest.fixture(scope="module")
def voice(tts):
    wav = np.load(REF / "io/audio_inputs.npz")["wav32k_b"]
    return tts.load_reference((wav, 32000), "This is the reference.", "en")


def test_synthesize(tts, voice) -> None:
    audio = tts.synthesize("Hello there. How are you today?", voice, "en", GREEDY)
    assert isinstance(audio, Audio) and audio.sample_rate == 32000
    assert audio.samples.dtype == np.float32 and audio.duration > 0.3
    assert np.abs(audio.samples).max() <= 1.0


def test_reference_is_cached(tts, voice) -> None:
    wav = np.load(REF / "io/audio_inputs.npz")["wav32k_b"]
    assert tts.load_reference((wav, 32000), "This is the reference.", "en") is voice


def test_batch_equals_single_and_seed_reproduces(tts, voice) -> None:
    texts = ["First sentence here.", "A second, longer sentence for the batch.", "Third one."]
    batch = tts.synthesize_batch([(t, voice, "en", GREEDY) for t in texts])
    for t, b in zip(texts, batch):
        single = tts.synthesize(t, voice, "en", GREEDY)
        assert b.samples.shape == single.samples.shape
        assert float(np.abs(b.samples - single.samples).max()) <= 1e-4
    sampled = SynthesisParams(seed=42, max_new_tokens=40)
    a = tts.synthesize("Sampled speech.", voice, "en", sampled)
    assert np.array_equal(a.samples, tts.synthesize("Sampled speech.", voice, "en", sampled).samples)


def test_stream_concatenates_to_synthesize(tts, voice) -> None:
    text = "One. Two sentences. And three of them."
    params = GREEDY.with_(text_split_method="cut5")
    chunks = list(tts.stream(text, voice, "en", params))
    assert len(chunks) >= 2 and chunks[-1].is_last and [c.index for c in chunks] == list(range(len(chunks)))
    whole = tts.synthesize(text, voice, "en", params)
    np.testing.assert_allclose(np.concatenate([c.samples for c in chunks]), whole.samples, atol=1e-4)


def test_reference_free(tts) -> None:
    wav = np.load(REF / "io/audio_inputs.npz")["wav32k_a"][:32000 * 2]
    wav = np.concatenate([wav, wav])  # 4 s
    ref = tts.load_reference((wav, 32000))
    assert ref.prompt_semantic is None
    assert tts.synthesize("No prompt text.", ref, "en", GREEDY).duration > 0


def test_typed_errors(tts, voice) -> None:
    short = np.zeros(32000 * 2, dtype=np.float32)
    with pytest.raises(ReferenceAudioError):
        tts.load_reference((short, 32000), "too short", "en")
    with pytest.raises(ReferenceAudioError):
        tts.load_reference(b"definitely not audio", "x", "en")
    with pytest.raises(EmptyText):
        tts.synthesize("   ", voice, "en")
    with pytest.raises(UnsupportedLanguage):
        tts.synthesize("Bonjour.", voice, "fr")
    with pytest.raises(InvalidParameter):
        tts.synthesize("Hi.", voice, "en", SynthesisParams(top_p=2.0))
