"""English text normalisation with parity to the official ``english.text_normalize``.

The official normaliser (``text/english.py`` + ``text/en_normalization/expend.py``) is a fixed
chain of regular-expression rewrites. We keep the chain and its order, because later rules read
the output of earlier ones (``$1,250`` -> ``$1250`` -> ``1250 dollars`` -> ``twelve fifty
dollars``):

1. a few literal full-width marks are mapped to ASCII (only the exact keys of the official table
   match, so ``;`` and ``:`` are *not* turned into commas; they are dropped later);
2. ``1. `` at a word start becomes ``1st, `` (list numbering read as an ordinal);
3. arithmetic ``a + b``, ``a - b``, ``a × b``, ``a ÷ b``, ``a = b`` (spaces around the operator)
   becomes words, repeatedly; a ``-`` before digits at the text start or after whitespace
   becomes ``negative `` and takes the whitespace before it away (``to -15`` -> ``tonegative 15``);
4. thousands separators, clock times, unit suffixes, pounds, dollars, decimals, fractions,
   ordinals and finally every digit run are spelled out with ``inflect``; numbers between 1000
   and 3000 are read as years;
5. accents are stripped, ``%`` is read, everything but ``A-Z a-z ' . , ? ! -`` and spaces is
   removed, ``i.e.``/``e.g.`` are expanded and an upper-case letter glued to a previous
   non-space character is split off (``NASA`` -> ``N A S A``, ``iPhone`` -> ``i Phone``);
6. a run of marks after a mark or whitespace is cut back to that first character.

Linear time: several official patterns backtrack polynomially on long digit or whitespace runs
(``([0-9.,]*[0-9]+)£`` is cubic: a few thousand digits take hours). Ours add a look-behind that
lets a match start only where a run starts, and drop the ambiguous ``*``/``+`` split before a
currency sign. A leftmost match of those patterns always starts at a run start anyway, so the
matches and the output are the same (checked differentially on random strings in the tests).

Inputs on which the official code crashes (a number too large for ``inflect``, ``$,5``, ``(5$``)
raise :class:`~fastsovits.errors.InvalidInput` here.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Any

from fastsovits.errors import InvalidInput

# Step 1: exact strings of the official mapping table (its bracketed keys are matched literally).
_LITERAL_MARKS = {"[;:：，；]": ",", '["’]': "'", "。": ".", "！": "!", "？": "?"}
_LITERAL_MARKS_RE = re.compile("|".join(re.escape(k) for k in _LITERAL_MARKS))

_LIST_NUMBER = re.compile(r"\b([0-9]+)\. ")

# Step 3: an operand is a (signed) number, a bare fraction part or one letter, each with an
# optional run of superscripts; the operator needs whitespace on both sides.
_SUPERSCRIPTS = "[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*"
_OPERAND = rf"(?:-?\d+(?:\.\d+)?{_SUPERSCRIPTS}|\.\d+{_SUPERSCRIPTS}|[A-Za-z]{_SUPERSCRIPTS})"
# The left operand's digits may only start a digit run (see "Linear time" above).
_LEFT_OPERAND = _OPERAND.replace(r"-?\d+", r"-?(?<!\d)\d+", 1)
_ARITHMETIC = re.compile(rf"(?P<left>{_LEFT_OPERAND})\s+(?P<op>[-+×÷=])\s+(?P<right>{_OPERAND})")
_OPERATOR_WORDS = {"+": " plus ", "-": " minus ", "×": " times ", "÷": " divided by ", "=": " Equals "}
_NEGATIVE = re.compile(r"(?:^|(?<!\s)\s+)-(\d+)")

# Step 4.
_GROUPED_NUMBER = re.compile(r"([0-9][0-9,]+[0-9])")
_CLOCK = re.compile(r"\b([01]?[0-9]|2[0-3]):([0-5][0-9])\b")
_UNITS = {  # suffix -> (singular, plural); the alternation order below matters
    "m": ("meter", "meters"),
    "km": ("kilometer", "kilometers"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "ft": ("feet", "feet"),
    "L": ("liter", "liters"),
    "tbsp": ("tablespoon", "tablespoons"),
    "tsp": ("teaspoon", "teaspoons"),
    "h": ("hour", "hours"),
    "min": ("minute", "minutes"),
    "s": ("second", "seconds"),
    "°C": ("degree celsius", "degrees celsius"),
    "°F": ("degree fahrenheit", "degrees fahrenheit"),
}
_MEASURE = re.compile(r"\b([0-9]+(\.[0-9]+)?(" + "|".join(_UNITS) + r"))\b")
_MONEY_AMOUNT = r"[0-9.,]*[0-9]+"
_MONEY_AMOUNT_BEFORE = r"(?<![0-9.,])[0-9.,]*[0-9]"  # same matches as _MONEY_AMOUNT before a sign
# (pattern, main unit, sub unit, text for a zero amount), applied in this order.
_POUND = (("pound", "pounds"), ("penny", "pence"), "zero pounds")
_DOLLAR = (("dollar", "dollars"), ("cent", "cents"), "zero dollars")
_MONEY_RULES = (
    (re.compile(rf"£({_MONEY_AMOUNT})"), _POUND),
    (re.compile(rf"({_MONEY_AMOUNT_BEFORE})£"), _POUND),
    (re.compile(rf"\$({_MONEY_AMOUNT})"), _DOLLAR),
    (re.compile(r"((?<![(0-9.,])[(0-9.,]*[0-9])\$"), _DOLLAR),  # the official pattern also admits "("
)
_DECIMAL = re.compile(r"((?<![0-9])[0-9]+\.\s*[0-9]+)")
_FRACTION = re.compile(r"((?<![0-9])[0-9]+/[0-9]+)")
_ORDINAL = re.compile(r"(?<![0-9])[0-9]+(st|nd|rd|th)")
_DIGITS = re.compile(r"[0-9]+")

# Step 5.
_NOT_SPOKEN = re.compile(r"[^ A-Za-z'.,?!\-]")
_IE = re.compile(r"(?i)i\.e\.")
_EG = re.compile(r"(?i)e\.g\.")
_GLUED_CAPITAL = re.compile(r"(?<=\S)([A-Z])")

# Step 6: the official punctuation list is ! ? … , . -
_REPEATED_MARKS = re.compile(r"([!?…,.\-\s])([!?…,.\-])+")


class _Inflect:
    """One shared ``inflect`` engine, built on first use; calls are serialised (it keeps state)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine: Any = None
        self._errors: tuple[type[BaseException], ...] = (ValueError,)

    def _get(self) -> Any:
        if self._engine is None:
            import inflect  # slow import (typeguard); deferred until English text is met

            self._engine = inflect.engine()
            self._errors = (ValueError, inflect.NumOutOfRangeError)
        return self._engine

    def words(self, num: int | str, **options: Any) -> str:
        with self._lock:
            engine = self._get()
            try:
                return engine.number_to_words(num, **options)
            except self._errors as e:
                raise InvalidInput(f"cannot read the number {str(num)[:40]!r} in English text: {e}") from None

    def ordinal(self, num: str) -> str:
        with self._lock:
            engine = self._get()
            try:
                return engine.ordinal(num)
            except self._errors as e:
                raise InvalidInput(f"cannot read the ordinal {num[:40]!r} in English text: {e}") from None


_inflect = _Inflect()


def _int(digits: str) -> int:
    try:
        return int(digits)
    except ValueError:
        raise InvalidInput(f"cannot read {digits[:40]!r} as a number in English text") from None


def _list_number(m: re.Match[str]) -> str:
    return _inflect.ordinal(m.group(1)) + ", "


def _arithmetic(m: re.Match[str]) -> str:
    return m.group("left") + _OPERATOR_WORDS[m.group("op")] + m.group("right")


def _clock(m: re.Match[str]) -> str:
    hour, minute = _int(m.group(1)), _int(m.group(2))
    half = "a.m." if hour < 12 else "p.m."
    if hour > 12:
        hour -= 12
    if minute == 0:
        return f"{_inflect.words(hour)} o'clock {half}"
    return f"{_inflect.words(hour)} {_inflect.words(minute)} {half}"


def _measure(m: re.Match[str]) -> str:
    amount, fraction, unit = m.group(1), m.group(2), m.group(3)
    singular, plural = _UNITS[unit]
    # The official rule drops the unit and the dot and compares the remaining digits with 1.
    one = fraction is None and _int(amount.replace(unit, "").replace(".", "")) == 1
    return amount.replace(unit, " " + (singular if one else plural))


def _money(amount: str, main: tuple[str, str], sub: tuple[str, str], zero: str) -> str:
    parts = amount.split(".")
    if len(parts) > 2:
        return f"{amount} {main[1]}"
    whole = _int(parts[0]) if parts[0] else 0
    cents = _int(parts[1].ljust(2, "0")) if len(parts) > 1 and parts[1] else 0
    said = []
    if whole:
        said.append(f"{whole} {main[0] if whole == 1 else main[1]}")
    if cents:
        said.append(f"{cents} {sub[0] if cents == 1 else sub[1]}")
    return " and ".join(said) if said else zero


def _decimal(m: re.Match[str]) -> str:
    whole, _, rest = m.group(1).partition(".")
    return whole + " point " + " ".join(rest)  # every character after the dot, spaces included


def _fraction(m: re.Match[str]) -> str:
    top_text, _, bottom_text = m.group(0).partition("/")
    top, bottom = _int(top_text), _int(bottom_text)
    said_top = _inflect.words(top)
    if bottom == 1:
        return said_top
    if bottom == 2:
        said_bottom = "half" if top == 1 else "halves"
    else:
        said_bottom = _inflect.ordinal(_inflect.words(bottom)) + ("s" if top > 1 else "")
    return f"{said_top} {said_bottom}"


def _ordinal(m: re.Match[str]) -> str:
    return _inflect.words(m.group(0))


def _number(m: re.Match[str]) -> str:
    num = _int(m.group(0))
    if 1000 < num < 3000:  # read like a year
        if num == 2000:
            return "two thousand"
        if 2000 < num < 2010:
            return "two thousand " + _inflect.words(num % 100)
        if num % 100 == 0:
            return _inflect.words(num // 100) + " hundred"
        return _inflect.words(num, andword="", zero="oh", group=2).replace(", ", " ")
    return _inflect.words(num, andword="")


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def expand(text: str) -> str:
    """Numbers, symbols, accents and abbreviations to speakable ASCII (official ``expend.normalize``)."""
    text = _LIST_NUMBER.sub(_list_number, text)
    while _ARITHMETIC.search(text):
        text = _ARITHMETIC.sub(_arithmetic, text)
    text = _NEGATIVE.sub(lambda m: "negative " + m.group(1), text)
    text = _GROUPED_NUMBER.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _CLOCK.sub(_clock, text)
    text = _MEASURE.sub(_measure, text)
    for pattern, (main, sub, zero) in _MONEY_RULES:
        text = pattern.sub(lambda m, a=main, b=sub, z=zero: _money(m.group(1), a, b, z), text)
    text = _DECIMAL.sub(_decimal, text)
    text = _FRACTION.sub(_fraction, text)
    text = _ORDINAL.sub(_ordinal, text)
    text = _DIGITS.sub(_number, text)
    text = _strip_accents(text)
    text = text.replace("%", " percent")
    text = _NOT_SPOKEN.sub("", text)
    text = _IE.sub("that is", text)
    text = _EG.sub("for example", text)
    return _GLUED_CAPITAL.sub(r" \1", text)


def normalize_en(text: str) -> str:
    """The official English ``text_normalize``: mark mapping, :func:`expand`, repeated marks cut."""
    if not isinstance(text, str):
        raise InvalidInput(f"text must be a str, got {type(text).__name__}")
    text = _LITERAL_MARKS_RE.sub(lambda m: _LITERAL_MARKS[m.group()], text)
    text = expand(text)
    return _REPEATED_MARKS.sub(r"\1", text)
