"""``TTS.stream_text``: text arriving in deltas of one or two characters, audio out while it still arrives."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest

from fastsovits.api import TTS
from fastsovits.errors import EmptyText, InputTimeout, InvalidInput, TextTooLong, UnsupportedLanguage
from fastsovits.limits import TextStreamLimits
from fastsovits.params import SynthesisParams
from fastsovits.text import presegment
from tests.reference import reference_dir

REF = reference_dir()
TEXT = "Hello there, my friend. How are you today? I am fine, thanks."
SEEDED = SynthesisParams(seed=5, max_new_tokens=30, text_split_method="cut5")
WAIT_S = 120  # a generator waiting for audio gives up after this (so a broken stream cannot hang the test)


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


def deltas(text: str) -> Iterator[str]:
    """One or two characters at a time."""
    i, k = 0, 1
    while i < len(text):
        yield text[i : i + k]
        i, k = i + k, 3 - k


def wait_idle(tts: TTS, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (s := tts.stats()).running_rows or s.waiting_rows:
        assert time.monotonic() < deadline, "the engine did not go idle"
        time.sleep(0.05)


def test_audio_equals_one_shot_with_the_same_seeds(tts, voice) -> None:
    chunks = list(tts.stream_text(deltas(TEXT), voice, "en", SEEDED))
    expected = presegment(TEXT, "en", "cut5")
    results = [c.sentence for c in chunks if c.sentence is not None]
    assert [r.text for r in results] == [s.strip() for s in expected] and len(expected) == 5
    assert [r.index for r in results] == list(range(len(expected)))
    assert [c.is_last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    indices = [c.index for c in chunks]
    assert indices == sorted(indices)
    whole = tts.synthesize(TEXT, voice, "en", SEEDED)
    np.testing.assert_allclose(np.concatenate([c.samples for c in chunks]), whole.samples, atol=1e-4)
    other = tts.synthesize(TEXT, voice, "en", SEEDED.with_(seed=6))  # the seeds matter: not a vacuous match
    assert other.samples.shape != whole.samples.shape or not np.allclose(other.samples, whole.samples, atol=1e-3)


def test_first_audio_arrives_while_the_text_is_still_coming(tts, voice) -> None:
    first_audio = threading.Event()
    log: list[str] = []

    def llm() -> Iterator[str]:
        yield from deltas("The first sentence is here. And")
        log.append("waiting")
        log.append("audio came first" if first_audio.wait(WAIT_S) else "timed out")
        yield from deltas(" then the rest of the text follows.")
        log.append("text done")

    got = []
    for chunk in tts.stream_text(llm(), voice, "en", SEEDED):
        if chunk.samples.size and not first_audio.is_set():
            log.append("first audio")
            first_audio.set()
        got.append(chunk)
    assert log == ["waiting", "first audio", "audio came first", "text done"]
    assert [c.sentence.text for c in got if c.sentence] == [
        "The first sentence is here.",
        "And then the rest of the text follows.",
    ]


def test_async_iterable_in_async_iterator_out(tts, voice) -> None:
    async def llm() -> AsyncIterator[str]:
        for d in deltas(TEXT):
            await asyncio.sleep(0)
            yield d

    async def run() -> list:
        stream = tts.stream_text(llm(), voice, "en", SEEDED)
        assert isinstance(stream, AsyncIterator)
        return [c async for c in stream]

    chunks = asyncio.run(run())
    whole = tts.synthesize(TEXT, voice, "en", SEEDED)
    np.testing.assert_allclose(np.concatenate([c.samples for c in chunks]), whole.samples, atol=1e-4)
    assert chunks[-1].is_last


def test_end_of_text_after_the_last_audio_gives_an_empty_last_chunk(tts, voice) -> None:
    released = threading.Event()

    def llm() -> Iterator[str]:
        yield "One whole sentence. X"
        released.wait(WAIT_S)  # the end of the text comes only after the first sentence's audio

    chunks = []
    for chunk in tts.stream_text(llm(), voice, "en", SEEDED):
        chunks.append(chunk)
        if chunk.sentence is not None:
            released.set()
    assert [c.sentence.text for c in chunks if c.sentence] == ["One whole sentence.", "X."]
    assert chunks[-1].is_last and sum(c.is_last for c in chunks) == 1


def test_limits_are_refused_before_any_work(tts, voice) -> None:
    limits = TextStreamLimits(max_chars=40, max_delta_chars=10, max_sentences=2)
    before = tts.stats().sentences
    cases = [
        (["x" * 11], TextTooLong, 0),  # one delta too big
        (["Fine. ", "x" * 10, "y" * 10, "z" * 10, "w" * 10], TextTooLong, 1),  # the whole text too long
        (["One. Two. ", "Three. ", "Four."], TextTooLong, 2),  # too many sentences
        ([" ", "\n", "..."], EmptyText, 0),
        ([b"bytes"], InvalidInput, 0),
    ]
    for chunks, error, submitted in cases:
        stream = tts.stream_text(iter(chunks), voice, "en", SEEDED, limits)
        with pytest.raises(error):
            list(stream)
        assert len(stream.sentences) == submitted  # what came before the limit, nothing after it
    with pytest.raises(InvalidInput):
        tts.stream_text("a whole string", voice, "en", SEEDED)
    with pytest.raises(UnsupportedLanguage):
        tts.stream_text(iter(["Hello."]), voice, "xx", SEEDED)
    wait_idle(tts)
    assert tts.stats().sentences - before <= 3  # at most the sentences admitted before a limit was hit


def test_idle_text_source_times_out_and_frees_the_engine(tts, voice) -> None:
    stop = threading.Event()

    def stalled() -> Iterator[str]:
        yield "A sentence. And then nothing"
        stop.wait(WAIT_S)

    stream = tts.stream_text(stalled(), voice, "en", SEEDED, TextStreamLimits(idle_timeout_s=0.5))
    try:
        with pytest.raises(InputTimeout):
            list(stream)
    finally:
        stop.set()
    wait_idle(tts)


def test_closing_early_cancels_the_rest(tts, voice) -> None:
    text = " ".join(f"Sentence number {i} of the story." for i in range(12))
    before = tts.stats().sentences
    stream = tts.stream_text(deltas(text), voice, "en", SEEDED)
    next(stream)
    stream.close()
    wait_idle(tts)  # nothing of the stream is left generating
    assert tts.stats().sentences - before < 12  # the rest was dropped, not decoded
