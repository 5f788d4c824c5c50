"""``voices list|add|rm|export|import`` through its parser, and archives that are not what export writes."""

from __future__ import annotations

import argparse
import json
import zipfile

import pytest

from fastsovits.errors import InvalidInput, ReferenceAudioError
from fastsovits.voices.archive import ArchiveError, export_voices, import_voices
from fastsovits.voices.cli import add_voices_parser
from fastsovits.voices.store import VoiceExists, VoiceNotFound, VoiceStore
from fastsovits.voices.validate import VoiceLimits
from tests.voices.conftest import audio_bytes, reference_wav


def run(*argv: str) -> int:
    p = argparse.ArgumentParser(prog="fastsovits")
    add_voices_parser(p.add_subparsers(dest="command", required=True))
    a = p.parse_args(list(argv))
    return a.func(a)


def test_add_list_export_rm_import(tmp_path, capsys) -> None:
    data = str(tmp_path / "data")
    (tmp_path / "ref.wav").write_bytes(reference_wav())
    (tmp_path / "aux.flac").write_bytes(audio_bytes(2.0, 16000, "FLAC"))
    assert (
        run(
            "voices",
            "--data-dir",
            data,
            "add",
            "alice",
            str(tmp_path / "ref.wav"),
            "--text",
            "Hi there.",
            "--language",
            "EN",
            "--aux",
            str(tmp_path / "aux.flac"),
        )
        == 0
    )
    assert run("voices", "--data-dir", data, "add", "style", str(tmp_path / "ref.wav")) == 0
    capsys.readouterr()
    assert run("voices", "list", "--json", "--data-dir", data) == 0  # the option also after the command
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["name"], r["language"], r["text"], r["aux"]) for r in rows] == [
        ("alice", "en", "Hi there.", 1),
        ("style", None, None, 0),
    ]
    out = tmp_path / "voices.zip"
    assert run("voices", "--data-dir", data, "export", "-o", str(out)) == 0
    assert run("voices", "--data-dir", data, "rm", "alice", "style") == 0
    assert len(VoiceStore.open(data)) == 0
    assert run("voices", "--data-dir", data, "import", str(out)) == 0
    store = VoiceStore.open(data)
    v = store.get("alice")
    assert v.audio == reference_wav() and v.aux == ((tmp_path / "aux.flac").read_bytes(),) and v.language == "en"
    with pytest.raises(VoiceExists):
        run("voices", "--data-dir", data, "import", str(out))
    assert run("voices", "--data-dir", data, "import", str(out), "--replace") == 0
    with pytest.raises(VoiceNotFound):
        run("voices", "--data-dir", data, "rm", "nobody")


def test_add_checks_like_an_upload(tmp_path) -> None:
    (tmp_path / "long.wav").write_bytes(audio_bytes(10.5))
    with pytest.raises(ReferenceAudioError):
        run("voices", "--data-dir", str(tmp_path), "add", "x", str(tmp_path / "long.wav"))
    with pytest.raises(InvalidInput):
        run("voices", "--data-dir", str(tmp_path), "add", "x", str(tmp_path / "missing.wav"))
    assert len(VoiceStore.open(tmp_path)) == 0


def _archive(path, manifest, files=()) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name, data in files:
            zf.writestr(name, data)


def test_untrusted_archives(tmp_path) -> None:
    store = VoiceStore.open(tmp_path / "data")
    bad = tmp_path / "bad.zip"
    (tmp_path / "notzip.zip").write_bytes(b"nope")
    cases = [
        {"format": "other"},
        {"format": "fastsovits-voices/1", "voices": "x"},
        {"format": "fastsovits-voices/1", "voices": [{"name": "a", "audio": "../../etc/passwd"}]},
        {"format": "fastsovits-voices/1", "voices": [{"name": "a", "audio": "a.wav", "aux": ["a.wav"] * 9}]},
        {"format": "fastsovits-voices/1", "voices": [{"name": "a", "audio": "a.wav", "text": 3}]},
    ]
    for manifest in cases:
        _archive(bad, manifest, [("a.wav", reference_wav())])
        with pytest.raises(ArchiveError):
            import_voices(store, bad, VoiceLimits())
    with pytest.raises(ArchiveError):
        import_voices(store, tmp_path / "notzip.zip", VoiceLimits())
    # one bad voice stops the import before any is stored
    good = {"name": "good", "audio": "a.wav"}
    _archive(
        bad,
        {"format": "fastsovits-voices/1", "voices": [good, {"name": "../x", "audio": "a.wav"}]},
        [("a.wav", reference_wav())],
    )
    with pytest.raises(InvalidInput):
        import_voices(store, bad, VoiceLimits())
    assert len(store) == 0
    _archive(bad, {"format": "fastsovits-voices/1", "voices": [good]}, [("a.wav", reference_wav())])
    assert import_voices(store, bad, VoiceLimits()).added == ("good",)
    assert export_voices(store, tmp_path / "again.zip") == ["good"]
