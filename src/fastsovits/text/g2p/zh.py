"""Mandarin G2P with parity to the official ``text/chinese.py`` (v1) and ``text/chinese2.py`` (v2).

The normalised text (only CJK ideographs and the marks ``! ? … , . -``) is read like this:

1. it is cut after every mark into sentences (whitespace after a mark is dropped, blank
   sentences are skipped) and Latin letters are removed;
2. each sentence is POS-tagged by ``jieba_fast`` and the tokens are merged for tone sandhi
   (:mod:`fastsovits.text.g2p.tone_sandhi`);
3. per token, pypinyin gives the initials and ``TONE3`` finals (neutral tone ``5``), the tone
   sandhi rules rewrite the tones, and (v2 only) the erhua rule gives a final ``儿`` the tone
   of the syllable before it;
4. each syllable is spelled as a full pinyin syllable and mapped to two phones (initial, final
   + tone) through the opencpop table; a mark is one phone. ``word2ph`` counts phones per
   character: 2 per syllable, 1 per mark.

Only the official pypinyin path is implemented (the official v2 default uses the g2pW ONNX
model for polyphones instead; the golden fixtures record the pypinyin path). Characters the
official code cannot read (it crashes on them) raise :class:`UnsupportedCharacters`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from fastsovits.errors import MissingResource, UnsupportedCharacters, UnsupportedLanguage
from fastsovits.text.g2p.tone_sandhi import ToneSandhi

PUNCTUATION = ("!", "?", "…", ",", ".", "-")
# A sentence ends after every mark; whitespace right after a mark is dropped with the cut.
_SENTENCE_CUT = re.compile(r"(?<=[!?…,.\-])\s*")
_LATIN = re.compile("[a-zA-Z]+")

# Erhua (v2): words whose final 儿 always / never takes the previous syllable's tone.
ALWAYS_ERHUA = frozenset("妥妥儿 媳妇儿 寻老礼儿 小院儿 撒欢儿 老汉儿 胡同儿 范儿".split())
NEVER_ERHUA = frozenset(
    (
        "一儿 为儿 乞儿 体弱儿 侄儿 侄孙儿 俺儿 可儿 女儿 妻儿 婴儿 婴幼儿 孙儿 孤儿 少儿 幼儿 应采儿 患儿 我儿 护儿 "
        "拐儿 救儿 替儿 有儿 流浪儿 混血儿 狗儿 猪儿 猫儿 男儿 瞒儿 祖儿 红孩儿 美儿 聋儿 脑瘫儿 舫儿 花儿 虐儿 虫儿 "
        "蜜雪儿 连体儿 马儿 鸟儿"
    ).split()
)
_NO_ERHUA_POS = frozenset({"a", "j", "nr"})

# Spelling of a syllable from pypinyin's strict initial/final split (opencpop table keys).
_FINAL_AFTER_INITIAL = {"uei": "ui", "iou": "iu", "uen": "un"}
_ZERO_INITIAL_SYLLABLE = {"ing": "ying", "i": "yi", "in": "yin", "u": "wu"}
_ZERO_INITIAL_HEAD = {"v": "yu", "e": "e", "i": "y", "u": "w"}


@dataclass(frozen=True)
class _Tools:
    """The shared third-party lookups, built once (jieba_fast dictionary, pypinyin, opencpop)."""

    pos_cut: Callable[[str], list]
    initials: Callable[[str], list[str]]
    finals: Callable[[str], list[str]]
    sandhi: ToneSandhi
    opencpop: dict[str, tuple[str, str]]


_tools: _Tools | None = None
_tools_lock = threading.Lock()


def _read_opencpop() -> dict[str, tuple[str, str]]:
    from fastsovits.text.assets import data_file

    table: dict[str, tuple[str, str]] = {}
    with open(data_file("opencpop-strict.txt"), encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            key, phones = line.rstrip("\r\n").split("\t")
            initial, final = phones.strip().split(" ")
            table[key] = (initial, final)
    if not table:
        raise MissingResource("opencpop-strict.txt is empty")
    return table


def _load_tools() -> _Tools:
    """Import and initialise jieba_fast and pypinyin once per process (thread-safe)."""
    global _tools
    if _tools is not None:
        return _tools
    with _tools_lock:
        if _tools is not None:
            return _tools
        opencpop = _read_opencpop()
        # Core dependencies of fastsovits (not an optional extra).
        import jieba_fast
        import jieba_fast.posseg as posseg
        from pypinyin import Style, lazy_pinyin

        # jieba_fast logs its dictionary loading to stderr; the prefix-dict cache it writes goes
        # to the system temp folder (never the working directory).
        jieba_fast.setLogLevel(logging.CRITICAL)
        jieba_fast.dt.initialize()
        posseg.lcut("初始化")  # the first cut finishes the POS tokenizer set-up

        def initials(word: str) -> list[str]:
            return lazy_pinyin(word, neutral_tone_with_five=True, style=Style.INITIALS)

        def finals(word: str) -> list[str]:
            return lazy_pinyin(word, neutral_tone_with_five=True, style=Style.FINALS_TONE3)

        sandhi = ToneSandhi(jieba_fast.cut_for_search, finals)
        _tools = _Tools(posseg.lcut, initials, finals, sandhi, opencpop)
        return _tools


def _apply_erhua(finals: list[str], word: str, pos: str) -> list[str]:
    """The official v2 erhua step: a final ``儿`` gets tone 2 instead of 1, and, unless the
    word is exempt, a final ``儿`` in tone 2 or 5 takes the tone of the syllable before it."""
    n = len(finals)
    if n and word[n - 1] == "儿" and finals[-1] == "er1":
        finals[-1] = "er2"
    if word not in ALWAYS_ERHUA and (word in NEVER_ERHUA or pos in _NO_ERHUA_POS):
        return finals
    if n != len(word):
        return finals
    if n > 1 and word[-1] == "儿" and finals[-1] in ("er2", "er5") and word[-2:] not in NEVER_ERHUA:
        finals[-1] = "er" + finals[-2][-1]
    return finals


def _syllable_phones(table: dict[str, tuple[str, str]], initial: str, final: str, word: str) -> list[str]:
    """Phones of one syllable (initial + TONE3 final) or of one punctuation mark."""
    if initial == final:
        if initial in PUNCTUATION:
            return [initial]
        raise UnsupportedCharacters(f"cannot read {initial!r} (in {word!r}) as Mandarin")
    body, tone = final[:-1], final[-1:]
    if tone not in ("1", "2", "3", "4", "5"):
        raise UnsupportedCharacters(f"no Mandarin reading for {word!r} (pinyin {initial + final!r})")
    if initial:
        key = initial + _FINAL_AFTER_INITIAL.get(body, body)
    elif body in _ZERO_INITIAL_SYLLABLE:
        key = _ZERO_INITIAL_SYLLABLE[body]
    elif body[:1] in _ZERO_INITIAL_HEAD:
        key = _ZERO_INITIAL_HEAD[body[0]] + body[1:]
    else:
        key = body
    phones = table.get(key)
    if phones is None:
        raise UnsupportedCharacters(f"pinyin {key!r} of {word!r} has no phones in the opencpop table")
    return [phones[0], phones[1] + tone]


class ChineseG2P:
    """Mandarin frontend of one symbol version (``v1``: chinese.py, ``v2``: chinese2.py)."""

    def __init__(self, version: str = "v2", *, g2pw_dir: str | os.PathLike[str] | None = None) -> None:
        if version not in ("v1", "v2"):
            raise UnsupportedLanguage(f"no Mandarin frontend for symbol version {version!r}")
        if g2pw_dir is not None:
            from fastsovits.text.g2p.g2pw import check_available

            check_available(g2pw_dir)  # raises: the g2pW path is not implemented yet
        self.version = version
        self.erhua = version == "v2"

    def normalize(self, text: str) -> str:
        """The official ``text_normalize`` (numbers, units, dates, punctuation)."""
        from fastsovits.text.normalize.zh import normalize_zh

        return normalize_zh(text, self.version)

    def g2p(self, norm_text: str) -> tuple[list[str], list[int]]:
        """Phones and phones-per-character of normalised text (the official ``g2p``)."""
        tools = _load_tools()
        phones: list[str] = []
        word2ph: list[int] = []
        for sentence in _SENTENCE_CUT.split(norm_text):
            if not sentence.strip():
                continue
            sentence = _LATIN.sub("", sentence)
            tokens = tools.sandhi.merge_tokens(tools.pos_cut(sentence))
            for word, pos in tokens:
                if pos == "eng":
                    continue
                for initial, final in self._word_syllables(tools, word, pos):
                    syl = _syllable_phones(tools.opencpop, initial, final, word)
                    phones += syl
                    word2ph.append(len(syl))
        if len(word2ph) != len(norm_text):
            # The official clean_text asserts this; it holds for any text from `normalize`.
            raise UnsupportedCharacters(
                f"{len(norm_text)} characters gave {len(word2ph)} syllables/marks: {norm_text!r} is not "
                "normalised Mandarin text"
            )
        return phones, word2ph

    def _word_syllables(self, tools: _Tools, word: str, pos: str) -> list[tuple[str, str]]:
        initials = tools.initials(word)
        finals = tools.finals(word)
        if len(initials) != len(word) or len(finals) != len(word) or not all(finals):
            # pypinyin groups non-Chinese characters into one item (never a single mark) or
            # has no reading: the official code fails on this word.
            raise UnsupportedCharacters(f"cannot read {word!r} as Mandarin")
        finals = tools.sandhi.apply(word, pos, finals)
        if self.erhua:
            finals = _apply_erhua(finals, word, pos)
        return list(zip(initials, finals))


_instances: dict[str, ChineseG2P] = {}
_instances_lock = threading.Lock()


def load(version: str = "v2") -> ChineseG2P:
    """The shared Mandarin frontend of a symbol version (``v1`` or ``v2``)."""
    with _instances_lock:
        inst = _instances.get(version)
        if inst is None:
            inst = ChineseG2P(version)
            _instances[version] = inst
        return inst
