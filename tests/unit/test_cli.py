"""CLI commands for checkpoints: detect and convert."""

from __future__ import annotations

import json

from fastsovits.cli import main
from tests.reference import reference_dir

TINY = reference_dir() / "tiny"


def test_detect(capsys) -> None:
    assert main(["detect", str(TINY / "tiny_s2_v2ProPlus.pth")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model_version"] == "v2ProPlus" and out["symbol_version"] == "v2"


def test_convert_then_load(tmp_path, capsys) -> None:
    from fastsovits.checkpoints.convert import load_converted

    assert main(["convert", "--gpt", str(TINY / "tiny_s1_v1.ckpt"), "--sovits", str(TINY / "tiny_s2_v1.pth"),
                 "--out", str(tmp_path / "m")]) == 0
    loaded = load_converted(tmp_path / "m")
    assert loaded.t2s_config.phoneme_vocab_size == 512 and loaded.sovits_config.version == "v1"


def test_convert_wrong_kind_is_an_error(tmp_path, capsys) -> None:
    code = main(["convert", "--gpt", str(TINY / "tiny_s2_v2.pth"), "--out", str(tmp_path / "m")])
    assert code == 2
    assert "CheckpointError" in capsys.readouterr().err
