"""ASR labelling with a fake transcriber: the .list format, failures reported, resume; the lazy extra."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fastsovits.errors import InvalidParameter, MissingDependency, MissingResource
from fastsovits.train.asr import FasterWhisperTranscriber, Transcript, transcribe_folder
from fastsovits.train.prepare_text import parse_list


class FakeTranscriber:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def transcribe(self, path: Path) -> Transcript:
        self.calls.append(path.name)
        if "broken" in path.name:
            raise RuntimeError("decoder exploded")
        if "quiet" in path.name:
            return Transcript("  ", "en")
        return Transcript(f" Hello | from {path.stem}. ", "zh" if "zh" in path.name else "en")


@pytest.fixture()
def clips(tmp_path) -> Path:
    d = tmp_path / "voice_a"
    d.mkdir()
    for name in ("b_clip.wav", "a_clip.wav", "zh_clip.wav", "broken.wav", "quiet.wav"):
        sf.write(d / name, np.zeros(1600, dtype=np.float32), 16000)
    (d / "notes.txt").write_text("not audio", encoding="utf-8")
    return d


def test_writes_official_list_and_reports_failures(clips) -> None:
    fake = FakeTranscriber()
    res = transcribe_folder(clips, fake, progress=False)
    assert res.list_path == clips.parent / "voice_a.list"
    lines = res.list_path.read_text(encoding="utf-8").splitlines()
    assert lines == [
        f"{(clips / 'a_clip.wav').resolve()}|voice_a|EN|Hello from a_clip.",
        f"{(clips / 'b_clip.wav').resolve()}|voice_a|EN|Hello from b_clip.",
        f"{(clips / 'zh_clip.wav').resolve()}|voice_a|ZH|Hello from zh_clip.",
    ]
    assert sorted(f["file"].rsplit("/", 1)[-1] for f in res.failed) == ["broken.wav", "quiet.wav"]
    assert "decoder exploded" in next(f["error"] for f in res.failed if "broken" in f["file"])
    assert (res.written, res.transcribed, res.reused) == (3, 3, 0)
    items, bad = parse_list(res.list_path)  # prepare reads it: upper-case codes map to zh/en
    assert not bad and [it.language for it in items] == ["en", "en", "zh"]


def test_resume_reuses_existing_lines(clips, tmp_path) -> None:
    out = tmp_path / "out.list"
    transcribe_folder(clips, FakeTranscriber(), out, speaker="spk", progress=False)
    again = FakeTranscriber()
    res = transcribe_folder(clips, again, out, speaker="spk", progress=False)
    assert sorted(again.calls) == ["broken.wav", "quiet.wav"]  # only the failed clips are retried
    assert (res.reused, res.transcribed, res.written) == (3, 0, 3)
    assert all(line.split("|")[1] == "spk" for line in out.read_text(encoding="utf-8").splitlines())


def test_bad_inputs_are_typed(tmp_path) -> None:
    with pytest.raises(MissingResource):
        transcribe_folder(tmp_path / "nope", FakeTranscriber(), progress=False)
    with pytest.raises(InvalidParameter):
        transcribe_folder(tmp_path, object(), progress=False)  # type: ignore[arg-type]


def test_faster_whisper_is_an_optional_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import fails as when the extra is absent
    with pytest.raises(MissingDependency) as e:
        FasterWhisperTranscriber("tiny")
    assert e.value.extra == "asr"


def test_cli_transcribe_without_the_extra(monkeypatch, clips, capsys) -> None:
    from fastsovits.cli import main

    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    assert main(["transcribe", str(clips), "-q"]) == 2
    assert "fastsovits[asr]" in capsys.readouterr().err


def test_faster_whisper_wrapper_passes_the_official_settings(monkeypatch, tmp_path) -> None:
    from types import ModuleType, SimpleNamespace

    seen: dict = {}

    class WhisperModel:  # the faster-whisper API surface we use
        def __init__(self, model, device, compute_type, local_files_only):
            seen["init"] = (model, device, compute_type, local_files_only)

        def transcribe(self, audio, **kw):
            seen["kw"] = kw
            return iter([SimpleNamespace(text=" Hello"), SimpleNamespace(text=" world.")]), SimpleNamespace(
                language="en"
            )

    fake = ModuleType("faster_whisper")
    fake.WhisperModel = WhisperModel
    monkeypatch.setitem(sys.modules, "faster_whisper", fake)
    asr = FasterWhisperTranscriber("models/fw", device="cpu", language="auto")
    assert asr.transcribe(tmp_path / "a.wav") == Transcript("Hello world.", "en")
    assert seen["init"] == ("models/fw", "cpu", "default", True)  # local files only unless allowed
    assert seen["kw"] == {
        "beam_size": 5,
        "vad_filter": True,
        "vad_parameters": {"min_silence_duration_ms": 700},
        "language": None,
    }
