"""Chinese / Cantonese normalisation: parity with every official zh/yue run, and totality."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastsovits.text.normalize.zh import normalize_yue, normalize_zh
from fastsovits.text.normalize.zh_numbers import read_cardinal, read_number, verbalize
from tests.reference import g2p_cases

RUNS = [(c, s) for c in g2p_cases() if "error" not in c for s in c["segments"] or [] if s["lang"] in ("zh", "yue")]


def _official_input(text: str) -> str:
    # clean_run replaces the first special mark (￥ then ^) by "," before normalising.
    for mark in ("￥", "^"):
        if mark in text:
            return text.replace(mark, ",")
    return text


@pytest.mark.parity
def test_every_fixture_run() -> None:
    bad = []
    for case, seg in RUNS:
        if seg["lang"] == "zh":
            got = normalize_zh(_official_input(seg["text"]), case["version"])
        else:
            got = normalize_yue(seg["text"])
        if got != seg["norm_text"]:
            bad.append(f"{case['id']} {seg['text']!r}: {got!r} != {seg['norm_text']!r}")
    assert not bad, "\n".join(bad)
    assert len(RUNS) > 0


@pytest.mark.parametrize(
    "digits,reading",
    [
        ("0", "零"),
        ("10", "十"),
        ("12", "十二"),
        ("105", "一百零五"),
        ("1000", "一千"),
        ("10010", "一万零一十"),
        ("200000000", "二亿"),
        ("007", "七"),
    ],
)
def test_cardinals(digits: str, reading: str) -> None:
    assert read_cardinal(digits) == reading


@pytest.mark.parametrize("number,reading", [("3.50", "三点五零"), (".5", "零点五"), ("2.0", "二点零"), ("12", "十二")])
def test_decimals(number: str, reading: str) -> None:
    assert read_number(number) == reading


@pytest.mark.parametrize(
    "text,reading",
    [
        ("2024年3月15日", "二零二四年三月十五日"),
        ("7:30", "七点半"),
        ("-3°C", "零下三度"),
        ("50%", "百分之五十"),
        ("3/4", "四分之三"),
        ("2个", "两个"),
        ("13800138000", "幺三八零零幺三八零零零"),
        ("x²", "x的二次方"),
    ],
)
def test_readings(text: str, reading: str) -> None:
    assert verbalize(text) == reading


def test_traditional_characters_are_simplified() -> None:
    assert normalize_zh("這是測試。") == "这是测试."
    assert normalize_yue("我哋聽日去飲茶。") == "我哋听日去饮茶."


def test_only_speakable_characters_remain() -> None:
    out = normalize_zh("Hello 你好！！？？ 😀 (测试)")
    assert set(out) <= set("你好测试!?…,.-")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_total_and_clean(text: str) -> None:
    for out in (normalize_zh(text), normalize_yue(text)):
        assert all("\u4e00" <= ch <= "\u9fa5" or ch in "!?…,.-" for ch in out)


def test_long_input() -> None:
    text = "今天是2024年3月15日，气温-3.5度，价格12.5元。" * 2000
    out = normalize_zh(text)
    assert out.count("二零二四年三月十五日") == 2000
