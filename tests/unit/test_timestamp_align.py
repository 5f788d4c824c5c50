"""The monotonic aligner, word spans and the request timeline of fastsovits.timestamps (no model)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fastsovits.results import SentenceResult, StopReason
from fastsovits.text.words import WordUnit, share
from fastsovits.timestamps import monotonic_alignment, monotonic_path, request_timestamps, word_spans


def _attention(durations: list[int], rng: np.random.Generator, peak: float = 0.6) -> np.ndarray:
    """Token -> phone attention whose mass sits on the true phone of each token, plus noise."""
    n = len(durations)
    truth = np.repeat(np.arange(n), durations)
    att = rng.uniform(0.0, 0.1, size=(len(truth), n))
    att[np.arange(len(truth)), truth] += peak
    return att / att.sum(axis=1, keepdims=True)


def test_timestamp_aligner_recovers_a_known_path() -> None:
    rng = np.random.default_rng(0)
    durations = [2, 5, 1, 3, 4, 2]
    att = _attention(durations, rng)
    # a distractor: one token in the middle of phone 1 stares at the last phone; monotonicity ignores it
    att[4] = 0.01
    att[4, -1] = 1.0
    spans = monotonic_alignment(att)
    ends = np.cumsum(durations)
    assert spans[:, 1].tolist() == ends.tolist()
    assert spans[:, 0].tolist() == [0, *ends[:-1].tolist()]


def test_timestamp_monotonic_path_is_the_best_monotonic_path() -> None:
    rng = np.random.default_rng(1)
    for a_len, b_len in [(5, 3), (6, 6), (7, 2), (6, 1)]:
        logp = rng.normal(size=(a_len, b_len))
        path = monotonic_path(logp)
        assert path[0] == 0 and path[-1] == b_len - 1 and set(np.diff(path)) <= {0, 1}
        best = -np.inf
        for steps in itertools.combinations(range(1, a_len), b_len - 1):  # rows where the column advances
            cols = np.searchsorted(np.array(steps), np.arange(a_len), side="right")
            best = max(best, logp[np.arange(a_len), cols].sum())
        assert logp[np.arange(a_len), path].sum() == pytest.approx(best)


def test_timestamp_aligner_with_fewer_tokens_than_phones() -> None:
    rng = np.random.default_rng(2)
    att = rng.uniform(size=(3, 8))
    spans = monotonic_alignment(att)
    assert spans[0, 0] == 0 and spans[-1, 1] == 3
    assert np.all(spans[1:, 0] == spans[:-1, 1]) and np.all(spans[:, 1] > spans[:, 0])
    for token in range(3):  # every token is spoken by at least one phone
        assert np.any((spans[:, 0] >= token) & (spans[:, 1] <= token + 1))
    assert np.all(monotonic_alignment(np.zeros((0, 4))) == 0)


def test_timestamp_word_spans_attach_marks_and_tile_the_sentence() -> None:
    units = [
        WordUnit(".", 1, False),
        WordUnit("Hello", 3, True),
        WordUnit(",", 1, False),
        WordUnit(" ", 0, False),
        WordUnit("world", 2, True),
        WordUnit("!", 1, False),
    ]
    phone_spans = np.array([[0, 1], [1, 2], [2, 3], [3, 5], [5, 7], [7, 8], [8, 9], [9, 12]], dtype=float)
    spans = word_spans(phone_spans, units)
    assert spans == [(".Hello,", 0.0, 7.0), ("world!", 7.0, 12.0)]
    assert word_spans(phone_spans[:1], [WordUnit(".", 1, False)]) == []


def test_timestamp_share_keeps_the_total() -> None:
    assert share(7, [1, 1, 1]) in ([3, 2, 2], [2, 3, 2], [2, 2, 3]) and sum(share(7, [1, 1, 1])) == 7
    assert share(5, [0, 2, 0]) == [0, 5, 0] and share(3, [0, 0]) in ([2, 1], [1, 2]) and share(4, []) == []


def _sentence(index: int, tokens: int, seconds: float) -> SentenceResult:
    return SentenceResult(index, f"s{index}", StopReason.EOS, tokens, 4, seconds)


def test_timestamp_request_timeline_has_the_pauses_and_scales_tokens_to_audio() -> None:
    sentences = [_sentence(1, 10, 0.8), _sentence(0, 20, 1.6)]  # given out of order
    calls = []

    def aligner(text: str, tokens, phones: int):
        calls.append((text, len(tokens), phones))
        return [("a", 0.0, len(tokens) / 2), ("b", len(tokens) / 2, float(len(tokens)))]

    tokens = {0: list(range(20)), 1: list(range(10))}
    out = request_timestamps(sentences, 0.3, ["first", "second"], tokens, aligner)
    assert [(t.index, t.start, t.end) for t in out] == [(0, 0.0, 1.6), (1, pytest.approx(1.9), pytest.approx(2.7))]
    assert calls == [("first", 20, 4), ("second", 10, 4)]
    assert [(w.text, w.start, w.end) for w in out[1].words] == [
        ("a", pytest.approx(1.9), pytest.approx(2.3)),
        ("b", pytest.approx(2.3), out[1].end),
    ]
    plain = request_timestamps(sentences, 0.3)
    assert [(t.start, t.end) for t in plain] == [(t.start, t.end) for t in out] and all(not t.words for t in plain)
