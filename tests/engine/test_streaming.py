"""Token-chunk streaming and incremental jobs: chunk rules, frame noise, pieces == whole decode."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastsovits.engine.engine import Engine, SynthesisJob
from fastsovits.engine.noise import frame_noise
from fastsovits.engine.stream_decode import ChunkPlanner, StreamSpec
from fastsovits.errors import Cancelled, InvalidParameter
from tests.engine.test_engine import _sentences, models  # noqa: F401 - the module fixture


def test_fixed_chunks() -> None:
    planner = ChunkPlanner(StreamSpec(chunk_tokens=4, fixed_length=True))
    tokens = list(range(10))
    assert planner.next_cut(tokens[:3], 0) is None
    assert planner.next_cut(tokens, 0) == 4
    assert planner.next_cut(tokens, 4) == 8
    assert planner.next_cut(tokens, 8) is None


def test_fixed_chunks_split_the_first_one() -> None:
    """The first chunk goes out in two halves; the cuts after it are those of unsplit chunks."""
    tokens = list(range(60))
    split = ChunkPlanner(StreamSpec(chunk_tokens=16, fixed_length=True))
    assert split.next_cut(tokens[:7], 0) is None
    assert split.next_cut(tokens[:8], 0) == 8
    assert split.next_cut(tokens[:15], 8) is None
    assert split.next_cut(tokens[:16], 8) == 16
    assert split.next_cut(tokens, 16) == 32
    whole = ChunkPlanner(StreamSpec(chunk_tokens=16, fixed_length=True, split_first=False))
    assert whole.next_cut(tokens[:15], 0) is None and whole.next_cut(tokens, 0) == 16
    short = ChunkPlanner(StreamSpec(chunk_tokens=12, fixed_length=True))  # halves would be under 8 tokens
    assert short.next_cut(tokens[:11], 0) is None and short.next_cut(tokens, 0) == 12


def test_silence_chunks_cut_after_the_silent_pair() -> None:
    sim = [-0.5] * 10
    sim[7] = 0.9  # token 7 sounds like silence
    planner = ChunkPlanner(StreamSpec(chunk_tokens=4), sim)
    tokens = [1, 2, 3, 4, 5, 7, 7, 1, 2]
    assert planner.next_cut(tokens[:5], 0) is None  # fewer than chunk + 2 pending
    assert planner.next_cut(tokens, 0) == 6  # after the first token of the silent pair (5, 6)
    loud = ChunkPlanner(StreamSpec(chunk_tokens=4), [-0.5] * 10)
    assert loud.next_cut([1] * 8, 0) is None  # nothing silent: wait ...
    assert loud.next_cut([1] * 16, 0) == 15  # ... but never longer than 4 chunks
    with pytest.raises(InvalidParameter):
        ChunkPlanner(StreamSpec(chunk_tokens=4))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=0, max_size=80), st.integers(1, 20), st.booleans())
def test_every_token_in_exactly_one_chunk(tokens, n, fixed) -> None:
    sim = [(-1) ** t * t / 10 for t in range(10)]
    spec = StreamSpec(chunk_tokens=n, fixed_length=fixed)
    planner = ChunkPlanner(spec, sim)
    cuts, start = [], 0
    for length in range(len(tokens) + 1):  # tokens arrive one at a time
        cut = planner.next_cut(tokens[:length], start)
        if cut is not None:
            minimum = n  # fixed mode: the first chunk may go out in two halves
            if fixed and start < n:
                minimum = spec.first_cut if start == 0 else n - spec.first_cut
            assert start < cut <= length and cut - start >= minimum
            cuts.append(cut)
            start = cut
    assert cuts == sorted(set(cuts)) and all(c <= len(tokens) for c in cuts)


def test_frame_noise_is_indexed_by_frame() -> None:
    whole = frame_noise(5, 0, 70, 3)
    assert whole.shape == (3, 70)
    torch.testing.assert_close(frame_noise(5, 10, 45, 3), whole[:, 10:45], rtol=0, atol=0)
    assert not torch.equal(frame_noise(6, 0, 70, 3), whole)


@pytest.mark.parametrize(("fixed", "chunk"), [(True, 8), (False, 8), (True, 16)])  # 16: split first chunk
def test_streamed_pieces_match_the_whole_decode(models, fixed, chunk) -> None:  # noqa: F811
    t2s, synth, ge = models
    sents = [
        replace(s, max_new_tokens=60, decode=replace(s.decode, noise_scale=ns, seed=3))
        for s, ns in zip(_sentences(ge, 2, 1), (0.0, 0.5))
    ]
    streamed = [replace(s, stream=StreamSpec(chunk_tokens=chunk, fixed_length=fixed)) for s in sents]
    with Engine(t2s, synth, num_slots=2, max_len=256) as engine:
        whole_handle = engine.submit(SynthesisJob(sents))
        whole = whole_handle.result(timeout=120)
        handle = engine.submit(SynthesisJob(streamed))
        pieces = list(handle.events(timeout=120))
    assert [ev.index for ev in pieces] == sorted(ev.index for ev in pieces)  # in order
    assert [ev.final for ev in pieces].count(True) == 2
    for idx in range(2):
        parts = [ev.audio for ev in pieces if ev.index == idx]
        assert len(parts) >= 3  # audio arrived while the sentence was generating
        cat = np.concatenate(parts)
        assert handle.tokens[idx] == whole_handle.tokens[idx]
        assert cat.shape == whole[idx].shape  # exact length of the whole decode
        rel = np.linalg.norm(cat - whole[idx]) / np.linalg.norm(whole[idx])
        assert rel < 0.1, rel  # only context effects at chunk edges (cross-faded)


def test_incremental_job_equals_submit(models) -> None:  # noqa: F811
    t2s, synth, ge = models
    sents = _sentences(ge, 3, 21)
    with Engine(t2s, synth, num_slots=2, max_len=128) as engine:
        first = engine.submit(SynthesisJob(sents))
        expected = first.result(timeout=120)
        handle = engine.open_job(3)
        engine.add_sentences(handle, 2, sents[2:])
        engine.add_sentences(handle, 0, sents[:2])
        got = handle.result(timeout=120)
        failing = engine.open_job(2)
        engine.add_sentences(failing, 0, sents[:1])
        engine.fail(failing, Cancelled("frontend failed"))
        with pytest.raises(Cancelled):
            failing.result(timeout=60)
        assert len(engine.submit(SynthesisJob(sents[:1])).result(timeout=60)) == 1  # still serving
    assert handle.tokens == first.tokens
    for a, b in zip(expected, got):  # decode groups may differ: float rounding only
        assert a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-5
