"""How each sentence ended reaches the user: API results, stream chunks, the batch manifest, the server.

Two tiny GPTs made to behave on purpose: one whose EOS row of the output head is zeroed (its EOS logit is
0 while the best token's is positive, so every sentence runs to its token cap), one whose EOS logit is
forced high (every sentence ends by EOS as soon as EOS is allowed).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fastsovits.api import TTS
from fastsovits.checkpoints.gpt import load_gpt
from fastsovits.checkpoints.sovits import load_sovits
from fastsovits.engine.sampling import EOS_BAN_STEPS
from fastsovits.params import SynthesisParams
from fastsovits.results import StopReason
from tests.reference import reference_dir

REF = reference_dir()
CAP = 15
PARAMS = SynthesisParams(
    top_k=1,
    repetition_penalty=1.0,
    seed=3,
    noise_scale=0.0,
    max_new_tokens=CAP,
    text_split_method="cut5",
    fragment_interval=0.0,
)
TEXT = "First sentence here. And a second one."


def _tts(kind: str) -> TTS:
    t2s, _, _ = load_gpt(REF / "tiny/tiny_s1_v2.ckpt")
    synth, _, _ = load_sovits(REF / "tiny/tiny_s2_v2.pth")
    eos = t2s.config.eos
    with torch.no_grad():
        if kind == "never_eos":
            t2s.head.weight[eos].zero_()
        else:  # always_eos: the EOS logit far above every other once EOS is allowed
            t2s.head.register_forward_hook(lambda _m, _i, out: out.index_fill(-1, torch.tensor([eos]), 1e4))
    return TTS(t2s, synth, version="v2", hubert_dir=REF / "tiny/tiny_hubert", num_slots=4, max_len=256)


@pytest.fixture(scope="module", params=["never_eos", "always_eos"])
def case(request):
    tts = _tts(request.param)
    wav = np.load(REF / "io/audio_inputs.npz")["wav32k_b"]
    voice = tts.load_reference((wav, 32000), "This is the reference.", "en")
    expected = StopReason.MAX_TOKENS if request.param == "never_eos" else StopReason.EOS
    yield tts, voice, expected
    tts.close()


def test_result_says_how_each_sentence_ended(case) -> None:
    tts, voice, expected = case
    result = tts.synthesize(TEXT, voice, "en", PARAMS)
    assert [s.index for s in result.sentences] == [0, 1]
    assert [s.text for s in result.sentences] == ["First sentence here.", "And a second one."]
    assert all(s.stop_reason is expected for s in result.sentences)
    tokens = CAP if expected is StopReason.MAX_TOKENS else EOS_BAN_STEPS
    assert all(s.tokens == tokens and s.phones > 0 and s.audio_seconds > 0 for s in result.sentences)
    assert result.capped == ([0, 1] if expected is StopReason.MAX_TOKENS else [])
    assert tts.stats().stop_reasons.get(expected.value, 0) >= 2


def test_stream_chunks_carry_each_sentence_outcome(case) -> None:
    tts, voice, expected = case
    chunks = list(tts.stream(TEXT, voice, "en", PARAMS))
    ends = [c.sentence for c in chunks if c.sentence is not None]
    assert [s.index for s in ends] == [0, 1] and all(s.stop_reason is expected for s in ends)


def test_batch_manifest_reports_capped_sentences(case, tmp_path) -> None:
    from fastsovits.batch import BatchItem, run_batch

    tts, voice, expected = case
    items = [BatchItem("a", TEXT), BatchItem("b", "Only one sentence.")]
    stats = run_batch(tts, items, tmp_path, default_ref=voice, lang="en", params=PARAMS, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert {r["id"] for r in lines} == {"a", "b"} and all(r["status"] == "ok" for r in lines)
    for r in lines:
        assert all(s["stop_reason"] == expected.value for s in r["sentences"])
        assert r["capped"] == ([s["index"] for s in r["sentences"]] if expected is StopReason.MAX_TOKENS else [])
    assert stats["capped_sentences"] == (3 if expected is StopReason.MAX_TOKENS else 0)


def test_server_reports_stop_reasons(case) -> None:
    from fastapi.testclient import TestClient

    from fastsovits.server.app import create_app
    from fastsovits.server.config import ModelSpec, ServerConfig
    from fastsovits.server.models import ModelRegistry, Resident
    from fastsovits.server.voices import Voice, VoiceRegistry
    from tests.server.conftest import reference_clip, wav_bytes

    tts, _, expected = case

    class OneModel(ModelRegistry):  # serves the prepared engine instead of loading files
        def _load(self, spec: ModelSpec) -> Resident:
            if self.on_load is not None:
                self.on_load(tts)
            return Resident(spec, tts, tts.memory().total)

        async def close(self) -> None:  # the module fixture closes the engine
            self.resident.clear()

    config = ServerConfig(max_new_tokens=CAP)
    voices = VoiceRegistry()
    voices.add(Voice("ref", wav_bytes(reference_clip(), 32000), "This is the reference.", "en"))
    app = create_app(OneModel(ModelSpec("default"), config), config, voices)
    body = {"text": TEXT, "text_lang": "en", "voice": "ref", "top_k": 1, "seed": 3, "text_split_method": "cut5"}
    with TestClient(app) as client:
        r = client.post("/tts", json=body)
        assert r.status_code == 200, r.text
        assert r.headers["X-Stop-Reasons"] == f"{expected.value},{expected.value}"
        assert r.headers["X-Capped-Sentences"] == ("0,1" if expected is StopReason.MAX_TOKENS else "")
        speech = {
            "model": "tts-1",
            "voice": "ref",
            "input": TEXT,
            "response_format": "pcm",
            "stream_format": "sse",
            "top_k": 1,
            "seed": 3,
            "text_split_method": "cut5",
        }
        r = client.post("/v1/audio/speech", json=speech)
        assert r.status_code == 200, r.text
        events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
        done = events[-1]
        assert done["type"] == "speech.audio.done"
        assert [s["stop_reason"] for s in done["sentences"]] == [expected.value] * 2
        assert done["capped"] == ([0, 1] if expected is StopReason.MAX_TOKENS else [])
        metrics = client.get("/metrics").text
        line = f'fastsovits_sentences_by_stop_reason_total{{model="default",reason="{expected.value}"}}'
        assert line in metrics and float(metrics.split(line)[1].split()[0]) >= 4
