"""Cantonese G2P with parity to the official ``text/cantonese.py`` (v2 symbols only).

Normalisation is :func:`fastsovits.text.normalize.zh.normalize_yue` (the Chinese normaliser
followed by the Cantonese punctuation clean-up). G2P reads normalised text character by
character with ToJyutping (which picks each character's reading from the longest dictionary
word around it):

* one of the model's punctuation marks ``! ? … , . -`` is its own phone (``word2ph`` 1);
* any other character needs a Jyutping reading; it is cut into an "initial" and a "final" by
  the first entry of :data:`INITIALS` it starts with (so vowel-initial syllables split too:
  ``aa3`` -> ``aa`` + ``a``); an empty final repeats the last letter of the initial (``m4`` ->
  ``m`` + ``m``). The phones are ``Y<initial>`` and ``Y<final><tone>`` (``word2ph`` 2). A few
  unit characters read as two syllables (``瓩`` ``cin1 ngaa5``) are cut the same way, giving a
  final ``Yin1 ngaa5`` that is not a symbol (the frontend turns it into ``UNK``, as officially).

Where the official code crashes we raise :class:`~fastsovits.errors.UnsupportedCharacters`
naming the characters: a character without a Jyutping reading (``TypeError`` there, e.g. ``乄``,
or any non-Chinese character), and a reading that starts with no known initial (``噎`` read
``ik1`` inside ``打噎``; ``啮`` ``it6``): the official code drops those characters and its
``word2ph`` length check fails.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from fastsovits.errors import MissingDependency, UnsupportedCharacters, UnsupportedLanguage
from fastsovits.text.g2p import shared_instance
from fastsovits.text.symbols import symbol_version

# Syllable starts, tried in this order; the first that fits wins (so "aai" after "aa" never does).
# fmt: off
INITIALS = (
    "aa", "aai", "aak", "aap", "aat", "aau", "ai", "au", "ap", "at", "ak", "a",
    "p", "b", "e", "ts", "t", "dz", "d", "kw", "k", "gw", "g", "f", "h", "l", "m", "ng", "n",
    "s", "y", "w", "c", "z", "j", "ong", "on", "ou", "oi", "ok", "o", "uk", "ung",
    "sp", "spl", "spn", "sil",
)
# fmt: on
# The model's punctuation phones (official ``symbols.punctuation``).
PUNCTUATION = frozenset("!?…,.-")
# What a reading must look like: one or more "<letters><tones>" syllables, space-separated. A few
# single characters read as two syllables (unit characters: 瓩 "cin1 ngaa5" = 千瓦); they are
# split like one syllable, as the official code does, and their final becomes "UNK" later.
_READING = re.compile(r"^([a-z]+[1-6]+[ ]?)+$")
_TONES = "123456"
_SYMBOL_VERSION = "v2"

Reader = Callable[[str], "list[tuple[str, str | None]]"]


def split_syllable(reading: str) -> tuple[str, str] | None:
    """``(initial, final+tone)`` of one Jyutping reading, or None when it is malformed or no initial fits."""
    if not _READING.search(reading):
        return None
    if reading[-1] in _TONES:
        body, tone = reading[:-1], reading[-1]
    else:  # no tone digit at the end (cannot come from ToJyutping's dictionary)
        body, tone = reading, ""
    for initial in INITIALS:
        if body.startswith(initial):
            final = body[len(initial) :] or initial[-1]
            return initial, final + tone
    return None


def jyutping_to_phones(readings: list[tuple[str, str | None]]) -> tuple[list[str], list[int]]:
    """Phones and word2ph of ``(character, jyutping or None)`` pairs (one pair per character)."""
    phones: list[str] = []
    word2ph: list[int] = []
    unreadable: list[str] = []
    for char, syllable in readings:
        if char in PUNCTUATION:
            phones.append(char)
            word2ph.append(1)
            continue
        parts = split_syllable(syllable) if syllable else None
        if parts is None:
            unreadable.append(char)
            continue
        phones.extend("Y" + p for p in parts)
        word2ph.append(2)
    if unreadable:
        shown = "".join(dict.fromkeys(unreadable))
        raise UnsupportedCharacters(
            f"Cantonese G2P cannot read {shown!r} (no usable Jyutping reading); remove or replace these characters"
        )
    return phones, word2ph


class CantoneseFrontend:
    """Official ``cantonese.py`` behaviour; ToJyutping's dictionary loads on first use."""

    def __init__(self) -> None:
        self._init_lock = threading.Lock()
        self._reader: Reader | None = None

    def _read(self) -> Reader:
        if self._reader is None:
            with self._init_lock:
                if self._reader is None:
                    try:
                        import ToJyutping  # builds its dictionary trie on import
                    except ImportError as e:
                        raise MissingDependency("Cantonese G2P", "yue", e) from e
                    self._reader = ToJyutping.get_jyutping_list
        return self._reader

    def normalize(self, text: str) -> str:
        """Chinese number/symbol normalisation, then Cantonese punctuation clean-up."""
        from fastsovits.text.normalize.zh import normalize_yue

        return normalize_yue(text)

    def g2p(self, norm_text: str) -> tuple[list[str], list[int]]:
        """Phones and phones-per-character of normalised Cantonese text."""
        readings = self._read()(norm_text)
        phones, word2ph = jyutping_to_phones(readings)
        if len(word2ph) != len(norm_text):  # pragma: no cover - ToJyutping reads per character
            raise UnsupportedCharacters(f"Cantonese G2P could not align {norm_text!r} character by character")
        return phones, word2ph


def load(version: str) -> CantoneseFrontend:
    """The shared Cantonese frontend (only the v2 symbol table has Cantonese phones)."""
    sv = symbol_version(version)
    if sv != _SYMBOL_VERSION:
        raise UnsupportedLanguage(f"{sv} models have no Cantonese phones")
    return shared_instance("yue", sv, CantoneseFrontend)
