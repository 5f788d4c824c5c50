"""CLI commands for checkpoints: detect and convert."""

from __future__ import annotations

import json
import re

import pytest

from fastsovits.cli import main
from tests.reference import reference_dir

TINY = reference_dir() / "tiny"


def test_detect(capsys) -> None:
    assert main(["detect", str(TINY / "tiny_s2_v2ProPlus.pth")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model_version"] == "v2ProPlus" and out["symbol_version"] == "v2"


def test_convert_then_load(tmp_path, capsys) -> None:
    from fastsovits.checkpoints.convert import load_converted

    assert (
        main(
            [
                "convert",
                "--gpt",
                str(TINY / "tiny_s1_v1.ckpt"),
                "--sovits",
                str(TINY / "tiny_s2_v1.pth"),
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    loaded = load_converted(tmp_path / "m")
    assert loaded.t2s_config.phoneme_vocab_size == 512 and loaded.sovits_config.version == "v1"


def test_convert_wrong_kind_is_an_error(tmp_path, capsys) -> None:
    code = main(["convert", "--gpt", str(TINY / "tiny_s2_v2.pth"), "--out", str(tmp_path / "m")])
    assert code == 2
    assert "CheckpointError" in capsys.readouterr().err


def _all_parsers():
    import argparse

    from fastsovits.cli import build_parser

    todo, seen = [build_parser()], []
    while todo:
        p = todo.pop()
        seen.append(p)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(sp for sp in set(action.choices.values()) if sp not in seen)
    return seen


def test_every_option_has_help_and_shows_its_default() -> None:
    import argparse

    for parser in _all_parsers():
        assert parser.description, parser.prog
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help, f"{parser.prog} {name} has no help text"
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                shown = parser._get_formatter()._expand_help(action)  # the help text as --help prints it
                assert str(action.default) in shown, f"{parser.prog} {name}: default hidden in {shown!r}"


def test_version_flag(capsys) -> None:
    from fastsovits import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and __version__ in capsys.readouterr().out


def test_synthesis_params_come_from_what_the_user_gave() -> None:
    from fastsovits.cli import build_parser, synthesis_params
    from fastsovits.params import SynthesisParams

    base = ["synthesize", "hi", "--lang", "en", "--ref", "r.wav"]
    assert synthesis_params(build_parser().parse_args(base)) == SynthesisParams()
    got = synthesis_params(build_parser().parse_args([*base, "--top-k", "5", "--speed", "1.5", "--split", "cut5"]))
    assert got == SynthesisParams(top_k=5, speed_factor=1.5, text_split_method="cut5")


@pytest.mark.parametrize(
    "args,flag,python_name",
    [
        (["--top-k", "0"], "--top-k", "top_k="),
        (["--speed", "9"], "--speed", "speed_factor="),
        (["--fragment-interval", "99"], "--fragment-interval", "fragment_interval="),
    ],
)
def test_errors_name_cli_flags(tmp_path, capsys, args, flag, python_name) -> None:
    code = main(["synthesize", "hi", "--lang", "en", "--ref", str(tmp_path / "r.wav"), *args])
    err = capsys.readouterr().err
    assert code == 2 and flag in err and python_name not in err, err


def test_library_messages_are_translated_to_flags() -> None:
    from fastsovits.cli import cli_message

    msg = cli_message("reference audio needs the chinese-hubert-base folder (hubert_dir=); give gpt= or sv=")
    assert msg == "reference audio needs the chinese-hubert-base folder (--hubert ); give --gpt  or --sv "
    assert cli_message("top_k=0: must be an int") == "--top-k 0: must be an int"


def test_missing_model_and_paths_name_flags(tmp_path, capsys) -> None:
    ref = ["synthesize", "hi", "--lang", "en", "--ref", str(tmp_path / "r.wav")]
    assert main(ref) == 2
    assert "--model" in (err := capsys.readouterr().err) and "--gpt" in err and "gpt=" not in err
    assert (
        main(
            [
                *ref,
                "--gpt",
                str(TINY / "tiny_s1_v2.ckpt"),
                "--sovits",
                str(TINY / "tiny_s2_v2.pth"),
                "--hubert",
                str(tmp_path / "nowhere"),
            ]
        )
        == 2
    )
    assert "--hubert" in (err := capsys.readouterr().err) and "not found" in err
    assert main(["convert", "--out", str(tmp_path / "m")]) == 2
    assert "--gpt" in (err := capsys.readouterr().err) and "gpt=" not in err


def test_outputs_are_checked_before_any_model_loads(tmp_path, capsys, monkeypatch) -> None:
    import fastsovits.api

    def never(*a, **k):
        raise AssertionError("models loaded before the output was checked")

    monkeypatch.setattr(fastsovits.api.TTS, "from_pretrained", never)
    ref = tmp_path / "r.wav"
    ref.write_bytes(b"x")
    model = ["--gpt", str(TINY / "tiny_s1_v2.ckpt"), "--sovits", str(TINY / "tiny_s2_v2.pth")]
    assert main(["synthesize", "hi", "--lang", "en", "--ref", str(ref), *model, "--out", str(tmp_path / "o.xyz")]) == 2
    assert "--out" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert (
        main(["synthesize", "hi", "--lang", "en", "--ref", str(ref), *model, "--out", str(blocker / "sub/o.wav")]) == 2
    )  # its folder cannot be created
    assert "--out" in capsys.readouterr().err
    assert main(["synthesize", "hi", "--lang", "en", "--ref", str(tmp_path / "missing.wav"), *model]) == 2
    assert "not found" in capsys.readouterr().err


FIGURE = re.compile(r"\d(\.\d+)?\s*[x×]\s*(faster|slower)|(about|~)\s*\d+(\.\d+)?\s*[x×]", re.IGNORECASE)


def test_help_texts_and_logs_state_no_measured_figures() -> None:
    """Measured figures live in docs/ and benchmarks/ (with their command), not in help texts or log strings."""
    from pathlib import Path

    for parser in _all_parsers():
        assert not FIGURE.search(parser.format_help()), parser.prog
    src = Path(__file__).resolve().parents[2] / "src/fastsovits"
    for name in ("api.py", "cli.py", "cli_common.py", "cli_synthesis.py", "cli_serve.py", "demo.py"):
        text = (src / name).read_text("utf-8")
        assert not FIGURE.search(text), (name, FIGURE.search(text))
