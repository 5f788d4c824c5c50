"""Loading v3/v4 models into ``TTS`` (official folders, official files incl. LoRA + base, converted
folders) and using them from the CLI (``--sample-steps``) and the server (``/tts`` ``sample_steps``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fastsovits.api import TTS
from fastsovits.checkpoints.discovery import BIGVGAN_DIR, OFFICIAL_FILES, VOCODER_FILES
from fastsovits.cli import main
from fastsovits.errors import MissingResource
from fastsovits.params import SynthesisParams
from tests.reference import reference_dir

TINY = reference_dir() / "tiny"
REF_TEXT = "This is the reference."
PARAMS = SynthesisParams(top_k=1, seed=4, max_new_tokens=12, sample_steps=4)


def official_folder(root: Path, version: str) -> Path:
    """The official pretrained_models layout of ``version`` with the tiny files."""
    gpt, sovits, _ = OFFICIAL_FILES[version]
    for rel in (gpt, sovits, VOCODER_FILES[version]):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(TINY / "tiny_s1_v2.ckpt", root / gpt)
    shutil.copy(TINY / "tiny_s2_v4.pth", root / sovits)
    if version == "v4":
        shutil.copy(TINY / "tiny_vocoder_v4.pth", root / VOCODER_FILES["v4"])
    else:
        shutil.copytree(TINY / "tiny_bigvgan_v3", root / BIGVGAN_DIR, dirs_exist_ok=True)
    shutil.copytree(TINY / "tiny_hubert", root / "chinese-hubert-base")
    (root / "chinese-roberta-wwm-ext-large").mkdir()  # English needs no BERT: it is never loaded
    (root / "chinese-roberta-wwm-ext-large/config.json").write_text("{}")
    return root


def _ref_wav(tmp_path: Path) -> Path:
    path = tmp_path / "ref.wav"
    sf.write(path, np.load(reference_dir() / "io/audio_inputs.npz")["wav32k_b"], 32000)
    return path


def _speak(tts: TTS, ref_wav: Path) -> np.ndarray:
    ref = tts.load_reference(ref_wav, REF_TEXT, "en")
    return tts.synthesize("Hello there.", ref, "en", PARAMS).samples


@pytest.mark.parametrize("version,rate", [("v4", 48000), ("v3", 24000)])
def test_official_folder_loads_v3_v4(tmp_path, version: str, rate: int) -> None:
    folder = official_folder(tmp_path / "models", version)
    with TTS.from_pretrained(folder, version=version, num_slots=2, max_len=256) as tts:
        assert tts.version == version and tts.sample_rate == rate and tts.vocoder is not None
        assert _speak(tts, _ref_wav(tmp_path)).size > 0


def test_official_files_lora_over_base_and_missing_parts(tmp_path) -> None:
    ref = _ref_wav(tmp_path)
    common = {"gpt": TINY / "tiny_s1_v2.ckpt", "hubert_dir": TINY / "tiny_hubert", "num_slots": 2, "max_len": 256}
    with TTS.from_pretrained(
        sovits=TINY / "tiny_s2_v4_lora.pth",
        base=TINY / "tiny_s2_v4.pth",
        vocoder=TINY / "tiny_vocoder_v4.pth",
        **common,
    ) as lora:
        assert lora.version == "v4"  # the LoRA file's header tells
        with TTS.from_pretrained(
            sovits=TINY / "tiny_s2_v4.pth", version="v4", vocoder=TINY / "tiny_vocoder_v4.pth", **common
        ) as plain:
            assert np.abs(_speak(lora, ref) - _speak(plain, ref)).max() > 1e-4  # the LoRA changed the model
    with pytest.raises(MissingResource, match="base"):
        TTS.from_pretrained(sovits=TINY / "tiny_s2_v4_lora.pth", vocoder=TINY / "tiny_vocoder_v4.pth", **common)
    with pytest.raises(MissingResource, match="vocoder"):
        TTS.from_pretrained(sovits=TINY / "tiny_s2_v4.pth", version="v4", **common)


def test_converted_folder_speaks_like_the_official_files(tmp_path) -> None:
    from fastsovits.checkpoints.convert import convert

    out = tmp_path / "converted"
    convert(
        out_dir=out,
        gpt=TINY / "tiny_s1_v2.ckpt",
        sovits=TINY / "tiny_s2_v4.pth",
        sovits_version="v4",
        vocoder=TINY / "tiny_vocoder_v4.pth",
        hubert_dir=TINY / "tiny_hubert",
        dtype=None,
    )
    ref = _ref_wav(tmp_path)
    with TTS.from_pretrained(out, num_slots=2, max_len=256) as conv:
        assert conv.version == "v4"
        got = _speak(conv, ref)
    with TTS.from_pretrained(
        gpt=TINY / "tiny_s1_v2.ckpt",
        sovits=TINY / "tiny_s2_v4.pth",
        version="v4",
        vocoder=TINY / "tiny_vocoder_v4.pth",
        hubert_dir=TINY / "tiny_hubert",
        num_slots=2,
        max_len=256,
    ) as official:
        want = _speak(official, ref)
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-4


def test_cli_synthesize_v4_with_sample_steps(tmp_path, capsys) -> None:
    folder = official_folder(tmp_path / "models", "v4")
    ref = _ref_wav(tmp_path)
    outs = []
    for steps in ("4", "8"):
        out = tmp_path / f"out{steps}.wav"
        argv = ["synthesize", "Hello there.", "--lang", "en", "--ref", str(ref), "--ref-text", REF_TEXT]
        argv += ["--ref-lang", "en", "--model", str(folder), "--version", "v4", "--device", "cpu", "--top-k", "1"]
        argv += ["--seed", "1", "--sample-steps", steps, "--out", str(out)]
        assert main(argv) == 0, capsys.readouterr().err
        samples, sr = sf.read(out)
        assert sr == 48000 and samples.size > 0
        outs.append(samples)
    n = min(len(outs[0]), len(outs[1]))
    assert np.abs(outs[0][:n] - outs[1][:n]).max() > 1e-4  # the step count reached the CFM
    assert main(["synthesize", "x", "--lang", "en", "--ref", str(ref), "--model", str(folder), "--version", "v4",
                 "--sample-steps", "0", "--out", str(tmp_path / "bad.wav")]) == 2  # fmt: skip
    assert "--sample-steps" in capsys.readouterr().err


def test_server_tts_takes_sample_steps(tmp_path) -> None:
    import httpx

    from tests.server.conftest import Server, reference_clip, wav_bytes

    folder = official_folder(tmp_path / "models", "v4")
    server = Server(tmp_path, [], tmp_path / "data", model=["--model", str(folder), "--version", "v4"])
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=120) as c:
            voice = c.post(
                "/v1/voices",
                data={"name": "v4voice", "text": REF_TEXT, "language": "en"},
                files={"audio": ("ref.wav", wav_bytes(reference_clip(), 32000), "audio/wav")},
            )
            assert voice.status_code in (200, 201), voice.text
            bodies = []
            for steps in (4, 8):
                body = {"text": "Hello there.", "text_lang": "en", "voice": "v4voice", "top_k": 1, "seed": 1}
                r = c.post("/tts", json={**body, "sample_steps": steps})
                assert r.status_code == 200, r.text
                bodies.append(r.content)
            assert bodies[0] != bodies[1]
            bad = c.post("/tts", json={"text": "Hi.", "text_lang": "en", "voice": "v4voice", "sample_steps": 0})
            assert bad.status_code == 400 and "sample_steps" in bad.text
    finally:
        server.stop()
