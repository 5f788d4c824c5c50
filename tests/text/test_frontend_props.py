"""The frontend is total: any text gives a correct result or a typed InvalidInput, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastsovits.errors import EmptyText, InvalidInput, TextTooLong, UnsupportedLanguage
from fastsovits.text import phonemize
from fastsovits.text.frontend import MODES
from fastsovits.text.symbols import symbols

# Characters from every script the frontend meets, plus digits, punctuation, symbols and controls.
ALPHABET = st.sampled_from(
    list("你好世界银行长的了一二三四五六七八九十年月日点度")
    + list("こんにちはカタカナ日本語です")
    + list("안녕하세요반갑습니다")
    + list("abcdefghijklmnopqrstuvwxyzABCXYZ")
    + list("0123456789")
    + list(" ，。！？、；：…—,.!?;:-'\"()[]{}%$€£¥￥^@#&*+=/\\<>~_|")
    + ["\n", "\t", "\x00", "\u200b", "😀", "é", "ß", "Ω", "乄"]
)
TEXTS = st.text(ALPHABET, min_size=0, max_size=40)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_total(text: str, lang: str, version: str) -> None:
    try:
        res = phonemize(text, lang, version)
    except InvalidInput:
        return
    table = symbols(version)
    assert res.phones, "a result always has phones"
    assert len(res.phones) == len(res.phone_ids)
    assert all(0 <= i < len(table) for i in res.phone_ids)
    assert [table[i] for i in res.phone_ids] == res.phones
    if res.word2ph is not None:
        assert sum(res.word2ph) == len(res.phones)


@pytest.mark.parametrize("lang", MODES["v2"])
@SETTINGS
@given(text=TEXTS)
def test_v2_total(lang: str, text: str) -> None:
    _check_total(text, lang, "v2")


@pytest.mark.parametrize("lang", MODES["v1"])
@SETTINGS
@given(text=TEXTS)
def test_v1_total(lang: str, text: str) -> None:
    _check_total(text, lang, "v1")


@pytest.mark.parametrize("lang", ["zh", "ja", "auto", "all_ko", "yue"])
@pytest.mark.parametrize("text", ["", " ", "   ", "\n\t"])
def test_empty_is_typed(text: str, lang: str) -> None:
    with pytest.raises(EmptyText):
        phonemize(text, lang)


@pytest.mark.parametrize(
    "text,lang",
    [
        ("", "en"),
        (" ", "en"),
        ("!!!", "en"),
        ("...", "en"),
        ("。", "zh"),
        ("……", "zh"),
        ("！？", "zh"),
        ("、、、", "ja"),
        ("...", "ko"),
        ("这是中文。", "en"),
        ("안녕하세요", "v1:zh"),
    ],
)
def test_nothing_to_read_is_empty_text(text: str, lang: str) -> None:
    """Blank text, and text that normalises to only pauses, raise EmptyText (the official frontend
    returns a bare pause such as ', .' for some of them)."""
    version, lang = lang.split(":") if ":" in lang else ("v2", lang)
    with pytest.raises(EmptyText, match="nothing to read|empty"):
        phonemize(text, lang if version == "v2" else "auto", version)


def test_short_text_with_speech_still_reads() -> None:
    assert phonemize("Hi!", "en").phones[-1] == "!" and phonemize("好。", "zh").phones


@pytest.mark.parametrize("lang,version", [("fr", "v2"), ("ko", "v1"), ("yue", "v1"), ("", "v2"), ("zh", "v7")])
def test_unknown_language_or_version(lang: str, version: str) -> None:
    with pytest.raises(UnsupportedLanguage):
        phonemize("你好", lang, version)


@pytest.mark.parametrize("text", ["！？。，", "...", "@#$%^&*", "\x00\x01\x02", "😀😀", "中文English日本語한국어"])
@pytest.mark.parametrize("lang", ["zh", "en", "ja", "auto"])
def test_odd_input_never_crashes(text: str, lang: str) -> None:
    _check_total(text, lang, "v2")


def test_huge_text_is_refused_quickly() -> None:
    with pytest.raises(TextTooLong):
        phonemize("你好。" * 400_000, "zh")  # 1.2 M characters


def test_long_sentence_scales() -> None:
    """A 20k-character sentence is read (no recursion blow-up)."""
    res = phonemize("我们一起去银行，今天天气很好。" * 1400, "zh")
    assert len(res.phones) > 20_000
