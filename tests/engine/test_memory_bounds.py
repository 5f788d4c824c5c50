"""Memory bounds: decode groups capped in audio seconds, decode OOM retried row by row, long texts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastsovits.engine.decode_runner import DecodeItem, DecodeRunner
from fastsovits.engine.decode_worker import DecodeWorker
from fastsovits.engine.jobs import DecodeInputs
from fastsovits.engine.stream_decode import StreamDecoder
from fastsovits.errors import CapacityError
from tests.engine.test_engine import models  # noqa: F401 - the module fixture


def _items(ge, n):
    g = torch.Generator().manual_seed(4)
    return [
        DecodeItem(
            torch.randint(0, 1024, (int(torch.randint(10, 30, (1,), generator=g)),), generator=g),
            DecodeInputs(torch.randint(1, 700, (8,), generator=g), ge, 0.0),
        )
        for _ in range(n)
    ]


def test_groups_capped_in_seconds_give_the_same_audio(models, monkeypatch) -> None:  # noqa: F811
    _, synth, ge = models
    items = _items(ge, 6)
    calls = []
    small = DecodeRunner(synth, max_batch=8, max_batch_seconds=2.5)  # ~62 tokens of padded audio per call
    real = small.decode_group
    monkeypatch.setattr(small, "decode_group", lambda group: calls.append(len(group)) or real(group))
    capped = small.decode(items)
    assert len(calls) > 1 and max(calls) < 6
    for a, b in zip(capped, DecodeRunner(synth, max_batch=8).decode(items)):
        assert a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-4


def test_decode_oom_retries_one_by_one(models, monkeypatch) -> None:  # noqa: F811
    _, synth, ge = models
    runner = DecodeRunner(synth)
    real = runner.decode

    def picky(items):
        if len(items) > 1:
            raise torch.OutOfMemoryError("simulated")
        return real(items)

    monkeypatch.setattr(runner, "decode", picky)
    worker = DecodeWorker(runner, StreamDecoder(synth), lambda r: None)
    items = _items(ge, 3)
    audios = worker._decode_whole(items)
    assert [a.shape for a in audios] == [a.shape for a in real(items)]
    monkeypatch.setattr(runner, "decode", lambda items: (_ for _ in ()).throw(torch.OutOfMemoryError("x")))
    with pytest.raises(CapacityError):  # a single sentence that never fits fails its job only
        worker._decode_whole(items[:1])


def test_ten_thousand_characters(models) -> None:  # noqa: F811
    from fastsovits.api import TTS
    from fastsovits.params import SynthesisParams
    from fastsovits.text import presegment
    from tests.reference import reference_dir

    t2s, synth, _ = models
    sentence = "The engine keeps its memory bounded while it reads a very long text aloud. "
    text = sentence * (10_000 // len(sentence) + 1)
    assert len(text) >= 10_000
    tts = TTS(t2s, synth, version="v2", hubert_dir=reference_dir() / "tiny/tiny_hubert", num_slots=4, max_len=256)
    try:
        wav = np.load(reference_dir() / "io/audio_inputs.npz")["wav32k_b"]
        voice = tts.load_reference((wav, 32000), "This is the reference.", "en")
        params = SynthesisParams(top_k=1, seed=1, max_new_tokens=12, text_split_method="cut5", fragment_interval=0.0)
        n = len(presegment(text, "en", "cut5"))
        chunks = list(tts.stream(text, voice, "en", params))
        assert n > 100 and [c.index for c in chunks] == list(range(n)) and chunks[-1].is_last
        assert tts.stats().running_rows == 0
    finally:
        tts.close()
