"""`fastsovits info` and the weights downloader (exercised with a local folder: no network)."""

from __future__ import annotations

import json
import shutil

import pytest

from fastsovits.checkpoints import download as dl
from fastsovits.checkpoints.discovery import BERT, HUBERT, OFFICIAL_FILES, SV
from fastsovits.cli import main
from fastsovits.errors import CheckpointError, MissingResource
from tests.reference import reference_dir

TINY = reference_dir() / "tiny"


def test_info_kinds(tmp_path, capsys) -> None:
    assert main(["info", str(TINY / "tiny_s2_v2ProPlus.pth")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "SoVITS" and out["version"] == "v2ProPlus" and "yue" in out["languages"]
    assert main(["info", str(TINY / "tiny_s1_v1.ckpt")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "GPT" and out["phoneme_vocab"] == 512 and "ko" not in out["languages"]
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"garbage")
    from fastsovits.checkpoints.info import describe

    with pytest.raises(CheckpointError):
        describe(junk)


def _fake_hub(root, version: str) -> None:
    gpt, sovits, needs_sv = OFFICIAL_FILES[version]
    for rel in (gpt, sovits, f"{HUBERT}/config.json", f"{BERT}/config.json") + ((SV,) if needs_sv else ()):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")


def test_download_uses_the_hub_layout(tmp_path, monkeypatch) -> None:
    hub = tmp_path / "hub"
    _fake_hub(hub, "v2ProPlus")
    seen = {}

    def fake_snapshot_download(repo_id, revision, allow_patterns, local_dir):
        import fnmatch

        seen["repo"], seen["patterns"] = repo_id, allow_patterns
        for f in hub.rglob("*"):
            rel = f.relative_to(hub).as_posix()
            if f.is_file() and any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                (tmp_path / "out" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, tmp_path / "out" / rel)
        return local_dir

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    folder = dl.download("v2ProPlus", tmp_path / "out")
    assert seen["repo"] == "lj1995/GPT-SoVITS" and SV in seen["patterns"]
    assert (folder / OFFICIAL_FILES["v2ProPlus"][1]).is_file()
    with pytest.raises(MissingResource):  # the hub did not provide v1's files
        dl.download("v1", tmp_path / "out")


def _install_fake_hub(monkeypatch, tmp_path, hub) -> dict:
    seen: dict = {}

    def fake_snapshot_download(repo_id, revision, allow_patterns, local_dir):
        import fnmatch

        seen["patterns"], seen["local_dir"] = allow_patterns, local_dir
        for f in hub.rglob("*"):
            rel = f.relative_to(hub).as_posix()
            if f.is_file() and any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                (tmp_path / "out" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, tmp_path / "out" / rel)
        return local_dir

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    return seen


@pytest.mark.parametrize("form", [["v2"], ["--version", "v2"]])
def test_download_version_positional_or_flag(tmp_path, monkeypatch, capsys, form) -> None:
    hub = tmp_path / "hub"
    _fake_hub(hub, "v2")
    seen = _install_fake_hub(monkeypatch, tmp_path, hub)
    assert main(["download", *form, "--cache", str(tmp_path / "out")]) == 0
    assert OFFICIAL_FILES["v2"][1] in seen["patterns"] and "v2 weights ready" in capsys.readouterr().out


def test_download_two_different_versions_is_an_error(tmp_path, capsys) -> None:
    assert main(["download", "v2", "--version", "v1", "--cache", str(tmp_path)]) == 2
    assert "two versions" in capsys.readouterr().err


def test_printed_download_commands_parse() -> None:
    """Every 'fastsovits download ...' the demo and the docs print is a command the parser accepts."""
    import re
    from pathlib import Path

    from fastsovits.cli import build_parser

    root = Path(__file__).resolve().parents[2]
    texts = [(root / "src/fastsovits/demo.py").read_text(), (root / "README.md").read_text()]
    texts += [p.read_text() for p in (root / "docs").glob("*.md")]
    commands = {m.group(1).strip() for t in texts for m in re.finditer(r"fastsovits (download[^`'\"\n#|]*)", t)}
    assert commands, "no download command found in the docs"
    for command in commands:
        args = re.sub(r"\[[^\]]*\]", "", command).split()  # optional parts of a usage line
        build_parser().parse_args(args)


def test_download_offline_lists_the_files_to_copy(tmp_path, monkeypatch, capsys) -> None:
    import huggingface_hub

    def offline(**kwargs):
        raise OSError("Cannot reach https://huggingface.co: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    assert main(["download", "v2ProPlus", "--cache", str(tmp_path / "models")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "could not download the v2ProPlus weights" in err
    for rel in (
        "s1v3.ckpt",
        "v2Pro/s2Gv2ProPlus.pth",
        f"{HUBERT}/pytorch_model.bin",
        f"{HUBERT}/config.json",
        f"{BERT}/tokenizer.json",
        SV,
    ):
        assert str(tmp_path / "models" / rel) in err, rel
    assert "FASTSOVITS_MODELS" in err


def test_info_on_an_empty_folder_fails_clearly(tmp_path, capsys) -> None:
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds no model" in err and "fastsovits download" in err


def test_info_on_a_tampered_converted_folder(tmp_path, capsys) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"format": "fastsovits-converted", "format_version": 1, "gpt": {"config": {"n_layers": "many"}}})
    )
    assert main(["info", str(tmp_path)]) == 2
    assert "CheckpointError" in (err := capsys.readouterr().err) and "n_layers" in err
