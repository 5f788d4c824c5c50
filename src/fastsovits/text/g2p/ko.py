"""Korean G2P with parity to the official ``text/korean.py`` (v2 symbols only).

The official Korean module has no text normalisation: ``normalize`` returns the text as is
(numbers are spelled out inside g2pK). ``g2p``:

1. every Latin letter is replaced by the Hangul name of the letter (``K`` -> ``케이``), letter by
   letter; the case-insensitive match also catches ``İ ı ſ K`` (Unicode case folding);
2. the g2pK pronunciation rules (:mod:`fastsovits.text.g2p.ko_g2pk`: idioms, MeCab POS marks,
   numbers, assimilation table, liaison) turn the text into the Hangul spelling of its sound;
3. syllables are split into compatibility jamo (``한`` -> ``ㅎㅏㄴ``) and every compound vowel into
   two simple ones (``ㅘ`` -> ``ㅗㅏ``, ``ㅕ`` -> ``ㅣㅓ``); consonant clusters stay whole;
4. a g2pK slip is patched: a ``ㄹ`` right after ``을``/``를`` and a space becomes ``ㄴ``;
5. a text that ends in a jamo (or in a jamo and one final newline) gets a ``.`` after it;
6. every character becomes one phone: a space is ``空``, full-width and a few other marks map to
   the model's punctuation, anything else outside the symbol table is ``停`` (pause).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from fastsovits.errors import MissingDependency, UnsupportedCharacters, UnsupportedLanguage
from fastsovits.text.g2p import CJK_MARKS, shared_instance
from fastsovits.text.symbols import symbol_to_id, symbol_version

# Hangul spelling of the names of the Latin letters (Korean usage: 더블유, 제트, ...).
# fmt: off
_LETTER_NAMES = {
    "a": "에이", "b": "비", "c": "시", "d": "디", "e": "이", "f": "에프", "g": "지",
    "h": "에이치", "i": "아이", "j": "제이", "k": "케이", "l": "엘", "m": "엠", "n": "엔",
    "o": "오", "p": "피", "q": "큐", "r": "아르", "s": "에스", "t": "티", "u": "유",
    "v": "브이", "w": "더블유", "x": "엑스", "y": "와이", "z": "제트",
}
# fmt: on
# Non-ASCII characters a case-insensitive [a-z] matches in Python (the official regexes do too).
_LETTER_NAMES |= {"\u0130": "아이", "\u0131": "아이", "\u017f": "에스", "\u212a": "케이"}
_LATIN_LETTER = re.compile("[a-z]", re.IGNORECASE)

# Compound vowels (compatibility jamo) read as two simple vowels.
# fmt: off
_SPLIT_VOWELS = str.maketrans({
    "ㅘ": "ㅗㅏ", "ㅙ": "ㅗㅐ", "ㅚ": "ㅗㅣ", "ㅝ": "ㅜㅓ", "ㅞ": "ㅜㅔ", "ㅟ": "ㅜㅣ", "ㅢ": "ㅡㅣ",
    "ㅑ": "ㅣㅏ", "ㅒ": "ㅣㅐ", "ㅕ": "ㅣㅓ", "ㅖ": "ㅣㅔ", "ㅛ": "ㅣㅗ", "ㅠ": "ㅣㅜ",
})
# fmt: on
# g2pK leaves ㄹ where ㄴ is spoken after 을/를 (as jamo) and a space (the official patch).
_PARTICLE_RIEUL = re.compile("([ㅇㄹ]ㅡㄹ) ㄹ")
# A final compatibility jamo ($ also matches before one trailing newline, as in the official rule).
_FINAL_JAMO = re.compile("([\u3131-\u3163])$")

# Characters renamed before the symbol-table check.
_CHAR_TO_PHONE = {**CJK_MARKS, " ": "空"}
_PAUSE = "停"
# Phones are always checked against the v2 table (the only one with Korean).
_SYMBOL_VERSION = "v2"


def spell_latin(text: str) -> str:
    """Replace every Latin letter by its Korean letter name."""
    return _LATIN_LETTER.sub(_letter_name, text)


def _letter_name(m: re.Match[str]) -> str:
    ch = m.group()
    return _LETTER_NAMES.get(ch) or _LETTER_NAMES[ch.lower()]


def split_jamo(text: str, h2j: Callable[[str], str], j2hcj: Callable[[str], str]) -> str:
    """Hangul syllables -> compatibility jamo, compound vowels split in two."""
    return j2hcj(h2j(text)).translate(_SPLIT_VOWELS)


class KoreanFrontend:
    """Official ``korean.py`` behaviour; g2pK and MeCab load on first use."""

    def __init__(self) -> None:
        self._init_lock = threading.Lock()
        self._rules = None
        self._jamo = None
        self._table = symbol_to_id(_SYMBOL_VERSION)

    def _ensure(self):  # type: ignore[no-untyped-def]
        if self._rules is None:
            with self._init_lock:
                if self._rules is None:
                    try:
                        from jamo import h2j, j2hcj
                    except ImportError as e:
                        raise MissingDependency("Korean G2P", "ko", e) from e
                    from fastsovits.text.g2p.ko_g2pk import G2pkRules

                    self._jamo = (h2j, j2hcj)
                    self._rules = G2pkRules()
        return self._rules, self._jamo

    def normalize(self, text: str) -> str:
        """The official Korean module has no normaliser: the text is returned unchanged."""
        return text

    def g2p(self, norm_text: str) -> tuple[list[str], None]:
        """Phones of Korean text (one per jamo / mark), as the official ``korean.g2p``."""
        bad = sorted({ch for ch in norm_text if 0xD800 <= ord(ch) <= 0xDFFF})
        if bad:
            raise UnsupportedCharacters(f"Korean text contains lone surrogate code points {[hex(ord(c)) for c in bad]}")
        rules, (h2j, j2hcj) = self._ensure()
        spoken = rules(spell_latin(norm_text))
        letters = split_jamo(spoken, h2j, j2hcj)
        letters = _PARTICLE_RIEUL.sub(r"\1 ㄴ", letters)
        letters = _FINAL_JAMO.sub(r"\1.", letters)
        phones = []
        for ch in letters:
            ph = _CHAR_TO_PHONE.get(ch, ch)
            phones.append(ph if ph in self._table else _PAUSE)
        return phones, None


def load(version: str) -> KoreanFrontend:
    """The shared Korean frontend (only the v2 symbol table has Korean phones)."""
    sv = symbol_version(version)
    if sv != _SYMBOL_VERSION:
        raise UnsupportedLanguage(f"{sv} models have no Korean phones")
    return shared_instance("ko", sv, KoreanFrontend)
