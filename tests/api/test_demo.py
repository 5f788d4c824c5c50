"""make demo: real weights are found where users put them and used; otherwise nothing is guessed."""

from __future__ import annotations

import shutil

import numpy as np
import soundfile as sf

from fastsovits import demo
from fastsovits.checkpoints.discovery import OFFICIAL_FILES
from tests.reference import reference_dir

TINY = reference_dir() / "tiny"


def _official_folder(root):
    gpt, sovits, _ = OFFICIAL_FILES["v2"]
    (root / gpt).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(TINY / "tiny_s1_v2.ckpt", root / gpt)
    shutil.copy(TINY / "tiny_s2_v2.pth", root / sovits)
    shutil.copytree(TINY / "tiny_hubert", root / "chinese-hubert-base")
    (root / "chinese-roberta-wwm-ext-large").mkdir()  # English needs no BERT: it is never loaded
    (root / "chinese-roberta-wwm-ext-large/config.json").write_text("{}")
    return root


def test_find_pretrained(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FASTSOVITS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FASTSOVITS_MODELS", str(tmp_path / "nothing-here"))
    assert demo.find_pretrained() is None
    folder = _official_folder(tmp_path / "models")
    monkeypatch.setenv("FASTSOVITS_MODELS", str(folder))
    assert demo.find_pretrained() == (folder, "v2")


def test_pretrained_demo_writes_a_sample(tmp_path, monkeypatch) -> None:
    folder = _official_folder(tmp_path / "models")
    wav = np.load(reference_dir() / "io/audio_inputs.npz")["wav32k_b"]
    sf.write(tmp_path / "ref.wav", wav, 32000)
    monkeypatch.setenv("FASTSOVITS_DEMO_REF", str(tmp_path / "ref.wav"))
    monkeypatch.setenv("FASTSOVITS_DEMO_REF_TEXT", "This is the reference.")
    assert demo.run_pretrained_demo(folder, "v2", out_dir=str(tmp_path / "out")) == 0
    audio, sr = sf.read(tmp_path / "out/sample.wav")
    assert sr == 32000 and len(audio) > sr // 2


def test_demo_texts_avoid_the_documented_quirks() -> None:
    """The demo shows the frontend at its best: none of the official quirks kept for parity
    (docs/text_frontend.md lists them) appears in its sentences."""
    import re
    from pathlib import Path

    from fastsovits.text import phonemize

    doc = (Path(__file__).resolve().parents[2] / "docs/text_frontend.md").read_text("utf-8")
    section = doc.split("## Official quirks kept for parity", 1)[1].split("\n## ", 1)[0]
    quirks = [m.group(1).rstrip("…") for m in re.finditer(r"^\| `([^`]+)`", section, re.MULTILINE)]
    assert len(quirks) >= 4, quirks
    for _, _, text in demo.DEMO_TEXTS:
        for quirk in quirks:
            assert quirk not in text, (quirk, text)
    for lang, version, text in demo.DEMO_TEXTS:
        p = phonemize(text, lang, version)
        assert " a.m. a.m." not in p.norm_text
        if lang == "auto":  # every run detected as the language it is written in
            assert [s.lang for s in p.segments] == ["zh", "en"], p.segments
