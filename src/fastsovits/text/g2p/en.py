"""English G2P with parity to the official ``text/english.py`` (same output for v1 and v2).

``normalize`` is :func:`fastsovits.text.normalize.en.normalize_en`. ``g2p`` reads normalised text:

1. NLTK's ``TweetTokenizer`` splits it into words and marks (``it's``, ``co-op`` stay whole);
2. a token without a letter is its own phone (``,`` ``.`` ``?``; others are dropped below);
   one letter is read from the dictionary (a capital ``A`` alone is ``EY1``);
3. a homograph is read by its POS tag (:mod:`fastsovits.text.g2p.en_pos`; the tagger loads only
   for such sentences);
4. any other word: word dictionary; for a Title-case word the name dictionary; up to three
   letters are spelled out; ``xxx's`` is the stem plus ``S``/``AH0 Z``/``Z`` by its last phone;
   a word ``wordsegment`` splits is read part by part; else the g2p_en neural model predicts it;
5. phones the v2 symbol table lacks are dropped, ``'`` becomes ``-``, ``UW`` (neural output
   without stress) is dropped and ``<unk>`` becomes ``UNK``.

Every table loads once per process on first use (thread-safe); nothing is read at import.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

from fastsovits.errors import InvalidInput, MissingDependency, UnsupportedCharacters
from fastsovits.text.g2p import en_dict
from fastsovits.text.g2p.en_pos import Tagger
from fastsovits.text.symbols import symbol_to_id, symbol_version

_HAS_LETTER = re.compile("[a-z]")
_POSSESSIVE = re.compile(r"^([a-z]+)('s)$")
# Last phone of the stem -> ending of a possessive ('s).
_VOICELESS = frozenset({"P", "T", "K", "F", "TH", "HH"})
_SIBILANT = frozenset({"S", "Z", "SH", "ZH", "CH", "JH"})
# Model outputs the official g2p removes before the symbol check (word gaps, decoder specials,
# and the stressless "UW" the neural model can emit).
_DROPPED = frozenset({" ", "<pad>", "UW", "</s>", "<s>"})
_RENAMED = {"<unk>": "UNK", "'": "-"}
# Every version reads English through the v2 table (the official module imports symbols2);
# the frontend maps what v1 lacks to UNK afterwards.
_TABLE_VERSION = "v2"


class EnglishFrontend:
    """Official English ``text_normalize`` + ``g2p``.

    ``tagger`` maps a token list to Penn Treebank tags (default: spaCy, loaded lazily); it is
    only called for sentences that contain a homograph.
    """

    def __init__(self, tagger: Tagger | None = None) -> None:
        self._lock = threading.RLock()
        self._tagger = tagger
        self._tokenize: Callable[[str], list[str]] | None = None
        self._words: en_dict.WordDict | None = None
        self._names: dict[str, list[str]] = {}
        self._homographs: dict[str, en_dict.Homograph] = {}
        self._table: dict[str, int] = {}

    # -- lazily built tables -------------------------------------------------------------
    def _ensure_tables(self) -> None:
        if self._words is not None:
            return
        with self._lock:
            if self._words is not None:
                return
            try:
                from nltk.tokenize.casual import TweetTokenizer  # no downloads: pure regexes
            except ImportError as e:
                raise MissingDependency("English G2P", "en", e) from e
            self._tokenize = TweetTokenizer().tokenize
            self._homographs = en_dict.load_homographs()
            self._names = en_dict.load_name_dict()
            self._table = symbol_to_id(_TABLE_VERSION)
            self._words = en_dict.load_word_dict()

    def _segment(self, word: str) -> list[str]:
        return _segmenter().segment(word)

    def _tags(self, tokens: Sequence[str]) -> list[str]:
        if self._tagger is None:
            from fastsovits.text.g2p.en_pos import default_tagger

            self._tagger = default_tagger()
        tags = self._tagger(tokens)
        if len(tags) != len(tokens):
            raise RuntimeError(f"POS tagger returned {len(tags)} tags for {len(tokens)} tokens")
        return tags

    # -- word readings -------------------------------------------------------------------
    def _letter(self, letter: str) -> list[str]:
        assert self._words is not None
        phones = self._words.get(letter)
        if phones is None:
            raise UnsupportedCharacters(f"English G2P cannot read the letter {letter!r}")
        return phones

    def _spell(self, word: str) -> list[str]:
        phones: list[str] = []
        for ch in word:
            if ch == "a":
                phones.append("EY1")
            elif not ch.isalpha():
                phones.append(ch)
            else:
                phones.extend(self._letter(ch))
        return phones

    def lookup(self, word: str) -> list[str]:
        """Phones of one word that is not a homograph (dictionaries, rules, then the neural model)."""
        self._ensure_tables()
        assert self._words is not None
        low = word.lower()
        if len(low) > 1:
            found = self._words.get(low)
            if found is not None:
                return found
        if word.istitle() and low in self._names:
            return list(self._names[low])
        if len(low) <= 3:
            return self._spell(low)
        if _POSSESSIVE.match(low):
            phones = list(self.lookup(low[:-2]))  # the stem is looked up in lower case
            if not phones:
                raise InvalidInput(f"English G2P found no phones for the stem of {word!r}")
            if phones[-1] in _VOICELESS:
                phones.append("S")
            elif phones[-1] in _SIBILANT:
                phones += ["AH0", "Z"]
            else:
                phones.append("Z")
            return phones
        parts = self._segment(low)
        if len(parts) == 1:
            from fastsovits.text.g2p.en_neural import shared_model

            return shared_model().predict(low)
        return [p for part in parts for p in self.lookup(part)]

    def _homograph(self, word: str, tag: str) -> list[str]:
        if_tag, otherwise, prefix = self._homographs[word]
        # A tag matches when it starts with the prefix, or is a shorter head of it ("VB" of "VBP").
        if tag.startswith(prefix) or (len(tag) < len(prefix) and prefix.startswith(tag)):
            return if_tag
        return otherwise

    def word_phones(self, text: str) -> list[list[str]]:
        """Raw phones per token (before the symbol-table filter)."""
        self._ensure_tables()
        assert self._tokenize is not None
        tokens = self._tokenize(text)
        lows = [t.lower() for t in tokens]
        needs_tags = any(len(w) > 1 and w in self._homographs and _HAS_LETTER.search(w) for w in lows)
        tags = self._tags(tokens) if needs_tags else None
        out: list[list[str]] = []
        for i, (token, low) in enumerate(zip(tokens, lows)):
            if not _HAS_LETTER.search(low):
                out.append([low])
            elif len(low) == 1:
                out.append(["EY1"] if token == "A" else self._letter(low))
            elif low in self._homographs:
                assert tags is not None
                out.append(self._homograph(low, tags[i]))
            else:
                out.append(self.lookup(token))
        return out

    # -- the frontend contract -----------------------------------------------------------
    def normalize(self, text: str) -> str:
        """Official English ``text_normalize``."""
        from fastsovits.text.normalize.en import normalize_en

        return normalize_en(text)

    def g2p(self, norm_text: str) -> tuple[list[str], None]:
        """Phones of normalised English text (no word2ph for English)."""
        if not isinstance(norm_text, str):
            raise InvalidInput(f"text must be a str, got {type(norm_text).__name__}")
        phones: list[str] = []
        for word in self.word_phones(norm_text):
            for p in word:
                if p in _DROPPED:
                    continue
                p = _RENAMED.get(p, p)
                if p in self._table:
                    phones.append(p)
        return phones, None


_shared_segmenter: Any = None
_segmenter_lock = threading.Lock()


def _segmenter() -> Any:
    """A process-wide ``wordsegment.Segmenter`` (our own instance; the module-global one is untouched)."""
    global _shared_segmenter
    if _shared_segmenter is None:
        with _segmenter_lock:
            if _shared_segmenter is None:
                try:
                    import wordsegment
                except ImportError as e:
                    raise MissingDependency("English G2P", "en", e) from e
                seg = wordsegment.Segmenter()
                seg.load()  # unigram/bigram counts, about 0.5 s
                _shared_segmenter = seg
    return _shared_segmenter


_instance: EnglishFrontend | None = None
_instance_lock = threading.Lock()


def load(version: str) -> EnglishFrontend:
    """The shared English frontend; its output does not depend on the symbol version."""
    symbol_version(version)  # validates the version
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = EnglishFrontend()
        return _instance
