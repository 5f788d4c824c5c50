"""Korean pronunciation rules of g2pK (``g2pk2``) run without its network and pip side effects.

The official Korean frontend calls ``g2pk2.G2p()``. That class, as shipped, is unsafe for a
server library:

* importing any ``g2pk2`` module runs ``nltk.download('cmudict')`` when NLTK's cmudict corpus is
  not installed (a network access at import time);
* ``G2p.__init__`` starts ``pip install python-mecab-ko`` in a subprocess when ``mecab`` is not
  importable, and loads NLTK's cmudict (for its English-words step);
* ``G2p.__call__`` re-reads ``idioms.txt`` on every call.

We therefore never construct ``g2pk2.G2p``. :class:`G2pkRules` reproduces its ``__call__`` with
the defaults the official code uses (``descriptive=False``, ``group_vowels=False``,
``to_syl=True``), calling g2pk2's own rule functions for every rewriting step, except:

* the English-words step (``convert_eng``, CMUdict look-up of ``[A-Za-z']+`` words) is not
  run: the Korean frontend spells every Latin letter as Hangul first, and no idiom produces a
  Latin letter, so only apostrophe runs could reach it, and CMUdict has no apostrophe-only
  entry; the step is an identity there. :meth:`G2pkRules.__call__` refuses Latin letters
  instead of silently skipping them;
* ``g2pk2`` is imported with ``nltk.download`` replaced by a no-op (the corpus it would fetch
  is only read by the skipped step).

MeCab (``python-mecab-ko``) is a C++ tagger whose lattice is not safe to share between
threads: every call into it goes through :data:`_MECAB_LOCK`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastsovits.errors import InvalidInput, MissingDependency

_FEATURE = "Korean G2P"
_EXTRA = "ko"

# One lock for every call into the MeCab C++ library of python-mecab-ko (see module docstring).
_MECAB_LOCK = threading.Lock()
# Guards the one-time import of g2pk2 (it swaps nltk.download for the duration).
_IMPORT_LOCK = threading.Lock()

_LATIN = re.compile(r"[A-Za-z]")
# Part-of-speech marks g2pk2 attaches to syllables (bound noun, josa 의, ending ㄹ, verb stem).
_POS_MARKS = re.compile(r"/[PJEB]")
# A number followed by a bound noun, as g2pk2's numeral step finds it (any Unicode digit).
_BOUND_NUMBER = re.compile(r"(\d[\d,]*)([ㄱ-힣]+)/B")
# g2pk2 spells out at most 16 digits (up to 천조); a longer number before a bound noun crashes it.
_MAX_NUMBER_DIGITS = 16


def _no_download(*_args: Any, **_kwargs: Any) -> bool:
    """Stand-in for ``nltk.download`` while g2pk2 is imported: never touches the network."""
    return False


def _import_g2pk2() -> dict[str, Any]:
    """Import the g2pk2 rule modules (and jamo) without letting them download anything."""
    with _IMPORT_LOCK:
        try:
            import nltk
        except ImportError as e:
            raise MissingDependency(_FEATURE, _EXTRA, e) from e
        real_download = nltk.download
        nltk.download = _no_download
        try:
            from g2pk2 import numerals, regular, special, utils
            from jamo import h2j
        except ImportError as e:
            raise MissingDependency(_FEATURE, _EXTRA, e) from e
        finally:
            nltk.download = real_download
    return {"numerals": numerals, "regular": regular, "special": special, "utils": utils, "h2j": h2j}


class _LockedMecab:
    """The part of a python-mecab-ko tagger g2pk2 uses (``pos``), serialised by a lock."""

    def __init__(self) -> None:
        try:
            import mecab
        except ImportError as e:
            raise MissingDependency(_FEATURE, _EXTRA, e) from e
        with _MECAB_LOCK:
            try:
                self._tagger = mecab.MeCab()
            except Exception as e:  # dictionary package missing or broken
                raise MissingDependency(_FEATURE, _EXTRA, e) from e

    def pos(self, sentence: str) -> list[tuple[str, str]]:
        with _MECAB_LOCK:
            return self._tagger.pos(sentence)


def _read_idioms(path: Path) -> list[tuple[re.Pattern[str], str]]:
    """The ordered ``pattern===replacement`` lines of g2pk2's ``idioms.txt`` (``#`` starts a comment)."""
    rules = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#")[0].strip()
        if "===" not in line:
            continue
        pattern, replacement = line.split("===")
        rules.append((re.compile(pattern), replacement))
    return rules


class G2pkRules:
    """Hangul text -> Hangul spelling of its pronunciation, as ``g2pk2.G2p()(text)`` returns it."""

    def __init__(self) -> None:
        mods = _import_g2pk2()
        utils, special, regular = mods["utils"], mods["special"], mods["regular"]
        self._h2j: Callable[[str], str] = mods["h2j"]
        self._annotate = utils.annotate
        self._compose = utils.compose
        self._convert_num = mods["numerals"].convert_num
        self._mecab = _LockedMecab()
        package_dir = Path(utils.__file__).resolve().parent
        self._idioms = _read_idioms(package_dir / "idioms.txt")
        # Batchim + onset table (regex, replacement), compiled once instead of on every call.
        self._table = [(re.compile(src), dst) for src, dst, _rule_ids in utils.parse_table()]
        # Special rules, in the order g2pk2 applies them.
        self._special = [
            getattr(special, name)
            for name in (
                "jyeo",
                "ye",
                "consonant_ui",
                "josa_ui",
                "vowel_ui",
                "jamo",
                "rieulgiyeok",
                "rieulbieub",
                "verb_nieun",
                "balb",
                "palatalize",
                "modifying_rieul",
            )
        ]
        self._links = [regular.link1, regular.link2, regular.link3, regular.link4]

    def _spell_numbers(self, annotated: str) -> str:
        for found in _BOUND_NUMBER.finditer(annotated):
            digits = found.group(1).replace(",", "")
            if any(d != "0" for d in digits[: max(0, len(digits) - _MAX_NUMBER_DIGITS)]):
                raise InvalidInput(
                    f"the number {found.group(1)!r} before {found.group(2)!r} has more than "
                    f"{_MAX_NUMBER_DIGITS} digits; Korean G2P cannot read it"
                )
        return self._convert_num(annotated)

    def __call__(self, text: str) -> str:
        if _LATIN.search(text):
            raise InvalidInput("Korean g2pK rules got Latin letters; spell them in Hangul first")
        for pattern, replacement in self._idioms:
            text = pattern.sub(replacement, text)
        text = self._annotate(text, self._mecab)
        text = self._spell_numbers(text)
        letters = self._h2j(text)
        for rule in self._special:
            letters = rule(letters, False, False)
        letters = _POS_MARKS.sub("", letters)
        for pattern, replacement in self._table:
            letters = pattern.sub(replacement, letters)
        for link in self._links:
            letters = link(letters, False, False)
        return self._compose(letters)
