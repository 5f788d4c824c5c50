"""The sentence guard: too short, looping and runaway sentences are detected and generated again."""

from __future__ import annotations

import numpy as np
import pytest

from fastsovits.api import TTS
from fastsovits.checkpoints.gpt import load_gpt
from fastsovits.checkpoints.sovits import load_sovits
from fastsovits.engine.guard import GuardReason, GuardSpec, has_loop, retry_seed, voice_rate
from fastsovits.params import SynthesisParams
from fastsovits.text import phonemize
from tests.misbehave import Misbehave, Mode, first_token_plan
from tests.reference import reference_dir

REF = reference_dir()
REF_TEXT = "This is the reference."
SAMPLED = SynthesisParams(top_k=15, seed=11, noise_scale=0.0, text_split_method="cut5", fragment_interval=0.0)
NORMAL = ["A short normal sentence.", "Another one that behaves."]
BAD = "This particular sentence is the one that will misbehave today."


def test_guard_rules() -> None:
    g = GuardSpec(tokens_per_phone=3.0, min_ratio=0.3, max_ratio=3.0, loop_share=0.6)
    assert g.check(list(range(30)), 10) is None
    assert g.check(list(range(5)), 10) is GuardReason.TOO_SHORT  # 5 < 0.3 * 3 * 10
    assert g.check(list(range(5)), 3) is None  # too few phones to judge
    assert g.check(list(range(g.token_limit(10))), 10) is GuardReason.TOO_LONG
    loop = list(range(20)) + [7, 8, 9] * 10
    assert has_loop(loop, 0.6) and g.check(loop, 20) is GuardReason.LOOP
    assert not has_loop(list(range(200)), 0.6)
    assert g.check(list(range(30)), 10, filled_cache=True) is GuardReason.TOO_LONG
    short, long_ = GuardReason.TOO_SHORT, GuardReason.TOO_LONG
    assert (
        g.badness(list(range(30)), 10, None)
        == 0
        < g.badness(list(range(8)), 10, short)
        < g.badness(loop, 20, g.check(loop, 20))
    )
    assert g.badness(loop, 20, GuardReason.LOOP) < g.badness(list(range(400)), 10, long_)
    assert retry_seed(5, 2) == retry_seed(retry_seed(5, 1), 1) != retry_seed(5, 1) != 5
    assert voice_rate(78, 26) == 3.0 and voice_rate(0, 0) > 0


def _tts() -> TTS:
    t2s, _, _ = load_gpt(REF / "tiny/tiny_s1_v2.ckpt")
    synth, _, _ = load_sovits(REF / "tiny/tiny_s2_v2.pth")
    return TTS(t2s, synth, version="v2", hubert_dir=REF / "tiny/tiny_hubert", num_slots=4, max_len=1200)


@pytest.fixture(scope="module")
def setup():
    tts = _tts()
    wav = np.load(REF / "io/audio_inputs.npz")["wav32k_b"]
    voice = tts.load_reference((wav, 32000), REF_TEXT, "en")
    n_prompt, n_tokens = int(voice.prompt_phones.numel()), int(voice.prompt_semantic.numel())
    rate = voice_rate(n_tokens, n_prompt)
    bad_len = n_prompt + len(phonemize(BAD, "en", "v2").phone_ids)
    modes: dict[int, Mode] = {}
    wrapper = Misbehave(tts.t2s, n_prompt, n_tokens, rate, lambda text_len, first: modes.get(text_len, Mode.NORMAL))
    yield tts, voice, modes, bad_len, wrapper
    tts.close()


def _run(tts, voice, texts, params=SAMPLED):
    handles = [tts.submit(t, voice, "en", params.with_(seed=params.seed + 100 * i)) for i, t in enumerate(texts)]
    return [h.result(timeout=300) for h in handles]


@pytest.mark.parametrize("mode,reason", [(Mode.SHORT, "too_short"), (Mode.LOOP, "loop"), (Mode.RUNAWAY, "too_long")])
def test_guard_detects_and_retries_without_disturbing_other_rows(setup, mode, reason) -> None:
    tts, voice, modes, bad_len, _ = setup
    modes.clear()
    alone = _run(tts, voice, NORMAL)
    modes[bad_len] = mode  # this sentence misbehaves whatever its seed
    before = tts.stats().guard_retries.get(reason, 0)
    results = _run(tts, voice, [*NORMAL, BAD])
    bad = results[2].sentences[0]
    assert bad.retries == (reason, reason) and bad.attempts == 3 and bad.guard == reason  # kept the best it had
    assert tts.stats().guard_retries.get(reason, 0) - before == 2
    for a, b in zip(alone, results[:2]):  # the other seeded rows are exactly what they were without it
        assert [s.tokens for s in a.sentences] == [s.tokens for s in b.sentences]
        assert all(s.retries == () and s.guard is None for s in b.sentences)
        assert np.array_equal(a.samples, b.samples)
    if mode is Mode.RUNAWAY:  # stopped at the guard's cap, far below the 1500-token cap
        assert bad.tokens < 1500 and bad.stop_reason == "max_tokens"


def test_guard_retry_fixes_seed_dependent_failures(setup) -> None:
    tts, voice, modes, bad_len, wrapper = setup
    modes.clear()
    plan = first_token_plan(Mode.SHORT, 0.5, {bad_len})
    wrapper.plan = plan
    try:
        results = _run(tts, voice, [BAD] * 6, SAMPLED.with_(max_retries=4))
    finally:
        wrapper.plan = lambda text_len, first: modes.get(text_len, Mode.NORMAL)
    sentences = [r.sentences[0] for r in results]
    assert any(s.retries for s in sentences), "no first attempt failed: the plan did not bite"
    assert all(s.guard is None for s in sentences if len(s.retries) < 4)  # a retry that behaved was kept
    assert sum(s.guard is None for s in sentences) >= 5


def test_guard_off_and_greedy_rows_are_not_retried(setup) -> None:
    tts, voice, modes, bad_len, _ = setup
    modes.clear()
    modes[bad_len] = Mode.SHORT
    off = _run(tts, voice, [BAD], SAMPLED.with_(guard=False))[0].sentences[0]
    assert off.retries == () and off.guard is None and off.stop_reason == "eos"
    greedy = _run(tts, voice, [BAD], SAMPLED.with_(top_k=1))[0].sentences[0]
    assert greedy.retries == () and greedy.guard == "too_short"  # judged and reported, not retried


def test_guard_reported_by_server_batch_and_metrics(setup, tmp_path) -> None:
    import json

    from fastapi.testclient import TestClient

    from fastsovits.batch import BatchItem, run_batch
    from fastsovits.server.app import create_app
    from fastsovits.server.config import ModelSpec, ServerConfig
    from fastsovits.server.models import ModelRegistry, Resident
    from fastsovits.server.voices import Voice, VoiceRegistry
    from tests.server.conftest import reference_clip, wav_bytes

    tts, voice, modes, bad_len, _ = setup
    modes.clear()
    modes[bad_len] = Mode.SHORT
    run_batch(
        tts,
        [BatchItem("bad", BAD), BatchItem("ok", NORMAL[0])],
        tmp_path,
        default_ref=voice,
        lang="en",
        params=SAMPLED.with_(max_retries=1),
        progress=False,
    )
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "manifest.jsonl").read_text().splitlines())}
    assert rows["bad"]["sentences"][0]["retries"] == ["too_short"] and rows["bad"]["sentences"][0]["attempts"] == 2
    assert rows["ok"]["sentences"][0]["retries"] == [] and rows["ok"]["sentences"][0]["guard"] is None

    class OneModel(ModelRegistry):
        def _load(self, spec: ModelSpec) -> Resident:
            if self.on_load is not None:
                self.on_load(tts)
            return Resident(spec, tts, tts.memory().total)

        async def close(self) -> None:
            self.resident.clear()

    config = ServerConfig()
    voices = VoiceRegistry()
    voices.add(Voice("ref", wav_bytes(reference_clip(), 32000), REF_TEXT, "en"))
    app = create_app(OneModel(ModelSpec("default"), config), config, voices)
    with TestClient(app) as client:
        body = {"text": BAD, "text_lang": "en", "voice": "ref", "top_k": 15, "seed": 5, "max_retries": 1}
        r = client.post("/tts", json=body)
        assert r.status_code == 200, r.text
        summary = json.loads(r.headers["X-Guard-Summary"])
        assert summary["retries"] == 1 and summary["retried"] == {"0": ["too_short"]}
        assert summary["unresolved"] == {"0": "too_short"}
        r = client.post("/tts", json={**body, "guard": False})
        assert json.loads(r.headers["X-Guard-Summary"])["retries"] == 0
        metrics = client.get("/metrics").text
        line = 'fastsovits_guard_retries_total{model="default",reason="too_short"}'
        assert line in metrics and float(metrics.split(line)[1].split()[0]) >= 1
