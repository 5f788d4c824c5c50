"""`fastsovits synthesize` writes a WAV; its --help explains the options."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from fastsovits.cli import main
from tests.reference import reference_dir

REF = reference_dir()


def test_help_explains(capsys) -> None:
    try:
        main(["synthesize", "--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    assert "--ref-text" in out and "reference-free" in out and "--seed" in out


def test_writes_wav(tmp_path, capsys) -> None:
    ref = tmp_path / "ref.wav"
    sf.write(ref, np.load(REF / "io/audio_inputs.npz")["wav32k_b"], 32000, subtype="FLOAT")
    out = tmp_path / "new" / "folder" / "out.wav"  # a missing folder is created (before the synthesis)
    code = main(
        [
            "synthesize",
            "Hello world.",
            "--lang",
            "en",
            "--ref",
            str(ref),
            "--ref-text",
            "A reference.",
            "--ref-lang",
            "en",
            "--gpt",
            str(REF / "tiny/tiny_s1_v2.ckpt"),
            "--sovits",
            str(REF / "tiny/tiny_s2_v2.pth"),
            "--hubert",
            str(REF / "tiny/tiny_hubert"),
            "--device",
            "cpu",
            "--seed",
            "3",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    wav, sr = sf.read(out)
    assert sr == 32000 and len(wav) > 0


def test_bad_reference_is_a_typed_error(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav file at all")
    code = main(
        [
            "synthesize",
            "Hi.",
            "--lang",
            "en",
            "--ref",
            str(bad),
            "--gpt",
            str(REF / "tiny/tiny_s1_v2.ckpt"),
            "--sovits",
            str(REF / "tiny/tiny_s2_v2.pth"),
            "--hubert",
            str(REF / "tiny/tiny_hubert"),
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "o.wav"),
        ]
    )
    assert code == 2 and "ReferenceAudioError" in capsys.readouterr().err
