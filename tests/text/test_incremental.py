"""The incremental splitter closes the sentences one-shot ``presegment`` returns, whatever the deltas."""

from __future__ import annotations

import random

import pytest

from fastsovits.errors import InvalidParameter
from fastsovits.text.incremental import IncrementalSplitter, split_incrementally
from fastsovits.text.split import presegment

TEXTS = [
    ("Hi, there. How are you today? I am fine, thanks!! The value is 3.14 and 2. Okay... bye now.", "en"),
    ("今天天气很好。我们去公园散步吧！你觉得怎么样？好的，走吧。", "zh"),
    ("Hello world.\nSecond line here, with a comma; and more.\n\nThird paragraph? Yes, it is.", "en"),
    ("A. B. C. Dee. Eeeee. Ffffff. Version 1.2.3 is out… Really?! Yes—really.", "en"),
    ("第一句话。。第二句话，有逗号、顿号：冒号；还有分号。最后一句没有句号", "zh"),
]


def random_deltas(text: str, rng: random.Random, most: int = 2) -> list[str]:
    out, i = [], 0
    while i < len(text):
        k = rng.randint(1, most)
        out.append(text[i : i + k])
        i += k
    return out


@pytest.mark.parametrize("method", ["cut0", "cut3", "cut4", "cut5"])
@pytest.mark.parametrize(("text", "language"), TEXTS)
def test_same_sentences_as_one_shot_for_any_deltas(text: str, language: str, method: str) -> None:
    expected = presegment(text, language, method)
    rng = random.Random(f"{method}{text}")
    for _ in range(20):
        assert split_incrementally(random_deltas(text, rng), language, method, 300) == expected
    assert split_incrementally(list(text), language, method, 300) == expected
    assert split_incrementally([text], language, method, 300) == expected


def test_sentences_close_before_the_text_ends() -> None:
    splitter = IncrementalSplitter("en", "cut5", 300)
    assert splitter.feed("Hello there") == []
    assert splitter.feed(".") == []  # a "." may still become "..." or a decimal point
    assert splitter.feed(" N") == ["Hello there."]
    assert splitter.feed("umber 3.") == []
    assert splitter.feed("5 is small") == []  # 3.5: a decimal point, not a sentence end
    assert splitter.feed("! Ok") == [" Number 3.5 is small!"]
    assert splitter.finish() == [" Ok."]  # a short tail is a sentence of its own (one-shot glues it on)


def test_cut1_closes_at_sentence_ends_not_four_clauses() -> None:
    text = "One, two. Three four five? Six seven eight! Nine ten."
    got = split_incrementally(random_deltas(text, random.Random(1)), "en", "cut1", 300)
    assert got == [".One, two.", " Three four five?", " Six seven eight!", " Nine ten."]
    assert len(presegment(text, "en", "cut1")) == 1  # one-shot cut1 keeps up to four clauses together
    # (the leading "." is the official first-clause rule: a first clause under four characters gets one)


def test_text_without_ends_is_cut_at_the_pending_limit() -> None:
    words = " ".join(f"word{i}" for i in range(60))  # no punctuation at all
    splitter = IncrementalSplitter("en", "cut5", 50)
    closed: list[str] = []
    for d in random_deltas(words, random.Random(2), 3):
        closed += splitter.feed(d)
        assert len(splitter.pending) <= 50
    closed += splitter.finish()
    assert len(closed) > 5 and all(len(s) <= 51 for s in closed)  # at most the limit and an added end mark
    assert "".join(s.rstrip(".") for s in closed).split() == words.split()  # every word once, in order, whole


def test_bad_settings() -> None:
    with pytest.raises(InvalidParameter):
        IncrementalSplitter("en", "cut9", 300)
    with pytest.raises(InvalidParameter):
        IncrementalSplitter("en", "cut5", 2)
