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
