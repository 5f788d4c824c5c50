"""The engine thread: jobs share batches, results equal per-sentence runs, errors stay per job."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastsovits.checkpoints.gpt import load_gpt
from fastsovits.checkpoints.sovits import load_sovits
from fastsovits.engine.decode_runner import DecodeItem, DecodeRunner
from fastsovits.engine.engine import Engine
from fastsovits.engine.jobs import DecodeInputs, SentenceJob, SynthesisJob
from fastsovits.engine.reference_loop import generate
from fastsovits.engine.sampling import GREEDY
from fastsovits.engine.t2s_inputs import T2SRow
from fastsovits.errors import Cancelled, InvalidInput
from tests.reference import reference_dir

TINY = reference_dir() / "tiny"


@pytest.fixture(scope="module")
def models():
    t2s, _, _ = load_gpt(TINY / "tiny_s1_v2.ckpt")
    synth, _, _ = load_sovits(TINY / "tiny_s2_v2.pth")
    with torch.no_grad():
        ge = synth.style([torch.rand(1, 1025, 50, generator=torch.Generator().manual_seed(0))])
    return t2s, synth, ge


def _sentences(ge, n, seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        n_target = int(torch.randint(4, 15, (1,), generator=g))
        phones = torch.randint(0, 700, (6 + n_target,), generator=g)
        row = T2SRow(phones, torch.randn(1024, phones.numel(), generator=g), torch.randint(0, 1024, (10,), generator=g))
        out.append(SentenceJob(row, DecodeInputs(phones[6:], ge, noise_scale=0.0), GREEDY, max_new_tokens=30))
    return out


def test_jobs_share_batches_and_match_single_runs(models) -> None:
    t2s, synth, ge = models
    jobs = [SynthesisJob(_sentences(ge, n, seed)) for n, seed in ((2, 1), (2, 2), (1, 3))]
    with Engine(t2s, synth, num_slots=3, max_len=128) as engine:
        handles = [engine.submit(j) for j in jobs]
        results = [h.result(timeout=120) for h in handles]
    assert engine.stats().max_batch_rows == 3  # sentences of different jobs decoded together
    for job, handle, audios in zip(jobs, handles, results):
        for i, (s, audio) in enumerate(zip(job.sentences, audios)):
            alone = generate(t2s, [s.t2s], GREEDY, early_stop_num=29)[0]
            assert handle.tokens[i] == alone.tokens
            ref = DecodeRunner(synth).decode([DecodeItem(torch.tensor(alone.tokens), s.decode)])[0]
            assert audio.shape == ref.shape and float(np.abs(audio - ref).max()) <= 1e-4


def test_streaming_order(models) -> None:
    t2s, synth, ge = models
    job = SynthesisJob(_sentences(ge, 3, 5))
    with Engine(t2s, synth, num_slots=2, max_len=128) as engine:
        chunks = list(engine.submit(job))
        again = engine.submit(SynthesisJob(job.sentences)).result(timeout=120)
    assert len(chunks) == 3
    for a, b in zip(chunks, again):  # decode groups depend on timing: float rounding only
        assert a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-5


def test_bad_job_does_not_stop_others(models) -> None:
    t2s, synth, ge = models
    good = SynthesisJob(_sentences(ge, 1, 7))
    phones = torch.zeros(200, dtype=torch.long)
    bad = SynthesisJob([SentenceJob(T2SRow(phones, torch.zeros(1024, 200)), DecodeInputs(phones, ge))])
    with Engine(t2s, synth, num_slots=2, max_len=128) as engine:
        hb, hg = engine.submit(bad), engine.submit(good)
        with pytest.raises(InvalidInput):
            hb.result(timeout=60)
        assert len(hg.result(timeout=120)) == 1


def test_cancel_and_close(models) -> None:
    t2s, synth, ge = models
    engine = Engine(t2s, synth, num_slots=1, max_len=128).start()
    first = engine.submit(SynthesisJob(_sentences(ge, 3, 9)))
    first.cancel()
    with pytest.raises(Cancelled):
        first.result(timeout=60)
    second = engine.submit(SynthesisJob(_sentences(ge, 1, 10)))
    assert len(second.result(timeout=120)) == 1
    engine.close()


def test_out_of_memory_backoff_loses_nothing(models, monkeypatch) -> None:
    t2s, synth, ge = models
    calls = {"n": 0}
    real = t2s.prefill

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("simulated")
        return real(*a, **k)

    monkeypatch.setattr(t2s, "prefill", flaky)
    job = SynthesisJob(_sentences(ge, 3, 11))
    with Engine(t2s, synth, num_slots=3, max_len=128, prefill_token_budget=1000) as engine:
        audios = engine.submit(job).result(timeout=120)
        assert engine.scheduler.prefill_budget == 500
    monkeypatch.setattr(t2s, "prefill", real)
    for s, audio in zip(job.sentences, audios):
        alone = generate(t2s, [s.t2s], GREEDY, early_stop_num=29)[0]
        ref = DecodeRunner(synth).decode([DecodeItem(torch.tensor(alone.tokens), s.decode)])[0]
        assert float(np.abs(audio - ref).max()) <= 1e-4


def test_row_that_never_fits_fails_only_its_job(models, monkeypatch) -> None:
    from fastsovits.errors import CapacityError

    t2s, synth, ge = models
    real = t2s.prefill
    big = _sentences(ge, 1, 12)
    size = int(big[0].t2s.phones.numel())

    def picky(phones, *a, **k):
        if phones.shape[1] == size:
            raise torch.OutOfMemoryError("simulated")
        return real(phones, *a, **k)

    monkeypatch.setattr(t2s, "prefill", picky)
    others = [s for s in _sentences(ge, 4, 13) if int(s.t2s.phones.numel()) != size][:1]
    with Engine(t2s, synth, num_slots=1, max_len=128, prefill_token_budget=4) as engine:
        hb, ho = engine.submit(SynthesisJob(big)), engine.submit(SynthesisJob(others))
        with pytest.raises(CapacityError):
            hb.result(timeout=60)
        assert len(ho.result(timeout=60)) == 1


@pytest.mark.parametrize("exclusive", [True, False])
def test_cpu_stages_take_turns_through_the_gate(models, exclusive) -> None:
    """With the gate on (the CPU default) a T2S step never runs while a decode runs; off, they may overlap."""
    import threading
    import time

    t2s, synth, ge = models
    spans: dict[str, list[tuple[float, float]]] = {"t2s": [], "decode": []}
    lock = threading.Lock()

    def timed(name, fn, pause):
        def run(*a, **k):
            t0 = time.perf_counter()
            out = fn(*a, **k)
            time.sleep(pause)  # widen the window in which an overlap would show
            with lock:
                spans[name].append((t0, time.perf_counter()))
            return out

        return run

    jobs = [SynthesisJob(_sentences(ge, 3, seed)) for seed in (11, 12)]
    with Engine(t2s, synth, num_slots=2, max_len=128, exclusive_compute=exclusive) as engine:
        assert engine.gate.enabled is exclusive
        engine.t2s.step = timed("t2s", engine.t2s.step, 0.002)
        engine.decoder.decode = timed("decode", engine.decoder.decode, 0.05)
        for h in [engine.submit(j) for j in jobs]:
            h.result(timeout=120)
    overlaps = sum(1 for a0, a1 in spans["t2s"] for b0, b1 in spans["decode"] if a0 < b1 and b0 < a1)
    assert spans["t2s"] and spans["decode"]
    if exclusive:
        assert overlaps == 0
    else:
        assert overlaps > 0


def test_waiting_for_a_job_on_the_compute_thread_is_refused_not_a_deadlock(models) -> None:
    t2s, synth, ge = models
    with Engine(t2s, synth, num_slots=2, max_len=128, exclusive_compute=True) as engine:
        handle = engine.submit(SynthesisJob(_sentences(ge, 1, 5)))
        with pytest.raises(RuntimeError, match="deadlock"):
            engine.gate.run(handle.result, 30)
        assert len(handle.result(timeout=120)) == 1  # the job itself is fine
