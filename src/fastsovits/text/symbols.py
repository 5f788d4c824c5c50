"""Phone symbol tables of the official models and the phone -> id mapping.

A phone id is its index in the table. v1 has 322 symbols (the sorted union of pinyin
initials/finals with tones, Japanese phones, ARPAbet, punctuation and SP/UNK markers);
v2 appends ``[`` ``]`` (Japanese pitch marks), 29 Korean jamo/specials and 379 Cantonese
phones, for 732 in all. The first 322 ids are shared. The tables are facts about the
official checkpoints (their embedding rows), stored in ``data/symbols_<version>.txt``.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastsovits.errors import UnsupportedLanguage

VERSIONS = ("v1", "v2")
# Model versions whose text side uses a given symbol table.
SYMBOL_VERSION = {"v1": "v1", "v2": "v2", "v2Pro": "v2", "v2ProPlus": "v2", "v3": "v2", "v4": "v2"}
TABLE_SIZES = {"v1": 322, "v2": 732}


def symbol_version(version: str) -> str:
    """Map a model version (``v1``, ``v2``, ``v2Pro``, ...) to its symbol table name."""
    try:
        return SYMBOL_VERSION[version]
    except KeyError:
        raise UnsupportedLanguage(
            f"unknown model version {version!r}; expected one of {sorted(SYMBOL_VERSION)}"
        ) from None


@functools.cache
def symbols(version: str = "v2") -> tuple[str, ...]:
    """The ordered symbol table (a tuple) for a model version."""
    sv = symbol_version(version)
    text = resources.files("fastsovits.text").joinpath(f"data/symbols_{sv}.txt").read_text("utf-8")
    table = tuple(text.split("\n")[: TABLE_SIZES[sv]])
    if len(table) != TABLE_SIZES[sv]:  # pragma: no cover - packaging error
        raise RuntimeError(f"symbol table {sv} has {len(table)} entries, expected {TABLE_SIZES[sv]}")
    return table


@functools.cache
def symbol_to_id(version: str = "v2") -> dict[str, int]:
    return {s: i for i, s in enumerate(symbols(version))}


def phones_to_ids(phones: list[str], version: str = "v2") -> list[int]:
    """Map phones to ids. Every phone must be in the table (callers map unknowns to ``UNK`` first)."""
    table = symbol_to_id(version)
    try:
        return [table[p] for p in phones]
    except KeyError as e:
        raise ValueError(f"phone {e.args[0]!r} is not in the {symbol_version(version)} symbol table") from None
