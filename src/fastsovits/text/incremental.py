"""Sentences closed while the text is still arriving (an LLM's tokens, a socket's deltas).

``IncrementalSplitter(language, method)`` takes text in pieces of any size (``feed``) and hands
back each sentence as soon as later text can no longer change it; ``finish()`` closes the rest.
It applies the rules of :func:`fastsovits.text.split.presegment` to the text seen so far, so for
``cut0``, ``cut3``, ``cut4`` and ``cut5`` the sentences are the ones a one-shot ``presegment`` of
the whole text returns, however the text was cut into deltas. A place where the method cuts (a
mark of the method, or a newline) is a sentence end once the character after it has arrived (a
run of ``!?…,.-`` may still grow, a ``.`` may turn out to be a decimal point); short pieces are
glued to the next one as ``presegment`` does (under ``MIN_MERGED_CHARS`` characters).

Where the stream differs from one-shot ``presegment`` of the whole text:

* ``cut1``/``cut2`` group clauses across sentences (every four clauses, or 50 characters); the stream
  does not wait for later sentences: it closes at sentence ends (``。！？!?…`` and ``.`` outside
  numbers) and applies the method inside each closed piece.
* A text that runs ``max_pending_chars`` characters without a place to cut is cut at its last
  clause mark or space before that length (else at that length); one-shot keeps it whole (up to
  ``MAX_SEGMENT_CHARS``).
* A last piece shorter than ``MIN_MERGED_CHARS`` characters is a sentence of its own; one-shot
  glues it to the sentence before, which the stream has already handed on.
"""

from __future__ import annotations

from fastsovits.errors import EmptyText, InvalidParameter
from fastsovits.text.split import (
    CLAUSE_MARKS,
    CUT5_MARKS,
    MIN_MERGED_CHARS,
    get_method,
    pieces_before_merge,
    presegment,
    replace_consecutive_punctuation,
)

SENTENCE_ENDS = frozenset("。！？!?….")  # where a stream with cut1 or cut2 closes a piece
_CUT_AT_LIMIT = CLAUSE_MARKS | frozenset("、；; \t")  # where an over-long piece is cut


def _between_digits(text: str, i: int) -> bool:
    return 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()


def is_boundary(text: str, i: int, method: str) -> bool:
    """Whether the stream may close a piece after ``text[i]`` (``text[i + 1]`` must exist)."""
    ch = text[i]
    if ch == "\n":
        return True
    if method == "cut0":
        return False
    if method == "cut3":
        return ch == "。"
    if method == "cut4":  # the official cut4 keeps a "." with a digit on either side
        return ch == "." and not text[i - 1 : i].isdigit() and not text[i + 1].isdigit()
    marks = CUT5_MARKS if method == "cut5" else SENTENCE_ENDS
    return ch in marks and not (ch == "." and _between_digits(text, i))


class IncrementalSplitter:
    """Feed text, get closed sentences (as ``presegment`` writes them) in order."""

    def __init__(self, language: str, method: str, max_pending_chars: int) -> None:
        get_method(method)  # unknown methods fail here
        if max_pending_chars < MIN_MERGED_CHARS:
            raise InvalidParameter(f"max_pending_chars={max_pending_chars} must be at least {MIN_MERGED_CHARS}")
        self.language, self.method, self.max_pending_chars = language, method, max_pending_chars
        self._pending = ""  # text not handed on yet (runs of !?….,- collapsed as presegment does)
        self._scan = 0  # first position of _pending not yet checked for a boundary
        self._first = True  # the official first-clause rule applies to the start of the text only
        self.closed = 0  # sentences handed on so far

    @property
    def pending(self) -> str:
        return self._pending

    def feed(self, delta: str) -> list[str]:
        """Add ``delta``; return the sentences it closed (often none)."""
        self._pending = replace_consecutive_punctuation(self._pending + delta)
        out: list[str] = []
        i = self._scan
        while i < len(self._pending) - 1:  # the last character waits for the one after it
            if is_boundary(self._pending, i, self.method) and self._long_enough(self._pending[: i + 1]):
                out += self._close(i + 1)
                i = 0
                continue
            i += 1
        self._scan = max(0, len(self._pending) - 1)
        while len(self._pending) > self.max_pending_chars:
            out += self._close(self._limit_cut())
            self._scan = max(0, len(self._pending) - 1)
        return out

    def finish(self) -> list[str]:
        """The end of the text: whatever is left, as sentences."""
        return self._close(len(self._pending)) if self._pending else []

    def _long_enough(self, candidate: str) -> bool:
        text = candidate.strip("\n")
        return bool(text) and sum(len(p) for p in pieces_before_merge(text, self.method)) >= MIN_MERGED_CHARS

    def _limit_cut(self) -> int:
        head = self._pending[: self.max_pending_chars]
        for j in range(len(head) - 1, MIN_MERGED_CHARS - 2, -1):
            if head[j] in _CUT_AT_LIMIT:
                return j + 1
        return len(head)

    def _close(self, end: int) -> list[str]:
        piece, self._pending = self._pending[:end], self._pending[end:]
        self._scan = 0
        first, self._first = self._first, False
        try:
            sentences = presegment(
                piece, self.language, self.method, collapse_punctuation=False, first_clause_rule=first
            )
        except EmptyText:
            return []  # blank or nothing to read: one-shot drops it too
        self.closed += len(sentences)
        return sentences


def split_incrementally(deltas: list[str], language: str, method: str, max_pending_chars: int) -> list[str]:
    """Every sentence of ``deltas`` fed one after the other (for tests and tools)."""
    splitter = IncrementalSplitter(language, method, max_pending_chars)
    out: list[str] = []
    for d in deltas:
        out += splitter.feed(d)
    return out + splitter.finish()
