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
    t = TTS.from_pretrained(
        gpt=REF / "tiny/tiny_s1_v2.ckpt",
        sovits=REF / "tiny/tiny_s2_v2.pth",
        hubert_dir=REF / "tiny/tiny_hubert",
        device="cpu",
        num_slots=4,
        max_len=256,
    )
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
    wav = np.load(REF / "io/audio_inputs.npz")["wav32k_a"][: 32000 * 2]
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


def test_token_streaming_yields_pieces_inside_sentences(tts, voice) -> None:
    text = "A first sentence to stream. And a second one."
    params = GREEDY.with_(
        text_split_method="cut5",
        max_new_tokens=60,
        streaming_mode=True,
        min_chunk_length=8,
        fixed_length_chunk=True,
        fragment_interval=0.0,
    )
    chunks = list(tts.stream(text, voice, "en", params))
    assert len(chunks) > 2 and chunks[-1].is_last and not any(c.is_last for c in chunks[:-1])
    assert {c.index for c in chunks} == {0, 1} and max(c.index for c in chunks if c.index == 0) == 0
    whole = tts.synthesize(text, voice, "en", params.with_(streaming_mode=False))
    streamed = np.concatenate([c.samples for c in chunks])
    assert streamed.shape == whole.samples.shape  # pieces have exactly the whole decode's length
    assert np.linalg.norm(streamed - whole.samples) / np.linalg.norm(whole.samples) < 0.1


def test_closing_a_stream_frees_the_engine(tts, voice) -> None:
    import time

    params = GREEDY.with_(
        text_split_method="cut5", max_new_tokens=200, streaming_mode=True, min_chunk_length=4, fixed_length_chunk=True
    )
    it = tts.stream("Sentence one. Sentence two. Sentence three. Sentence four.", voice, "en", params)
    next(it)
    it.close()  # the client went away
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (tts.stats().running_rows or tts.stats().waiting_rows):
        time.sleep(0.05)
    assert tts.stats().running_rows == 0 and tts.stats().waiting_rows == 0


def test_frontend_error_in_a_later_sentence_fails_the_job(tts, voice, monkeypatch) -> None:
    from fastsovits.errors import UnsupportedCharacters

    real = tts._phones_and_bert_batch

    def flaky(texts, language):
        if any("Broken" in t for t in texts):
            raise UnsupportedCharacters("simulated G2P failure")
        return real(texts, language)

    monkeypatch.setattr(tts, "_phones_and_bert_batch", flaky)
    with pytest.raises(UnsupportedCharacters):
        tts.synthesize("Fine first sentence. Broken second one.", voice, "en", GREEDY.with_(text_split_method="cut5"))
    monkeypatch.setattr(tts, "_phones_and_bert_batch", real)
    assert tts.synthesize("Still serving.", voice, "en", GREEDY).duration > 0


def test_dtype_per_stage() -> None:
    import torch

    from fastsovits.api import stage_dtypes

    assert stage_dtypes("auto", "cpu") == {"t2s": torch.float32, "sovits": torch.float32}
    assert stage_dtypes("auto", "cuda:0") == {"t2s": torch.float16, "sovits": torch.float16}
    assert stage_dtypes({"t2s": "bf16"}, "cpu") == {"t2s": torch.bfloat16, "sovits": torch.float32}
    assert stage_dtypes("t2s=fp32, sovits=bf16", "cpu") == {"t2s": torch.float32, "sovits": torch.bfloat16}
    with pytest.raises(InvalidParameter):
        stage_dtypes("t2s=bf16,sovits", "cpu")
    with pytest.raises(InvalidParameter):
        stage_dtypes("sovits=int8", "cpu")  # int8 is for the T2S stage only
    with pytest.raises(InvalidParameter):
        stage_dtypes("int4", "cpu")
    with pytest.raises(InvalidParameter):
        stage_dtypes({"vocoder": "fp16"}, "cpu")
    with TTS.from_pretrained(
        gpt=REF / "tiny/tiny_s1_v2.ckpt",
        sovits=REF / "tiny/tiny_s2_v2.pth",
        hubert_dir=REF / "tiny/tiny_hubert",
        device="cpu",
        dtype="bf16",
        num_slots=2,
        max_len=256,
    ) as low:
        assert next(low.t2s.parameters()).dtype == torch.bfloat16
        wav = np.load(REF / "io/audio_inputs.npz")["wav32k_b"]
        voice = low.load_reference((wav, 32000), "This is the reference.", "en")
        audio = low.synthesize("Hello there.", voice, "en", GREEDY)
        assert audio.samples.dtype == np.float32 and audio.duration > 0.3


def test_stream_cancel_from_another_thread(tts, voice) -> None:
    import threading
    import time

    from fastsovits.errors import Cancelled

    params = GREEDY.with_(text_split_method="cut5", max_new_tokens=60, streaming_mode=True)
    stream = tts.stream(" ".join(f"Sentence number {i} is here." for i in range(40)), voice, "en", params)
    got = [next(stream)]
    threading.Thread(target=stream.cancel).start()  # while this thread waits in next()
    with pytest.raises(Cancelled):
        for chunk in stream:
            got.append(chunk)
    assert not got[-1].is_last
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and tts.stats().running_rows:
        time.sleep(0.05)
    assert tts.stats().running_rows == 0


@pytest.mark.parametrize("native", [True, False])
def test_bf16_advice_follows_the_cpu(monkeypatch, caplog, native) -> None:
    """fp32 default on a bf16-capable CPU: a hint; bf16 asked for on a CPU without bf16 units: a warning."""
    import logging

    import fastsovits.runtime as runtime

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native)
    files = dict(
        gpt=REF / "tiny/tiny_s1_v2.ckpt",
        sovits=REF / "tiny/tiny_s2_v2.pth",
        hubert_dir=REF / "tiny/tiny_hubert",
        device="cpu",
        num_slots=1,
        max_len=64,
    )
    with caplog.at_level(logging.INFO, logger="fastsovits.api"):
        TTS.from_pretrained(**files).close()
        TTS.from_pretrained(**files, dtype="bf16").close()
    hints = [r for r in caplog.records if "has bf16 units" in r.getMessage()]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "no bf16 units" in r.getMessage()]
    assert (len(hints), len(warnings)) == ((1, 0) if native else (0, 1))
