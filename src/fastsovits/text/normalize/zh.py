"""Chinese (Mandarin and Cantonese) text normalisation, as the official frontend does it.

``normalize_zh`` is the official ``text_normalize`` of the v1/v2 Mandarin modules (they agree),
``normalize_yue`` that of the Cantonese module. Both: split the text into clauses, per clause
map traditional to simplified characters and full-width ASCII to half-width, read numbers
(``zh_numbers.verbalize``), spell out symbols and Greek letters, then map punctuation to the
model's marks and drop every other non-Chinese character. Mandarin also folds 嗯/呣 and runs of
punctuation.
"""

from __future__ import annotations

import json
import re
import threading

from fastsovits.text.normalize.zh_numbers import verbalize

# The symbol table's punctuation marks: everything else that is not a CJK ideograph is dropped.
MARKS = "!?…,.-"

_CLAUSE_END = re.compile(r"([：、，；。？！,;?!][”’]?)")
_CLAUSE_DROP = re.compile(r"[——《》【】<>{}()（）#&@“”^_|\\]")
_LATE_DROP = re.compile(r"[-——《》【】<=>{}()（）#&@“”^_|\\]")
_NOT_SPEAKABLE = re.compile(r"[^\u4e00-\u9fa5" + re.escape(MARKS) + r"]+")
_REPEATED_MARKS = re.compile(f"([{re.escape(MARKS)}])([{re.escape(MARKS)}])+")
_FULL_WIDTH = {c + 0xFEE0: c for c in range(ord("0"), ord("9") + 1)}
_FULL_WIDTH.update({c + 0xFEE0: c for c in [*range(ord("A"), ord("Z") + 1), *range(ord("a"), ord("z") + 1)]})
_FULL_WIDTH[0x3000] = ord(" ")

# Characters spelled out after the numbers are read (circled numbers, Greek, operators).
_SPELLED = {
    "/": "每",
    "①": "一",
    "②": "二",
    "③": "三",
    "④": "四",
    "⑤": "五",
    "⑥": "六",
    "⑦": "七",
    "⑧": "八",
    "⑨": "九",
    "⑩": "十",
    "α": "阿尔法",
    "β": "贝塔",
    "γ": "伽玛",
    "Γ": "伽玛",
    "δ": "德尔塔",
    "Δ": "德尔塔",
    "ε": "艾普西龙",
    "ζ": "捷塔",
    "η": "依塔",
    "θ": "西塔",
    "Θ": "西塔",
    "ι": "艾欧塔",
    "κ": "喀帕",
    "λ": "拉姆达",
    "Λ": "拉姆达",
    "μ": "缪",
    "ν": "拗",
    "ξ": "克西",
    "Ξ": "克西",
    "ο": "欧米克伦",
    "π": "派",
    "Π": "派",
    "ρ": "肉",
    "ς": "西格玛",
    "Σ": "西格玛",
    "σ": "西格玛",
    "τ": "套",
    "υ": "宇普西龙",
    "φ": "服艾",
    "Φ": "服艾",
    "χ": "器",
    "ψ": "普赛",
    "Ψ": "普赛",
    "ω": "欧米伽",
    "Ω": "欧米伽",
    "+": "加",
    "-": "减",
    "×": "乘",
    "÷": "除",
    "=": "等",
}
_SPELLED_TABLE = str.maketrans(_SPELLED)

# Punctuation -> model marks. Mandarin and Cantonese differ (Cantonese turns quotes and
# brackets into "'", which is then dropped). "..." is the only multi-character key.
_MANDARIN_MARKS = {
    "：": ",",
    "；": ",",
    "，": ",",
    "。": ".",
    "！": "!",
    "？": "?",
    "\n": ".",
    "·": ",",
    "、": ",",
    "...": "…",
    "$": ".",
    "/": ",",
    "—": "-",
    "~": "…",
    "～": "…",
}
_CANTONESE_MARKS = {
    "：": ",",
    "；": ",",
    "，": ",",
    "。": ".",
    "！": "!",
    "？": "?",
    "\n": ".",
    "·": ",",
    "、": ",",
    "...": "…",
    "$": ".",
    "“": "'",
    "”": "'",
    '"': "'",
    "‘": "'",
    "’": "'",
    "（": "'",
    "）": "'",
    "(": "'",
    ")": "'",
    "《": "'",
    "》": "'",
    "【": "'",
    "】": "'",
    "[": "'",
    "]": "'",
    "—": "-",
    "～": "-",
    "~": "-",
    "「": "'",
    "」": "'",
}


def _mark_pattern(table: dict[str, str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(k) for k in table))


_MANDARIN_RE = _mark_pattern(_MANDARIN_MARKS)
_CANTONESE_RE = _mark_pattern(_CANTONESE_MARKS)

_t2s_lock = threading.Lock()
_t2s: dict[int, str] | None = None


def _traditional_to_simplified() -> dict[int, str]:
    """The official character table (from the installed text data), loaded once."""
    global _t2s
    if _t2s is None:
        with _t2s_lock:
            if _t2s is None:
                from fastsovits.text.assets import T2S_TABLE, data_file

                data = json.loads(data_file(T2S_TABLE).read_text("utf-8"))
                table: dict[int, str] = {}
                for simple, traditional in zip(data["simplified"], data["traditional"]):
                    table[ord(traditional)] = simple  # a later pair wins, as in the official table
                _t2s = table
    return _t2s


def clauses(text: str) -> list[str]:
    """Split into clauses after clause punctuation (spaces and bracket-like marks removed first)."""
    text = _CLAUSE_DROP.sub("", text.replace(" ", ""))
    text = _CLAUSE_END.sub(r"\1\n", text).strip()
    return [c.strip() for c in re.split(r"\n+", text)]


def normalize_clause(clause: str) -> str:
    """Characters, numbers and symbols of one clause, read in Chinese."""
    clause = clause.translate(_traditional_to_simplified()).translate(_FULL_WIDTH)
    clause = verbalize(clause)
    return _LATE_DROP.sub("", clause.translate(_SPELLED_TABLE))


def _to_marks(clause: str, table: dict[str, str], pattern: re.Pattern[str]) -> str:
    clause = pattern.sub(lambda m: table[m.group(0)], clause)
    return _NOT_SPEAKABLE.sub("", clause)


def normalize_zh(text: str, version: str = "v2") -> str:
    """The official Mandarin ``text_normalize`` (identical for v1 and v2)."""
    del version  # v1 and v2 normalise alike; kept so callers need not care
    out = "".join(
        _to_marks(normalize_clause(c).replace("嗯", "恩").replace("呣", "母"), _MANDARIN_MARKS, _MANDARIN_RE)
        for c in clauses(text)
    )
    return _REPEATED_MARKS.sub(r"\1", out)


def normalize_yue(text: str) -> str:
    """The official Cantonese ``text_normalize``."""
    return "".join(_to_marks(normalize_clause(c), _CANTONESE_MARKS, _CANTONESE_RE) for c in clauses(text))
