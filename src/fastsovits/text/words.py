"""Which phones belong to which word: the units timestamps are reported for (no torch).

:func:`word_units` cuts a sentence's :class:`~fastsovits.text.types.Phonemes` into units, each with
its text and its number of phones, in phone order; the counts always sum to ``len(phones)``.
Chinese, Cantonese and Japanese units are characters, English and Korean units are words; marks
and spaces are units too (``is_word`` False), so pauses keep their phones. Texts are those of the
normalised text (numbers spelled out as they are read).

* zh/yue: the frontend's ``word2ph`` (phones per character of the normalised text);
* en: the G2P's phones per token (the same tokenizer, dictionaries and filters as ``g2p``);
* ko: the G2P writes a space as the phone ``空``: the phones between two of them are one word;
* ja: pieces between marks are exact (each goes through Open JTalk separately); inside a piece,
  its phones are shared among the characters by their estimated morae (kana one, small kana none,
  kanji two), as Open JTalk does not say which phones a character has.

Where a count cannot be derived (an unexpected G2P result), a run's phones are shared among its
characters or words by their length. :func:`~fastsovits.text.phonemize` is not changed by any of this.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fastsovits.text.types import Phonemes, Segment

CHARACTER_LANGUAGES = ("zh", "yue", "ja")  # units are characters; elsewhere words
_SPACE = re.compile(r"(\s+)")
_SMALL_KANA = frozenset("ぁぃぅぇぉゃゅょゎァィゥェォャュョヮヵヶ")
_KOREAN_SPACE = "空"


@dataclass(frozen=True)
class WordUnit:
    text: str
    phones: int  # phones of this unit (0 for a space that has none)
    is_word: bool  # False for marks and spaces (their phones are pauses)


def is_wordy(text: str) -> bool:
    """True when the text has a letter, digit or ideograph (a word, not a mark)."""
    return any(ch.isalnum() for ch in text)


def share(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders; all-zero weights share equally)."""
    if not weights:
        return []
    if sum(weights) <= 0:
        weights = [1.0] * len(weights)
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _spread(text: str, phones: int, per_char: bool) -> list[WordUnit]:
    """Share ``phones`` among the characters (or words) of ``text`` by length; spaces get none."""
    pieces = list(text) if per_char else [p for p in _SPACE.split(text) if p]
    weights = [0.0 if p.isspace() else float(len(p)) for p in pieces]
    if not pieces or sum(weights) == 0:
        return [WordUnit(text, phones, False)]
    return [WordUnit(p, k, is_wordy(p)) for p, k in zip(pieces, share(phones, weights))]


def _mora_weight(ch: str) -> float:
    if ch in _SMALL_KANA:
        return 0.0
    if "\u3040" <= ch <= "\u30ff" or "\uff66" <= ch <= "\uff9d":
        return 1.0
    if "\u4e00" <= ch <= "\u9fff" or ch == "\u3005":
        return 2.0
    return 1.0


def _english(seg: Segment, version: str) -> list[WordUnit]:
    from nltk.tokenize.casual import TweetTokenizer

    from fastsovits.text.frontend import get_frontend
    from fastsovits.text.g2p.en import _DROPPED, _RENAMED
    from fastsovits.text.symbols import symbol_to_id

    table = symbol_to_id("v2")  # the English G2P filters through the v2 table (see g2p/en.py)
    fe = get_frontend("en", version)
    tokens = TweetTokenizer().tokenize(seg.norm_text)
    per_token = fe.word_phones(seg.norm_text)  # type: ignore[attr-defined]
    if len(tokens) != len(per_token):
        return []
    units = []
    for token, raw in zip(tokens, per_token):
        kept = sum(1 for p in raw if p not in _DROPPED and _RENAMED.get(p, p) in table)
        units.append(WordUnit(token, kept, is_wordy(token)))
    if sum(u.phones for u in units) + 1 == len(seg.phones) and seg.phones[:1] == [","]:
        units.insert(0, WordUnit(",", 1, False))  # the frontend's "," before a very short English run
    return units


def _japanese(seg: Segment, version: str) -> list[WordUnit]:
    from fastsovits.text.frontend import get_frontend
    from fastsovits.text.g2p.ja import _SPELL_OUT, split_marks

    fe = get_frontend("ja", version)
    text = seg.norm_text
    for symbol, spelled in _SPELL_OUT:
        text = text.replace(symbol, spelled)
    pieces, marks = split_marks(text.lower())
    units: list[WordUnit] = []
    for i, piece in enumerate(pieces):
        if piece:
            count = len(fe.piece_phones(piece))  # type: ignore[attr-defined]
            chars = list(piece)
            units += [WordUnit(c, k, True) for c, k in zip(chars, share(count, [_mora_weight(c) for c in chars]))]
        if i < len(marks):
            units.append(WordUnit(marks[i], 0 if marks[i] == " " else 1, is_wordy(marks[i])))
    return units


def _korean(seg: Segment) -> list[WordUnit]:
    words = seg.norm_text.split(" ")
    groups: list[int] = [0]
    for p in seg.phones:
        if p == _KOREAN_SPACE:
            groups.append(0)
        else:
            groups[-1] += 1
    if len(groups) != len(words):
        return []
    units: list[WordUnit] = []
    for i, (word, count) in enumerate(zip(words, groups)):
        if i:
            units.append(WordUnit(" ", 1, False))
        units.append(WordUnit(word, count, is_wordy(word)))
    return units


def segment_units(seg: Segment, version: str = "v2") -> list[WordUnit]:
    """The units of one language run; their phones sum to ``len(seg.phones)``."""
    n = len(seg.phones)
    units: list[WordUnit] = []
    if seg.word2ph is not None and len(seg.word2ph) == len(seg.norm_text):
        units = [WordUnit(ch, k, is_wordy(ch)) for ch, k in zip(seg.norm_text, seg.word2ph)]
    elif seg.lang == "en":
        units = _english(seg, version)
    elif seg.lang == "ja":
        units = _japanese(seg, version)
    elif seg.lang == "ko":
        units = _korean(seg)
    if sum(u.phones for u in units) != n:
        units = _spread(seg.norm_text, n, per_char=seg.lang in CHARACTER_LANGUAGES)
    return units


def word_units(ph: Phonemes) -> list[WordUnit]:
    """The units of a phonemized sentence, in order; their phones sum to ``len(ph.phones)``."""
    units = [u for seg in ph.segments for u in segment_units(seg, ph.version)]
    if sum(u.phones for u in units) != len(ph.phones):
        per_char = all(seg.lang in CHARACTER_LANGUAGES for seg in ph.segments)
        units = _spread(ph.norm_text, len(ph.phones), per_char)
    return units
