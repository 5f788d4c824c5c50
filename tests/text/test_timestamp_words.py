"""Phones per word (per character for zh/ja) for timestamps: counts add up and follow the G2P."""

from __future__ import annotations

import pytest

from fastsovits.text import phonemize
from fastsovits.text.words import word_units

CASES = [
    ("zh", "你好，世界。今天123元。"),
    ("en", "Hello there, world! It is 23 degrees."),
    ("en", "Hi."),
    ("ja", "こんにちは、世界。東京へ行きます！"),
    ("ko", "안녕하세요 세계. 반갑습니다!"),
    ("auto", "你好 world 测试。"),
]


@pytest.mark.parametrize(("language", "text"), CASES)
def test_timestamp_word_units_cover_every_phone(language: str, text: str) -> None:
    ph = phonemize(text, language, "v2")
    units = word_units(ph)
    assert sum(u.phones for u in units) == len(ph.phones)
    assert all(u.phones >= 0 for u in units) and any(u.is_word for u in units)
    assert "".join(u.text for u in units).replace(" ", "") == ph.norm_text.replace(" ", "")


def test_timestamp_word_units_follow_the_g2p() -> None:
    zh = phonemize("你好，世界。", "zh", "v2")
    assert [(u.text, u.phones) for u in word_units(zh)] == list(zip(zh.norm_text, zh.word2ph))
    en = word_units(phonemize("Hello there, world!", "en", "v2"))
    assert [(u.text, u.phones, u.is_word) for u in en] == [
        ("Hello", 4, True),
        ("there", 3, True),
        (",", 1, False),
        ("world", 4, True),
        ("!", 1, False),
    ]
    ko = word_units(phonemize("안녕하세요 세계.", "ko", "v2"))
    assert [u.text for u in ko if u.is_word] == ["안녕하세요", "세계."] and ko[1].phones == 1  # the space phone
    ja = word_units(phonemize("こんにちは、世界。", "ja", "v2"))
    assert [u.text for u in ja if u.is_word] == list("こんにちは世界")  # characters, marks apart
    assert [u.phones for u in ja if not u.is_word] == [1, 1]
