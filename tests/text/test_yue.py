"""Cantonese frontend: parity with the official runs, unreadable characters, bad input."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastsovits.errors import InvalidInput, MissingDependency, UnsupportedCharacters, UnsupportedLanguage
from fastsovits.text.symbols import symbol_to_id
from tests.reference import g2p_cases

pytest.importorskip("ToJyutping")

from fastsovits.text.g2p import yue  # noqa: E402

CASES = g2p_cases()
YUE_RUNS = [(c, s) for c in CASES if "error" not in c for s in c.get("segments") or [] if s["lang"] == "yue"]
TABLE = symbol_to_id("v2")


def _has_normalizer() -> bool:
    try:
        if importlib.util.find_spec("fastsovits.text.normalize.zh") is None:
            return False
    except ImportError:
        return False
    return hasattr(importlib.import_module("fastsovits.text.normalize.zh"), "normalize_yue")


@pytest.fixture(scope="module")
def fe() -> yue.CantoneseFrontend:
    return yue.load("v2")


def _table_phones(phones: list[str]) -> list[str]:
    return [p if p in TABLE else "UNK" for p in phones]


@pytest.mark.parity
def test_g2p_of_every_official_norm_text(fe: yue.CantoneseFrontend) -> None:
    assert len(YUE_RUNS) >= 40
    bad = []
    for case, seg in YUE_RUNS:
        phones, word2ph = fe.g2p(seg["norm_text"])
        if _table_phones(phones) != seg["phones"] or word2ph != seg["word2ph"]:
            bad.append(f"{case['id']} {seg['norm_text']!r}: {phones} {word2ph}")
    assert not bad, "\n".join(bad)


@pytest.mark.parity
@pytest.mark.skipif(not _has_normalizer(), reason="fastsovits.text.normalize.zh.normalize_yue not built yet")
def test_every_official_run_with_normalizer(fe: yue.CantoneseFrontend) -> None:
    bad = []
    for case, seg in YUE_RUNS:
        norm = fe.normalize(seg["text"])
        phones, word2ph = fe.g2p(norm)
        if norm != seg["norm_text"] or _table_phones(phones) != seg["phones"] or word2ph != seg["word2ph"]:
            bad.append(f"{case['id']} {seg['text']!r}: {norm!r} {phones} {word2ph}")
    assert not bad, "\n".join(bad)


@pytest.mark.skipif(not _has_normalizer(), reason="fastsovits.text.normalize.zh.normalize_yue not built yet")
def test_official_crash_case_is_a_typed_error(fe: yue.CantoneseFrontend) -> None:
    case = next(c for c in CASES if c["id"] == "v2-yue-041")  # official: TypeError in get_jyutping
    assert case["error"] == "TypeError"
    with pytest.raises(UnsupportedCharacters, match="乄"):
        fe.g2p(fe.normalize(case["text"]))


def test_unreadable_characters_are_named(fe: yue.CantoneseFrontend) -> None:
    with pytest.raises(UnsupportedCharacters, match="乄"):
        fe.g2p("佢寫咗個乄字.")
    # Characters the normaliser would have removed have no reading either.
    with pytest.raises(UnsupportedCharacters, match="a"):
        fe.g2p("你a好")
    # 噎 reads "ik1" inside 打噎: no initial fits; the official code drops it and fails its check.
    with pytest.raises(UnsupportedCharacters, match="噎"):
        fe.g2p("打噎")
    with pytest.raises(UnsupportedCharacters):
        fe.g2p("好\ud800")


def test_punctuation_and_syllable_shapes(fe: yue.CantoneseFrontend) -> None:
    assert yue.split_syllable("aa3") == ("aa", "a3")
    assert yue.split_syllable("m4") == ("m", "m4")
    assert yue.split_syllable("ngo5") == ("ng", "o5")
    assert yue.split_syllable("ik1") is None
    assert yue.split_syllable("nei") is None
    phones, word2ph = fe.g2p("!?…,.-")
    assert phones == list("!?…,.-") and word2ph == [1] * 6
    # A two-syllable unit character stays one character with 2 phones; its final is not a symbol.
    phones, word2ph = fe.g2p("瓩")
    assert word2ph == [2] and phones[0] in TABLE and phones[1] not in TABLE


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=30))
def test_random_unicode_never_crashes(fe: yue.CantoneseFrontend, text: str) -> None:
    try:
        phones, word2ph = fe.g2p(text)
    except InvalidInput:
        return
    assert len(word2ph) == len(text)
    assert sum(word2ph) == len(phones)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), max_size=20))
def test_random_cjk_aligns(fe: yue.CantoneseFrontend, text: str) -> None:
    try:
        phones, word2ph = fe.g2p(text)
    except UnsupportedCharacters:
        return
    assert len(word2ph) == len(text) and sum(word2ph) == len(phones)
    assert all(p.startswith("Y") for p in phones)


def test_v1_has_no_cantonese() -> None:
    with pytest.raises(UnsupportedLanguage):
        yue.load("v1")
    assert yue.load("v2") is yue.load("v4")


def test_missing_tojyutping_is_a_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ToJyutping", None)
    with pytest.raises(MissingDependency) as err:
        yue.CantoneseFrontend().g2p("你好")
    assert err.value.extra == "yue"
