"""v3/v4 in the engine: the decode stage batches encoder features, CFM and vocoder across rows and
requests, equals per-row decoding, keeps per-row seeds, splits groups to its memory budget and
survives out-of-memory; through ``TTS`` the v3/v4 voices, ``sample_steps`` and sentence streaming.

Tiny official-format files: ``tiny_s2_v4.pth`` (loaded as v4, and as v3 as the official fixtures do),
the tiny v4 vocoder and the tiny BigVGAN.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch

from fastsovits.checkpoints.gpt import load_gpt
from fastsovits.checkpoints.sovits_v3 import load_sovits_v3
from fastsovits.checkpoints.vocoders import load_bigvgan, load_v4_vocoder
from fastsovits.engine.decode_runner import DecodeItem
from fastsovits.engine.decode_v3 import InContextDecodeRunner, activation_bytes_per_frame
from fastsovits.engine.decode_worker import DecodeWorker
from fastsovits.engine.engine import Engine
from fastsovits.engine.jobs import DecodeInputs, SentenceJob, SynthesisJob
from fastsovits.engine.sampling import GREEDY
from fastsovits.engine.t2s_inputs import T2SRow
from fastsovits.errors import CapacityError, InvalidInput
from fastsovits.models import v3_synthesis as syn
from fastsovits.params import SynthesisParams
from tests.reference import reference_dir

TINY = reference_dir() / "tiny"
TOL = 1e-4


@cache
def _model(version: str):
    return load_sovits_v3(TINY / "tiny_s2_v4.pth", version)[0]


@cache
def _vocoder(version: str) -> torch.nn.Module:
    return load_v4_vocoder(TINY / "tiny_vocoder_v4.pth") if version == "v4" else load_bigvgan(TINY / "tiny_bigvgan_v3")


@cache
def _t2s():
    return load_gpt(TINY / "tiny_s1_v2.ckpt")[0]


def _prompt(version: str, seed: int, n_codes: int) -> syn.InContextPrompt:
    g = torch.Generator().manual_seed(seed)
    model = _model(version)
    codes = torch.randint(0, 1024, (1, 1, n_codes), generator=g)
    phones = torch.randint(0, 700, (1, 3 + n_codes // 2), generator=g)
    spec = torch.rand(1, 1025, 30, generator=g) * 4
    audio = torch.randn(syn.WINDOWS[version].mel_rate // 2, generator=g) * 0.1
    return syn.build_prompt(model, codes, phones, spec, audio)


def _items(version: str, n: int, steps: int = 4, seed0: int = 10) -> list[DecodeItem]:
    g = torch.Generator().manual_seed(seed0)
    voices = [_prompt(version, 1, 12), _prompt(version, 2, 7)]
    out = []
    for i in range(n):
        n_codes = int(torch.randint(5, 30, (1,), generator=g))
        codes = torch.randint(0, 1024, (n_codes,), generator=g)
        phones = torch.randint(0, 700, (3 + n_codes // 3,), generator=g)
        voice = voices[i % 2]
        speed = (1.0, 1.25, 0.9)[i % 3]
        out.append(
            DecodeItem(
                codes, DecodeInputs(phones, voice.ge, speed=speed, seed=seed0 + i, prompt=voice, sample_steps=steps)
            )
        )
    return out


@pytest.mark.parametrize("version", ["v4", "v3"])
def test_batched_decode_equals_per_row_and_keeps_row_seeds(version: str) -> None:
    runner = InContextDecodeRunner(_model(version), _vocoder(version), max_batch=8)
    items = _items(version, 5)
    sizes: list[int] = []
    real = runner.decode_group

    def spy(group):
        sizes.append(len(group))
        return real(group)

    runner.decode_group = spy  # type: ignore[method-assign]
    together = runner.decode(items)
    assert sizes == [5]  # one group: encoder, CFM and vocoder ran once for all rows
    for item, audio in zip(items, together):
        alone = real([item])[0]
        assert (
            audio.shape == alone.shape
            and audio.shape[0] == (runner.frames(item) - item.inputs.prompt.frames) * syn.WINDOWS[version].upsample
        )
        assert np.abs(audio - alone).max() < TOL
    # the same seeded sentence next to other companions gives the same audio
    other = _items(version, 3, seed0=50)
    mixed = runner.decode([other[0], items[2], other[1]])
    assert np.abs(mixed[1] - together[2]).max() < TOL
    reseeded = runner.decode([DecodeItem(items[2].codes, DecodeInputs(**{**items[2].inputs.__dict__, "seed": 999}))])
    assert np.abs(reseeded[0] - together[2]).max() > 1e-3  # the seed does reach the CFM noise


def test_groups_split_by_step_count_and_memory_budget() -> None:
    model, voc = _model("v4"), _vocoder("v4")
    per_frame = activation_bytes_per_frame(model, voc, torch.float32)
    assert per_frame > 0
    items = _items("v4", 4) + _items("v4", 2, steps=8, seed0=30)
    runner = InContextDecodeRunner(model, voc, max_batch=8, memory_bytes=1 << 40)
    groups: list[list[int]] = []
    real = runner.decode_group
    runner.decode_group = lambda g: (groups.append([it.inputs.sample_steps for it in g]), real(g))[1]  # type: ignore[method-assign]
    runner.decode(items)
    assert sorted(groups) == [[4, 4, 4, 4], [8, 8]]  # one step count per group
    # a budget of one window's frames: a group holds as many rows as fit, never more
    tight = InContextDecodeRunner(model, voc, max_batch=8, memory_bytes=0)
    assert tight.max_group_frames == syn.WINDOWS["v4"].t_chunk
    groups.clear()
    tight.decode_group = lambda g: (groups.append([tight.frames(it) for it in g]), real(g))[1]  # type: ignore[method-assign]
    long_items = _items("v4", 6)
    tight.max_group_frames = 2 * max(tight.frames(it) for it in long_items)
    tight.decode(long_items)
    assert len(groups) >= 3 and all(len(g) * max(g) <= tight.max_group_frames for g in groups)


def test_out_of_memory_in_a_group_decodes_rows_one_by_one() -> None:
    runner = InContextDecodeRunner(_model("v4"), _vocoder("v4"), max_batch=8)
    items = _items("v4", 3)
    expected = runner.decode(items)
    real = runner.decode

    def picky(batch):
        if len(batch) > 1:
            raise torch.OutOfMemoryError("simulated")
        return real(batch)

    runner.decode = picky  # type: ignore[method-assign]
    worker = DecodeWorker(runner, None, lambda r: None)
    audios = worker._decode_whole(items)
    assert all(np.abs(a - e).max() < TOL for a, e in zip(audios, expected))
    runner.decode = lambda batch: (_ for _ in ()).throw(torch.OutOfMemoryError("x"))  # type: ignore[method-assign]
    with pytest.raises(CapacityError):
        worker._decode_whole(items[:1])


def test_engine_batches_v4_rows_of_several_jobs() -> None:
    t2s, model, voc = _t2s(), _model("v4"), _vocoder("v4")
    voice = _prompt("v4", 1, 12)
    g = torch.Generator().manual_seed(5)

    def job(n: int, seed: int) -> SynthesisJob:
        out = []
        for i in range(n):
            phones = torch.randint(0, 700, (12,), generator=g)
            row = T2SRow(phones, torch.randn(1024, 12, generator=g), torch.randint(0, 1024, (10,), generator=g))
            inputs = DecodeInputs(phones[6:], voice.ge, seed=seed + i, prompt=voice, sample_steps=4)
            out.append(SentenceJob(row, inputs, GREEDY, max_new_tokens=20))
        return SynthesisJob(out)

    jobs = [job(2, 1), job(1, 7), job(2, 9)]
    with Engine(t2s, model, vocoder=voc, num_slots=5, max_len=128) as engine:
        handles = [engine.submit(j) for j in jobs]
        together = [h.result(timeout=120) for h in handles]
        alone = [engine.submit(j).result(timeout=120) for j in jobs]
        assert engine.stats().max_batch_rows == 5
    for a, b in zip(together, alone):
        for x, y in zip(a, b):
            assert x.shape == y.shape and np.abs(x - y).max() < TOL
    with pytest.raises(InvalidInput, match="vocoder"):
        Engine(t2s, model, num_slots=1, max_len=64)


@pytest.fixture(scope="module")
def tts_v4():
    from fastsovits.api import TTS

    tts = TTS(
        _t2s(),
        _model("v4"),
        version="v4",
        vocoder=_vocoder("v4"),
        hubert_dir=TINY / "tiny_hubert",
        num_slots=4,
        max_len=256,
    )
    yield tts
    tts.close()


def _wav() -> np.ndarray:
    return np.load(reference_dir() / "io/audio_inputs.npz")["wav32k_b"]


def test_tts_v4_voice_sample_steps_and_sentence_streaming(tts_v4) -> None:
    from fastsovits.api import AudioChunk

    assert tts_v4.sample_rate == 48000
    ref = tts_v4.load_reference((_wav(), 32000), "This is the reference.", "en")
    assert ref.in_context is not None and ref.in_context.frames > 0
    with pytest.raises(InvalidInput, match="reference text"):
        tts_v4.load_reference((_wav(), 32000))  # v3/v4 have no reference-free mode
    text = "The first sentence is here. And the second one follows it."
    p4 = SynthesisParams(
        top_k=1, seed=3, max_new_tokens=15, sample_steps=4, text_split_method="cut5", fragment_interval=0.1
    )
    whole = tts_v4.synthesize(text, ref, "en", p4)
    assert len(whole.sentences) == 2 and whole.sample_rate == 48000
    # the silence between sentences counts in samples of the 32 kHz SoVITS rate, as officially
    sentence_samples = [c for c in tts_v4.stream(text, ref, "en", p4)]
    assert all(isinstance(c, AudioChunk) for c in sentence_samples)
    assert [c.index for c in sentence_samples] == [0, 1] and sentence_samples[-1].is_last  # one piece per sentence
    assert len(whole.samples) == sum(len(c.samples) for c in sentence_samples)
    gap = whole.timestamps[1].start - whole.timestamps[0].end
    assert abs(gap - int(32000 * 0.1) / 48000) < 1e-6
    p8 = p4.with_(sample_steps=8)
    assert np.abs(tts_v4.synthesize(text, ref, "en", p8).samples[: len(whole.samples)] - whole.samples).max() > 1e-4
    again = tts_v4.synthesize(text, ref, "en", p4)
    assert again.samples.shape == whole.samples.shape and np.abs(again.samples - whole.samples).max() < TOL  # seeded


def test_tts_v3_with_bigvgan() -> None:
    from fastsovits.api import TTS

    tts = TTS(
        _t2s(),
        _model("v3"),
        version="v3",
        vocoder=_vocoder("v3"),
        hubert_dir=TINY / "tiny_hubert",
        num_slots=2,
        max_len=256,
    )
    try:
        assert tts.sample_rate == 24000
        ref = tts.load_reference((_wav(), 32000), "This is the reference.", "en")
        out = tts.synthesize(
            "A short test.", ref, "en", SynthesisParams(top_k=1, seed=1, max_new_tokens=10, sample_steps=4)
        )
        assert out.duration > 0 and np.isfinite(out.samples).all()
        assert "vocoder" in tts.memory().weights
    finally:
        tts.close()


def test_v4_voice_features_round_trip_through_bytes(tts_v4) -> None:
    from fastsovits.voices.features import BadFeatures, reference_from_bytes, reference_to_bytes

    ref = tts_v4.load_reference((_wav(), 32000), "This is the reference.", "en")
    back = reference_from_bytes(reference_to_bytes(ref))
    assert back.in_context is not None and ref.in_context is not None
    assert torch.equal(back.in_context.fea, ref.in_context.fea) and torch.equal(back.in_context.mel, ref.in_context.mel)
    p = SynthesisParams(top_k=1, seed=2, max_new_tokens=10, sample_steps=4)
    a = tts_v4.synthesize("Hello there.", ref, "en", p).samples
    b = tts_v4.synthesize("Hello there.", back, "en", p).samples
    assert a.shape == b.shape and np.abs(a - b).max() < TOL
    from safetensors.torch import load, save

    tensors = load(reference_to_bytes(ref))
    del tensors["in_context_mel"]
    with pytest.raises(BadFeatures, match="half"):
        reference_from_bytes(save(tensors, metadata={"format": "fastsovits-reference/1"}))
