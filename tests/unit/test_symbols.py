"""Symbol tables equal the official ones (reference manifests)."""

from __future__ import annotations

import json

import pytest

from fastsovits.errors import UnsupportedLanguage
from fastsovits.text.symbols import phones_to_ids, symbol_to_id, symbol_version, symbols
from tests.reference import reference_dir


@pytest.mark.parity
@pytest.mark.parametrize("version,size", [("v1", 322), ("v2", 732)])
def test_tables_match_reference(version: str, size: int) -> None:
    ref = json.loads((reference_dir() / "manifests" / f"symbols_{version}.json").read_text("utf-8"))
    assert list(symbols(version)) == ref
    assert len(symbols(version)) == size


def test_v2_extends_v1() -> None:
    assert symbols("v2")[:322] == symbols("v1")
    assert symbols("v2")[322:324] == ("[", "]")


def test_known_ids() -> None:
    ids = symbol_to_id("v1")
    assert (ids["!"], ids[","], ids["SP"], ids["UNK"], ids["_"], ids["…"]) == (0, 1, 77, 86, 95, 321)


def test_versions() -> None:
    assert symbol_version("v2ProPlus") == "v2"
    assert symbol_version("v1") == "v1"
    with pytest.raises(UnsupportedLanguage):
        symbol_version("v9")


def test_unknown_phone_raises() -> None:
    assert phones_to_ids(["a1", "UNK"], "v1") == [97, 86]
    with pytest.raises(ValueError):
        phones_to_ids(["Yaa1"], "v1")
