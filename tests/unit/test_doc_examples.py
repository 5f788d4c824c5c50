"""The examples in the README and docs/ run as written.

A code block right after a ``<!-- example -->`` line is run, in document order, in a folder that holds
what the examples name: ``pretrained_models/`` (the official v2 layout, with the tiny test models),
``ref.wav``, ``my_gpt.ckpt`` and ``my_sovits.pth`` (tiny models too), and a stand-in for the Hugging
Face hub (no network). Python blocks run with ``exec`` (or as doctests when they hold ``>>>``); in bash
blocks each ``fastsovits ...`` command runs through the CLI and must exit 0, and any other command runs
in bash with ``curl`` replaced by a function that records its arguments (the server has its own tests).
"""

from __future__ import annotations

import doctest
import fnmatch
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fastsovits.checkpoints.discovery import BERT, HUBERT, OFFICIAL_FILES
from tests.reference import reference_dir

ROOT = Path(__file__).resolve().parents[2]
TINY = reference_dir() / "tiny"
DOCS = ["README.md", "docs/python_api.md", "docs/http_api.md", "docs/cli.md"]
BLOCK = re.compile(r"<!-- example -->\s*\n```(\w+)\n(.*?)\n```", re.DOTALL)


def examples(doc: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer((ROOT / doc).read_text("utf-8"))]


def _official_v2(root: Path) -> None:
    gpt, sovits, _ = OFFICIAL_FILES["v2"]
    (root / gpt).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(TINY / "tiny_s1_v2.ckpt", root / gpt)
    shutil.copy(TINY / "tiny_s2_v2.pth", root / sovits)
    shutil.copytree(TINY / "tiny_hubert", root / HUBERT)
    (root / BERT).mkdir()
    (root / BERT / "config.json").write_text("{}")  # English text never loads BERT


@pytest.fixture()
def workspace(tmp_path, monkeypatch) -> Path:
    import huggingface_hub

    hub = tmp_path / "hub"
    _official_v2(hub)

    def snapshot_download(repo_id, revision, allow_patterns, local_dir):  # the hub, from a local folder
        for f in hub.rglob("*"):
            rel = f.relative_to(hub).as_posix()
            if f.is_file() and any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                (Path(local_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, Path(local_dir) / rel)
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    work = tmp_path / "work"
    _official_v2(work / "pretrained_models")
    clips = np.load(reference_dir() / "io/audio_inputs.npz")
    sf.write(work / "ref.wav", clips["wav32k_b"], 32000)
    sf.write(work / "ref2.wav", clips["wav32k_b"][::-1].copy(), 32000)
    shutil.copy(work / "ref.wav", work / "bob.wav")
    shutil.copy(TINY / "tiny_s1_v2.ckpt", work / "my_gpt.ckpt")
    shutil.copy(TINY / "tiny_s2_v2.pth", work / "my_sovits.pth")
    monkeypatch.chdir(work)
    return work


def _commands(block: str) -> list[str]:
    """Shell commands of a block, continuation lines joined."""
    return [c.strip() for c in block.replace("\\\n", " ").split("\n") if c.strip() and not c.startswith("#")]


def _run_bash(block: str, work: Path, capsys) -> None:
    from fastsovits.cli import main

    for command in _commands(block):
        if command.startswith("fastsovits "):
            try:
                code = main(shlex.split(command, comments=True)[1:])
            except SystemExit as e:  # --version, --help
                code = e.code
            assert code == 0, f"{command!r} exited {code}: {capsys.readouterr().err}"
        else:
            script = f'curl() {{ printf "%s\\n" "$@" >> curl_args.txt; }}\n{command}\n'
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script], cwd=work, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, f"{command!r}: {done.stderr}"


def _run_python(block: str, name: str) -> None:
    if ">>>" in block:
        test = doctest.DocTestParser().get_doctest(block, {}, name, name, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test)
        assert runner.failures == 0, f"{name}: {runner.failures} doctest failures (output above)"
    else:
        exec(compile(block, name, "exec"), {"__name__": "__doc_example__"})  # noqa: S102 - our own docs


def _run(doc: str, i: int, lang: str, block: str, work: Path, capsys) -> None:
    if lang == "python":
        _run_python(block, f"{doc} example {i + 1}")
    else:
        assert lang == "bash", f"{doc} example {i + 1}: unknown block language {lang!r}"
        _run_bash(block, work, capsys)


@pytest.mark.parametrize("doc", [d for d in DOCS if d != "README.md" and examples(d)])
def test_examples_run(doc, workspace, capsys) -> None:
    for i, (lang, block) in enumerate(examples(doc)):
        _run(doc, i, lang, block, workspace, capsys)


def test_readme_examples_run_and_do_what_they_say(workspace, capsys) -> None:
    blocks = examples("README.md")
    assert [lang for lang, _ in blocks[:2]] == ["python", "bash"]
    capsys.readouterr()
    _run("README.md", 0, *blocks[0], workspace, capsys)  # usage: synthesize, then stream three sentences
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert [ln.split()[0] for ln in lines] == ["0", "1", "2"] and lines[-1].endswith("last"), lines
    assert sf.info(workspace / "out.wav").frames > 0
    _run("README.md", 1, *blocks[1], workspace, capsys)  # the commands
    out = capsys.readouterr().out
    assert "今天天气很好。\n我们去公园散步吧！\n你想一起来吗？" in out  # split shows the method splitting
    assert sf.info(workspace / "out/hello.wav").frames > 0 and sf.info(workspace / "out/again.wav").frames > 0
    for i, (lang, block) in enumerate(blocks[2:], start=2):
        _run("README.md", i, lang, block, workspace, capsys)


def test_http_voice_upload_body(workspace, capsys) -> None:
    import base64
    import json

    _run_bash(examples("docs/http_api.md")[0][1], workspace, capsys)
    body = json.loads((workspace / "bob.json").read_text())
    assert base64.b64decode(body["audio"]) == (workspace / "bob.wav").read_bytes() and body["name"] == "bob"
    assert "@bob.json" in (workspace / "curl_args.txt").read_text()


def test_every_doc_has_examples() -> None:
    assert len(examples("README.md")) >= 4 and examples("docs/python_api.md") and examples("docs/http_api.md")
    assert examples("docs/cli.md")


LAB_NOTES = re.compile(
    r"period of (this|the) VM|this VM|short of the \d|target\b.*\bnot (met|reached)|was lent|no GPU (was )?lent|"
    r"earlier session|in an earlier .*period|previous version of this table",
    re.IGNORECASE,
)


def test_docs_read_as_documentation() -> None:
    """Docs state what the software does and measured figures with their command; history stays in git."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            assert not LAB_NOTES.search(line), f"{path.name}:{n}: {line.strip()}"
