"""Pronunciation dictionaries of the official English G2P.

* **Word dictionary**: ``cmudict.rep`` (entries from line 57 on: ``WORD  P H O N E S``) merged
  with ``cmudict-fast.rep`` (``WORD P H O N E S``; only words the first file lacks), then the
  hot-fix list ``engdict-hot.rep`` overrides entries, and six abbreviations the official code
  considers misread (``AE AI AR IOS HUD OS``) are removed. Keys are lower case; only the first
  pronunciation is kept (as the official code does).

  The official code loads this from ``engdict_cache.pickle`` when present. That pickle is
  exactly the merge of the two ``.rep`` files (checked entry by entry), so we parse the text
  sources instead of unpickling and cache the merge as JSON in
  ``<cache_root>/text-cache/en_cmudict.json`` (rebuilt when a source's size or mtime changes;
  the cache is an optimisation: when it cannot be written, the sources are parsed each time).
  The hot-fix list is applied after the cache, as in the official code.
* **Name dictionary**: ``namedict_cache.pickle`` (no text source exists), read with the
  restricted unpickler (plain containers only) and checked to be ``{str: [[str, ...], ...]}``.
  Used only for Title-case words that miss the word dictionary.
* **Homographs**: g2p_en's ``homographs.en`` (``WORD|PRON1|PRON2|POS``: PRON1 when the POS tag
  starts with POS), with the official overrides for ``read`` and ``complex``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from fastsovits.errors import MissingResource
from fastsovits.text.assets import cache_root, data_file

log = logging.getLogger(__name__)

_MAIN_FIRST_LINE = 57  # 1-based line of cmudict.rep where the official reader starts
REMOVED_WORDS = ("ae", "ai", "ar", "ios", "hud", "os")
# (pron if the tag matches, pron otherwise, tag prefix): official corrections of g2p_en's table.
HOMOGRAPH_OVERRIDES = {
    "read": (["R", "IY1", "D"], ["R", "EH1", "D"], "VBP"),
    "complex": (["K", "AH0", "M", "P", "L", "EH1", "K", "S"], ["K", "AA1", "M", "P", "L", "EH0", "K", "S"], "JJ"),
}
_CACHE_FORMAT = 1

Homograph = tuple[list[str], list[str], str]


class WordDict:
    """``word -> phones``; phones are stored as the space-joined source text and split on lookup."""

    def __init__(self, entries: dict[str, str]) -> None:
        self._entries = entries

    def __contains__(self, word: object) -> bool:
        return word in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, word: str) -> list[str] | None:
        raw = self._entries.get(word)
        if raw is None:
            return None
        return raw.split(" ") if raw else []

    def items(self):  # noqa: ANN201 - iterator of (word, phones), for tests and tools
        return ((w, r.split(" ") if r else []) for w, r in self._entries.items())


def _read_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return f.readlines()


def parse_main(path: Path) -> dict[str, str]:
    """Entries of ``cmudict.rep`` (two spaces between the word and its phones)."""
    out: dict[str, str] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        if number < _MAIN_FIRST_LINE:
            continue
        fields = line.strip().split("  ")
        if len(fields) < 2:
            raise MissingResource(f"{path}:{number}: not a dictionary entry: {line.strip()!r}")
        out[fields[0].lower()] = fields[1]
    return out


def parse_simple(path: Path) -> list[tuple[str, str]]:
    """``(word, phones)`` pairs of a one-space ``WORD P H O N E S`` file, in file order."""
    pairs = []
    for line in _read_lines(path):
        word, _, phones = line.strip().partition(" ")
        pairs.append((word.lower(), phones))
    return pairs


def merge_sources(main: Path, fast: Path) -> dict[str, str]:
    """The official merged dictionary (``cmudict.rep`` first, ``cmudict-fast.rep`` fills gaps)."""
    entries = parse_main(main)
    for word, phones in parse_simple(fast):
        entries.setdefault(word, phones)
    return entries


def _fingerprint(paths: list[Path]) -> list[list[object]]:
    return [[p.name, st.st_size, st.st_mtime_ns] for p in paths for st in [p.stat()]]


def _cache_path() -> Path:
    return cache_root() / "text-cache" / "en_cmudict.json"


def _read_cache(path: Path, fingerprint: list[list[object]]) -> dict[str, str] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT or data.get("sources") != fingerprint:
        return None
    entries = data.get("entries")
    if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
        return None
    return entries


def _write_cache(path: Path, fingerprint: list[list[object]], entries: dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".en_cmudict.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"format": _CACHE_FORMAT, "sources": fingerprint, "entries": entries}, f)
        os.replace(tmp, path)
    except OSError as e:  # a read-only cache only costs the parse time next start
        log.debug("cannot write the English dictionary cache %s: %s", path, e)


def load_word_dict(use_cache: bool = True) -> WordDict:
    """The official English word dictionary (merge + hot-fix list - removed abbreviations)."""
    main, fast, hot = data_file("cmudict.rep"), data_file("cmudict-fast.rep"), data_file("engdict-hot.rep")
    fingerprint = _fingerprint([main, fast])
    entries = _read_cache(_cache_path(), fingerprint) if use_cache else None
    if entries is None:
        entries = merge_sources(main, fast)
        if use_cache:
            _write_cache(_cache_path(), fingerprint, entries)
    for word, phones in parse_simple(hot):
        entries[word] = phones
    for word in REMOVED_WORDS:
        entries.pop(word, None)
    return WordDict(entries)


def load_name_dict() -> dict[str, list[str]]:
    """``lower-case name -> phones`` from the official name dictionary (first reading)."""
    from fastsovits.safe_pickle import load_plain_file

    path = data_file("namedict_cache.pickle")
    try:
        raw = load_plain_file(str(path))
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise MissingResource(f"{path} is not a valid name dictionary: {e}") from e
    if not isinstance(raw, dict):
        raise MissingResource(f"{path} holds a {type(raw).__name__}, expected a dict")
    names: dict[str, list[str]] = {}
    for word, prons in raw.items():
        ok = isinstance(word, str) and isinstance(prons, list) and prons and isinstance(prons[0], list)
        if not ok or not all(isinstance(p, str) for p in prons[0]):
            raise MissingResource(f"{path}: malformed entry for {word!r}")
        names[word] = list(prons[0])
    return names


def load_homographs(path: Path | None = None) -> dict[str, Homograph]:
    """g2p_en's homograph table plus the official overrides."""
    if path is None:
        from fastsovits.text.g2p.en_neural import g2p_en_dir

        path = g2p_en_dir() / "homographs.en"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise MissingResource(f"g2p_en homograph table {path} cannot be read: {e}") from e
    table: dict[str, Homograph] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        fields = line.strip().split("|")
        if len(fields) != 4:
            raise MissingResource(f"{path}: bad homograph line {line!r}")
        word, pron1, pron2, tag = fields
        table[word.lower()] = (pron1.split(), pron2.split(), tag)
    table.update(HOMOGRAPH_OVERRIDES)
    return table
