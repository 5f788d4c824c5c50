"""Korean frontend: parity with the official runs, Latin spelling, no network/pip, bad input."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastsovits.errors import InvalidInput, MissingDependency, UnsupportedCharacters, UnsupportedLanguage
from fastsovits.text.symbols import symbol_to_id
from tests.reference import g2p_cases

pytest.importorskip("g2pk2")
pytest.importorskip("mecab")

from fastsovits.text.g2p import ko  # noqa: E402

CASES = g2p_cases()
KO_RUNS = [
    (c, s)
    for c in CASES
    if "error" not in c and c["version"] == "v2"
    for s in c.get("segments") or []
    if s["lang"] == "ko"
]
TABLE = symbol_to_id("v2")


@pytest.fixture(scope="module")
def fe() -> ko.KoreanFrontend:
    return ko.load("v2")


def _case(case_id: str) -> dict:
    return next(c for c in CASES if c["id"] == case_id)


@pytest.mark.parity
def test_every_official_korean_run(fe: ko.KoreanFrontend) -> None:
    assert len(KO_RUNS) >= 40
    bad = []
    for case, seg in KO_RUNS:
        norm = fe.normalize(seg["text"])
        phones, word2ph = fe.g2p(norm)
        if norm != seg["norm_text"] or phones != seg["phones"] or word2ph is not None:
            bad.append(f"{case['id']} {seg['text']!r}: {' '.join(phones)} != {' '.join(seg['phones'])}")
    assert not bad, "\n".join(bad)


@pytest.mark.parity
def test_official_quirks_are_kept(fe: ko.KoreanFrontend) -> None:
    # v2-ko-033: a text ending in a jamo gets a final "."; v2-ko-031: '"' is a pause "停".
    for case_id in ("v2-ko-033", "v2-ko-031", "v2-ko-026", "v2-mix-061"):
        seg = _case(case_id)["segments"][0]
        assert fe.g2p(seg["text"])[0] == seg["phones"], case_id
    assert fe.g2p("사랑해")[0][-1] == "."
    assert fe.g2p("사랑해!")[0][-1] == "!"


def test_latin_letters_are_spelled_in_hangul(fe: ko.KoreanFrontend) -> None:
    # The official table: letter names in Hangul, case-insensitive (also the Kelvin sign K).
    assert ko.spell_latin("KTX") == "케이티엑스"
    assert ko.spell_latin("wz") == "더블유제트"
    assert ko.spell_latin("\u212a") == ko.spell_latin("k")
    assert fe.g2p("KTX를 타요")[0] == fe.g2p("케이티엑스를 타요")[0]
    assert fe.g2p("Python")[0] == fe.g2p("pYTHON")[0]


def test_space_and_unknown_characters(fe: ko.KoreanFrontend) -> None:
    phones, _ = fe.g2p("가 나")
    assert "空" in phones
    assert fe.g2p("你")[0] == ["停"]
    assert fe.g2p("é")[0] == ["停"]
    assert fe.g2p("")[0] == []


def test_overlong_number_before_bound_noun_is_a_typed_error(fe: ko.KoreanFrontend) -> None:
    # The official g2pK crashes (UnboundLocalError) on more than 16 digits before a counter.
    with pytest.raises(InvalidInput, match="digits"):
        fe.g2p("12345678901234567개")
    assert fe.g2p("1234567890123456개")[0]  # 16 digits are fine
    assert fe.g2p("12345678901234567")[0]  # read digit by digit without a counter


def test_lone_surrogate_is_rejected(fe: ko.KoreanFrontend) -> None:
    with pytest.raises(UnsupportedCharacters):
        fe.g2p("안녕\ud800")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_random_unicode_never_crashes(fe: ko.KoreanFrontend, text: str) -> None:
    try:
        phones, word2ph = fe.g2p(text)
    except InvalidInput:
        return
    assert word2ph is None
    assert all(p in TABLE for p in phones)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from("가나다라마바사아자차카타파하한국어를을은는 .,!?0123456789개"), max_size=25))
def test_random_korean_gives_table_phones(fe: ko.KoreanFrontend, text: str) -> None:
    phones, _ = fe.g2p(text)
    assert all(p in TABLE for p in phones)


def test_threads_agree(fe: ko.KoreanFrontend) -> None:
    texts = [s["text"] for _, s in KO_RUNS[:20]] * 4
    expected = [fe.g2p(t)[0] for t in texts]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda t: fe.g2p(t)[0], texts))
    assert got == expected


def test_v1_has_no_korean() -> None:
    with pytest.raises(UnsupportedLanguage):
        ko.load("v1")
    assert ko.load("v2") is ko.load("v2Pro")


def test_missing_mecab_is_a_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mecab", None)
    with pytest.raises(MissingDependency) as err:
        ko.KoreanFrontend().g2p("안녕")
    assert err.value.extra == "ko"


def test_no_download_and_no_pip_in_a_fresh_process() -> None:
    """g2pk2 must neither reach nltk.download nor start pip, and nltk.download is restored."""
    code = textwrap.dedent(
        """
        import subprocess, nltk
        calls = []
        def record(*a, **k):
            calls.append((a, k))
            raise AssertionError("network")
        nltk.download = record
        subprocess.Popen = record
        from fastsovits.text.g2p import ko
        phones, _ = ko.load("v2").g2p("저는 KTX를 타고 3개 샀어요.")
        assert phones and not calls, calls
        assert nltk.download is record
        print("OK")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout
