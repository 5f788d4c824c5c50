"""Sentence splitting: the official text-splitting methods and the pre-segmentation of a text.

* ``split_text(text, method)`` — the raw string returned by the official methods ``cut0`` ..
  ``cut5`` (pieces joined by ``"\\n"``); more methods can be added with ``register_method``.
* ``presegment(text, language, method)`` — the list of sentences the official engine sends to
  the frontend one by one (``TextPreprocessor.pre_seg_text`` applied after
  ``replace_consecutive_punctuation``). With ``collapse_punctuation=False`` it is what the
  official streaming / fragment mode splits.

The methods (the official cut functions of GPT-SoVITS, same names and results):
  cut0  no split (only a text made of nothing but ``!?…,.-`` and spaces becomes ``"\\n"``);
  cut1  every four clauses;       cut2  clauses packed into pieces of more than 50 characters;
  cut3  at ``。``;                  cut4  at ``.`` that is not between two digits;
  cut5  after every punctuation mark (a ``.`` between digits does not split).

Everything here is linear in the text length.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from fastsovits.errors import EmptyText, InvalidParameter

# Clause-ending marks of the official splitter (clauses, first-clause rule, big-text cut).
CLAUSE_MARKS = frozenset("，。？！,.?!~:：—…")
# Marks that make a piece "nothing to read" for cut0..cut4 (space included).
_CUT_PUNCT = frozenset("!?…,.- ")
# Marks after which cut5 cuts.
_CUT5_MARKS = frozenset(",.;?!、，。？！：…")
CUT5_MARKS = _CUT5_MARKS
# Marks whose consecutive runs collapse to their first one (ASCII + ellipsis only).
_REPEATED_PUNCT = re.compile(r"([!?…,.\-])[!?…,.\-]+")
_DOT_NOT_IN_NUMBER = re.compile(r"(?<!\d)\.(?!\d)")
_NO_WORD_CHARS = re.compile(r"\W+")
_NEWLINES = re.compile(r"\n{2,}")
_CLAUSE_SPLIT = re.compile("[" + "".join(sorted(CLAUSE_MARKS)) + "]")
_CLAUSE_KEEP_SPLIT = re.compile("([" + "".join(sorted(CLAUSE_MARKS)) + "])")
MAX_SEGMENT_CHARS = 510  # longer sentences are cut at clause marks (official BERT limit)
MIN_MERGED_CHARS = 5  # pieces shorter than this are glued to the next one
_FIRST_CLAUSE_MIN = 4

SplitMethod = Callable[[str], str]
_METHODS: dict[str, SplitMethod] = {}


def register_method(name: str, func: SplitMethod | None = None):
    """Register a split method ``str -> str`` (pieces joined by ``"\\n"``); usable as a decorator."""

    def add(f: SplitMethod) -> SplitMethod:
        _METHODS[name] = f
        return f

    return add(func) if func is not None else add


def method_names() -> list[str]:
    return list(_METHODS)


def get_method(name: str) -> SplitMethod:
    try:
        return _METHODS[name]
    except KeyError:
        raise InvalidParameter(f"unknown text split method {name!r}; expected one of {method_names()}") from None


def split_text(text: str, method: str) -> str:
    """The raw result of a split method: the pieces of ``text`` joined by ``"\\n"``.

    Raises ``InvalidParameter`` for an unknown method and ``EmptyText`` where the official
    method crashes on an empty text (``cut1``/``cut2``).
    """
    if not isinstance(text, str):
        raise EmptyText(f"text must be a str, got {type(text).__name__}")
    return get_method(method)(text)


# --- the official methods ---


def _only(chars: frozenset[str], piece: str) -> bool:
    return all(c in chars for c in piece)


def _keep_readable(pieces: list[str], marks: frozenset[str] = _CUT_PUNCT) -> str:
    return "\n".join(p for p in pieces if not _only(marks, p))


def clauses(text: str) -> list[str]:
    """Clauses ending at a clause mark; ``……``/``——`` become ``。``/``，``, a final ``。`` is added if needed."""
    if not text:
        raise EmptyText("cannot split an empty text into clauses")
    text = text.replace("……", "。").replace("——", "，")
    if text[-1] not in CLAUSE_MARKS:
        text += "。"
    out: list[str] = []
    start = 0
    for i, ch in enumerate(text):
        if ch in CLAUSE_MARKS:
            out.append(text[start : i + 1])
            start = i + 1
    return out


@register_method("cut0")
def cut0(text: str) -> str:
    return "\n" if _only(_CUT_PUNCT, text) else text


@register_method("cut1")
def cut1(text: str) -> str:
    text = text.strip("\n")
    parts = clauses(text)
    if len(parts) <= 4:
        pieces = [text]  # unchanged text (no ……/—— replacement, no final mark)
    else:
        # groups of four; the last group also takes the remainder
        starts = list(range(0, len(parts), 4))[:-1]
        ends = starts[1:] + [len(parts)]
        pieces = ["".join(parts[a:b]) for a, b in zip(starts, ends)]
    return _keep_readable(pieces)


@register_method("cut2")
def cut2(text: str) -> str:
    text = text.strip("\n")
    parts = clauses(text)
    if len(parts) < 2:
        return text
    pieces: list[str] = []
    buf: list[str] = []
    size = 0
    for p in parts:
        buf.append(p)
        size += len(p)
        if size > 50:
            pieces.append("".join(buf))
            buf, size = [], 0
    if buf:
        pieces.append("".join(buf))
    if len(pieces) > 1 and len(pieces[-1]) < 50:
        tail = pieces.pop()
        pieces[-1] += tail
    return _keep_readable(pieces)


@register_method("cut3")
def cut3(text: str) -> str:
    return _keep_readable(text.strip("\n").strip("。").split("。"))


@register_method("cut4")
def cut4(text: str) -> str:
    return _keep_readable(_DOT_NOT_IN_NUMBER.split(text.strip("\n").strip(".")))


@register_method("cut5")
def cut5(text: str) -> str:
    text = text.strip("\n")
    pieces: list[str] = []
    start = 0
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch not in _CUT5_MARKS:
            continue
        if ch == "." and 0 < i < last and text[i - 1].isdigit() and text[i + 1].isdigit():
            continue  # decimal point
        pieces.append(text[start : i + 1])
        start = i + 1
    if start < len(text):
        pieces.append(text[start:])
    return _keep_readable(pieces, _CUT5_MARKS)


# --- pre-segmentation (what the engine feeds to the frontend) ---


def replace_consecutive_punctuation(text: str) -> str:
    """Collapse runs of ``! ? … , . -`` (any mix) to their first mark."""
    return _REPEATED_PUNCT.sub(r"\1", text)


def split_big_text(text: str, max_len: int = MAX_SEGMENT_CHARS) -> list[str]:
    """Cut a long text at clause marks into pieces of at most ``max_len`` characters where possible.

    A single clause longer than ``max_len`` stays whole; as in the official code the first
    piece is then empty.
    """
    out: list[str] = []
    buf: list[str] = []
    size = 0
    for piece in _CLAUSE_KEEP_SPLIT.split(text):
        if size + len(piece) > max_len:
            out.append("".join(buf))
            buf, size = [piece], len(piece)
        else:
            buf.append(piece)
            size += len(piece)
    if size:
        out.append("".join(buf))
    return out


def _first_clause(text: str) -> str:
    return _CLAUSE_SPLIT.split(text, maxsplit=1)[0].strip()


def _merge_short(pieces: list[str], threshold: int = MIN_MERGED_CHARS) -> list[str]:
    """Glue pieces together until each has ``threshold`` characters; a short tail joins the last one."""
    if len(pieces) < 2:
        return pieces
    out: list[str] = []
    buf: list[str] = []
    size = 0
    for p in pieces:
        buf.append(p)
        size += len(p)
        if size >= threshold:
            out.append("".join(buf))
            buf, size = [], 0
    if size:
        tail = "".join(buf)
        if out:
            out[-1] += tail
        else:
            out.append(tail)
    return out


def pieces_before_merge(text: str, method: str) -> list[str]:
    """The non-blank pieces ``presegment`` glues short ones of (``text`` already collapsed and stripped)."""
    return [p for p in _NEWLINES.sub("\n", get_method(method)(text)).split("\n") if p not in (" ", "")]


def presegment(
    text: str, language: str, method: str, *, collapse_punctuation: bool = True, first_clause_rule: bool = True
) -> list[str]:
    """Sentences of ``text`` as the official engine sends them to the frontend.

    ``language`` only chooses the added end mark: ``.`` for ``"en"``, ``。`` for anything else.
    ``first_clause_rule=False`` skips the official rule that puts an end mark in front of a text
    whose first clause is shorter than four characters (for a piece that does not start the text).
    Returns ``[]`` for a text with nothing left after splitting (as the official code does) and
    raises ``EmptyText`` where the official code raises ``ValueError`` (every piece blank).
    """
    if not isinstance(text, str):
        raise EmptyText(f"text must be a str, got {type(text).__name__}")
    split = get_method(method)
    if collapse_punctuation:
        text = replace_consecutive_punctuation(text)
    end_mark = "." if language == "en" else "。"
    text = text.strip("\n")
    if not text:
        return []
    if first_clause_rule and text[0] not in CLAUSE_MARKS and len(_first_clause(text)) < _FIRST_CLAUSE_MIN:
        text = end_mark + text
    pieces = _NEWLINES.sub("\n", split(text)).split("\n")
    if all(p in (" ", "") for p in pieces):
        raise EmptyText(f"text {text!r} has nothing to read after splitting with {method}")
    pieces = _merge_short([p for p in pieces if p not in (" ", "")])
    out: list[str] = []
    for p in pieces:
        if not p.strip() or not _NO_WORD_CHARS.sub("", p):
            continue  # blank or punctuation only
        if p[-1] not in CLAUSE_MARKS:
            p += end_mark
        if len(p) > MAX_SEGMENT_CHARS:
            out.extend(split_big_text(p))
        else:
            out.append(p)
    return out


__all__ = [
    "CLAUSE_MARKS",
    "MAX_SEGMENT_CHARS",
    "MIN_MERGED_CHARS",
    "CUT5_MARKS",
    "pieces_before_merge",
    "clauses",
    "get_method",
    "method_names",
    "presegment",
    "register_method",
    "replace_consecutive_punctuation",
    "split_big_text",
    "split_text",
]
