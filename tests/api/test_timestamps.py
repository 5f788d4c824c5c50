"""Timestamps of a synthesis with the tiny random models: structure, not content (the weights are random).

Times are monotonic and inside the audio, a sentence's words tile it, pauses sit between sentences, speed
scales every time, and a streamed request gives the same times as a whole one.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastsovits.api import TTS
from fastsovits.checkpoints.gpt import load_gpt
from fastsovits.checkpoints.sovits import load_sovits
from fastsovits.params import SynthesisParams
from tests.reference import reference_dir

REF = reference_dir()
TEXT = "Hello there, my good friend. And here is a second sentence! A third one."
PARAMS = SynthesisParams(
    seed=5, text_split_method="cut5", max_new_tokens=60, fragment_interval=0.3, timestamps=True, noise_scale=0.0
)


@pytest.fixture(scope="module")
def setup():
    t2s, _, _ = load_gpt(REF / "tiny/tiny_s1_v2.ckpt")
    synth, _, _ = load_sovits(REF / "tiny/tiny_s2_v2.pth")
    tts = TTS(t2s, synth, version="v2", hubert_dir=REF / "tiny/tiny_hubert", num_slots=4, max_len=512)
    wav = np.load(REF / "io/audio_inputs.npz")["wav32k_b"]
    voice = tts.load_reference((wav, 32000), "This is the reference.", "en")
    yield tts, voice
    tts.close()


def _check_structure(result, gap: float) -> None:
    stamps = result.timestamps
    assert [t.index for t in stamps] == [s.index for s in result.sentences] and len(stamps) >= 2
    assert stamps[0].start == 0.0
    for s, t in zip(result.sentences, stamps):
        assert t.end - t.start == pytest.approx(s.audio_seconds)
        assert t.words, f"sentence {t.index} has no words"
        assert t.words[0].start == t.start and t.words[-1].end == pytest.approx(t.end)  # the words tile it
        for a, b in zip(t.words, t.words[1:]):
            assert a.start <= a.end == b.start <= b.end
    for a, b in zip(stamps, stamps[1:]):
        assert b.start - a.end == pytest.approx(gap)  # the fragment_interval pause
    assert stamps[-1].end + gap == pytest.approx(result.duration)  # the last pause ends the audio


def test_timestamps_are_monotonic_inside_the_audio_and_tile_each_sentence(setup) -> None:
    tts, voice = setup
    result = tts.synthesize(TEXT, voice, "en", PARAMS)
    _check_structure(result, 0.3)
    words = [w.text for t in result.timestamps for w in t.words]
    assert words[:5] == ["Hello", "there,", "my", "good", "friend."]
    assert "sentence!" in words and words[-1] == "one."
    # a word's duration is a whole number of tokens (T >= phones here) of audio_seconds / tokens each
    s, t = result.sentences[0], result.timestamps[0]
    per_token = s.audio_seconds / s.tokens
    for w in t.words:
        assert (w.end - w.start) / per_token == pytest.approx(round((w.end - w.start) / per_token), abs=1e-6)


def test_timestamps_off_still_give_sentence_times(setup) -> None:
    tts, voice = setup
    on = tts.synthesize(TEXT, voice, "en", PARAMS)
    off = tts.synthesize(TEXT, voice, "en", PARAMS.with_(timestamps=False))
    assert [(t.start, t.end) for t in off.timestamps] == [(t.start, t.end) for t in on.timestamps]
    assert all(t.words == () for t in off.timestamps)


def test_timestamps_scale_with_speed(setup) -> None:
    tts, voice = setup
    slow = tts.synthesize(TEXT, voice, "en", PARAMS.with_(fragment_interval=0.0))
    fast = tts.synthesize(TEXT, voice, "en", PARAMS.with_(fragment_interval=0.0, speed_factor=2.0))
    assert [s.tokens for s in slow.sentences] == [s.tokens for s in fast.sentences]  # speed is a decoder knob
    for s, f, st in zip(slow.timestamps, fast.timestamps, slow.sentences):
        # half as long, within the decoder's rounding of a frame per sentence
        assert f.end - f.start == pytest.approx((s.end - s.start) / 2, abs=0.05)
        # the same alignment: every word sits at the same fraction of its sentence
        for ws, wf in zip(s.words, f.words):
            assert ws.text == wf.text
            assert (wf.start - f.start) / (f.end - f.start) == pytest.approx((ws.start - s.start) / (s.end - s.start))
        assert (s.end - s.start) / st.tokens == pytest.approx(0.04, abs=0.005)  # 25 Hz tokens: 40 ms each


def test_timestamps_of_a_stream_match_the_whole_result(setup) -> None:
    tts, voice = setup
    whole = tts.synthesize(TEXT, voice, "en", PARAMS)
    handle = tts.stream(TEXT, voice, "en", PARAMS)
    chunks = list(handle)
    streamed = handle.timestamps()
    assert sum(len(c.samples) for c in chunks) / tts.sample_rate == pytest.approx(whole.duration)
    assert [t.to_dict() for t in streamed] == [t.to_dict() for t in whole.timestamps]


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("yue", "你好，世界。今天天氣好好。", ["你", "好,", "世", "界.", "今", "天", "天", "气", "好", "好."]),
        # cut5 splits after "、" and the official pre-segmentation ends that piece with "。"
        (
            "ja",
            "こんにちは、世界。元気です！",
            ["こ", "ん", "に", "ち", "は、。", "世", "界。", "元", "気", "で", "す！"],
        ),
    ],
)
def test_timestamps_per_character_for_cantonese_and_japanese(setup, language: str, text: str, expected) -> None:
    tts, voice = setup  # (Chinese needs the BERT model, which the tiny fixtures lack; Cantonese has word2ph too)
    result = tts.synthesize(text, voice, language, PARAMS)
    _check_structure(result, 0.3)
    assert [w.text for t in result.timestamps for w in t.words] == expected
