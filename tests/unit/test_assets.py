"""The text data installer extracts only data files and checks the wheel's hash."""

from __future__ import annotations

import zipfile

import pytest

from fastsovits.errors import MissingResource
from fastsovits.text import assets


def test_missing_file_names_the_fix(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FASTSOVITS_TEXT_DATA", str(tmp_path / "none"))
    with pytest.raises(MissingResource, match="setup-text-data"):
        assets.data_file("cmudict.rep")


def test_wrong_wheel_is_refused(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FASTSOVITS_TEXT_DATA", str(tmp_path / "data"))
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("GPT_SoVITS/text/cmudict.rep", "HELLO  HH AH0 L OW1\n")
    with pytest.raises(MissingResource, match="sha256"):
        assets.install(wheel, quiet=True)
    assert not assets.is_installed()


def test_installed_data_is_present() -> None:
    """`make setup` installed the official data; the files the frontend needs are there."""
    for rel in ("cmudict.rep", "cmudict-fast.rep", "engdict-hot.rep", "opencpop-strict.txt", "ja_userdic/userdict.csv"):
        assert assets.data_file(rel).stat().st_size > 0
    assert not list(assets.data_dir().rglob("*.py")), "only data files are extracted, never code"
