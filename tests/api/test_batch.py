"""`fastsovits batch`: a file of lines -> audio files + manifest; resumable; bad lines reported."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from fastsovits.cli import main
from tests.reference import reference_dir

REF = reference_dir()


def _args(tmp_path, inp, out):
    ref = tmp_path / "ref.wav"
    if not ref.exists():
        sf.write(ref, np.load(REF / "io/audio_inputs.npz")["wav32k_b"], 32000, subtype="FLOAT")
    return [
        "batch",
        str(inp),
        "--out",
        str(out),
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
        "--quiet",
    ]


def test_jsonl_batch_resumes_and_reports(tmp_path, capsys) -> None:
    inp = tmp_path / "lines.jsonl"
    inp.write_text(
        "\n".join(
            [
                json.dumps({"id": "a", "text": "First line.", "seed": 1, "max_new_tokens": 30}),
                "this is not json",
                json.dumps({"id": "b", "text": "Second line.", "lang": "en", "top_k": 1, "max_new_tokens": 30}),
                json.dumps({"id": "c", "text": "Bonjour.", "lang": "fr"}),
            ]
        )
        + "\n"
    )
    out = tmp_path / "out"
    assert main(_args(tmp_path, inp, out)) == 1  # two bad lines
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (stats["ok"], stats["failed"], stats["skipped"]) == (2, 2, 0)
    assert (out / "a.wav").is_file() and (out / "b.wav").is_file()
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {r["id"]: r["status"] for r in records} == {"a": "ok", "b": "ok", "000002": "error", "c": "error"}
    main(_args(tmp_path, inp, out))  # resume: done items are skipped
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["skipped"] == 2 and stats["ok"] == 0


def test_txt_batch(tmp_path, capsys) -> None:
    inp = tmp_path / "lines.txt"
    inp.write_text("Hello one.\n\nHello two.\n")
    out = tmp_path / "out"
    assert main(_args(tmp_path, inp, out) + ["--format", "flac"]) == 0
    assert sorted(p.name for p in out.glob("*.flac")) == ["000001.flac", "000003.flac"]
