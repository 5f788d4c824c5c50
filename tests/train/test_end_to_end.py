"""End to end: espeak-ng corpus -> prepare -> train GPT (CLI) and SoVITS -> export -> the engine synthesizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastsovits.audio.io import load_audio
from fastsovits.params import SynthesisParams
from fastsovits.train.config import SovitsTrainConfig
from fastsovits.train.prepare import PrepareConfig, prepare
from fastsovits.train.sovits import train_sovits
from tests.reference import reference_dir
from tests.train.corpus import corpus  # noqa: F401  (the session fixture)

TINY = reference_dir() / "tiny"
N_ITEMS = 12  # 6 per voice


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("e2e")
    per_voice = N_ITEMS // 2
    items = [it for sp in ("speaker_m", "speaker_f") for it in [i for i in corpus.items if i.speaker == sp][:per_voice]]
    list_path = root / "few.list"
    list_path.write_text("".join(it.to_line() + "\n" for it in items), encoding="utf-8")
    exp = root / "logs" / "voice"
    report = prepare(
        PrepareConfig(
            list_path=list_path,
            exp_dir=exp,
            hubert_dir=TINY / "tiny_hubert",
            sovits_path=TINY / "tiny_s2_v2.pth",
            version="v2",
            progress=False,
        )
    )
    assert report.ok == N_ITEMS, report.failed
    return root, exp, items


def test_prepare_train_export_synthesize(prepared, capsys) -> None:
    from fastsovits.api import TTS
    from fastsovits.cli import main

    root, exp, items = prepared
    overrides = root / "gpt.yaml"
    overrides.write_text("min_items: 0\nbatch_size: 4\nlr: 0.01\nwarmup_steps: 2\nseed: 3\n")
    rc = main(
        [
            "train",
            "gpt",
            "--exp-dir",
            str(exp),
            "--pretrained",
            str(TINY / "tiny_s1_v2.ckpt"),
            "--config",
            str(overrides),
            "--epochs",
            "4",
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 12 and summary["exported"][-1].endswith("voice-e4.ckpt")
    log = [json.loads(line) for line in (exp / "logs_s1_v2" / "train_log.jsonl").read_text().splitlines()]
    ce = [r["loss/ce"] for r in log]
    assert sum(ce[-3:]) / 3 < 0.85 * sum(ce[:3]) / 3, ce

    cfg = SovitsTrainConfig(
        epochs=2,
        min_items=0,
        batch_size=6,
        lr=3e-4,
        segment_frames=8,
        progress=False,
        device="cpu",
        disc_channels=(4, 8, 16, 16, 16),
        disc_scale_channels=(4, 8, 16, 16, 16, 16),
    )
    result = train_sovits(exp, TINY / "tiny_s2_v2.pth", cfg)
    assert result.steps == 4 and result.run_dir == exp / "logs_s2_v2"
    mel = [h["loss/mel"] for h in result.history]
    assert mel[-1] < mel[0], mel

    tts = TTS.from_pretrained(
        gpt=summary["exported"][-1],
        sovits=result.exported[-1],
        hubert_dir=TINY / "tiny_hubert",
        device="cpu",
        num_slots=2,
        max_len=384,
    )
    try:
        a, _ = load_audio(items[0].wav_path, 32000)
        b, _ = load_audio(items[1].wav_path, 32000)
        ref = np.concatenate([a, b, a])[: 32000 * 4]
        assert len(ref) > 32000 * 3
        voice = tts.load_reference((ref, 32000), items[0].text, "en")
        params = SynthesisParams(top_k=1, repetition_penalty=1.0, seed=1, noise_scale=0.0, max_new_tokens=40)
        audio = tts.synthesize("Hello there, this is a fine-tuned voice.", voice, "en", params)
    finally:
        tts.close()
    assert audio.sample_rate == 32000 and audio.duration > 0.1
    assert np.isfinite(audio.samples).all() and np.abs(audio.samples).max() > 0
