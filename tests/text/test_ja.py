"""Japanese frontend: parity with the official runs, user dictionary, limits and bad input."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from fastsovits.errors import MissingDependency, MissingResource, TextTooLong, UnsupportedCharacters
from fastsovits.text.g2p import ja
from tests.reference import g2p_cases
from tests.text.parity import check_run

pytest.importorskip("pyopenjtalk")


def _ready() -> str | None:
    from fastsovits.text.assets import data_file
    from fastsovits.text.g2p import ja_openjtalk

    try:
        ja_openjtalk.system_dict_dir()
        data_file(ja_openjtalk.USERDICT_CSV)
    except MissingResource as e:
        return str(e)
    return None


_why_not = _ready()
needs_jtalk = pytest.mark.skipif(_why_not is not None, reason=f"Open JTalk resources missing: {_why_not}")

CASES = g2p_cases()
JA_RUNS = [(c, s) for c in CASES if "error" not in c for s in c.get("segments") or [] if s["lang"] == "ja"]
PROSODY = {"[", "]", "#", "_"}


def _case(case_id: str) -> dict:
    return next(c for c in CASES if c["id"] == case_id)


# --- parity -----------------------------------------------------------------------------


@needs_jtalk
@pytest.mark.parity
def test_every_official_ja_run_matches() -> None:
    assert JA_RUNS, "no Japanese runs in the fixtures"
    assert {c["version"] for c, _ in JA_RUNS} == {"v1", "v2"}
    bad = [(c["id"], s["text"], d) for c, s in JA_RUNS if (d := check_run(c, s))]
    assert not bad, "\n".join(map(str, bad))


@pytest.mark.parametrize(
    ("raw", "want"),
    [("えっと……何だっけ？", "えっと…何だっけ？"), ("本当!?!", "本当!"), ("a,.-b", "a,b"), ("そう。。。", "そう。。。")],
)
def test_normalize_collapses_official_punctuation_only(raw: str, want: str) -> None:
    assert ja.normalize(raw) == want


def test_normalize_matches_fixture_norm_text() -> None:
    for _, s in JA_RUNS:
        assert ja.normalize(s["text"]) == s["norm_text"]


# --- user dictionary --------------------------------------------------------------------


@needs_jtalk
def test_official_user_dictionary_is_in_effect() -> None:
    from fastsovits.text.frontend import clean_run

    case = _case("v2-ja-048")  # 主殿、お待ちしておりました。 (category ja.userdic)
    assert clean_run(case["text"], "ja", "v2").phones == case["phones"]
    phones, word2ph = ja.load("v2").g2p(ja.normalize(case["text"]))
    assert word2ph is None
    head = [p for p in phones[: phones.index(",")] if p not in PROSODY]
    assert head == "a r u j i d o n o".split()  # the reading the official README documents
    plain = ja.JapaneseFrontend(use_user_dict=False)
    assert plain.g2p("主殿")[0] != ja.load("v2").g2p("主殿")[0]


@needs_jtalk
def test_custom_user_dictionary_is_compiled_once_and_keyed_by_content(tmp_path, monkeypatch) -> None:
    from fastsovits.text.g2p import ja_openjtalk as oj

    monkeypatch.setenv("FASTSOVITS_CACHE", str(tmp_path / "cache"))
    csv = tmp_path / "user.csv"
    csv.write_text("鯖缶鯖,*,*,-32767,名詞,固有名詞,一般,*,*,*,テストゴ,テストゴ,テストゴ,1/4,*\n", encoding="utf-8")
    first = oj.compiled_user_dict(csv, oj.system_dict_dir())
    assert first.parent == tmp_path / "cache" / "openjtalk"
    stamp = first.stat().st_mtime_ns
    assert oj.compiled_user_dict(csv, oj.system_dict_dir()) == first and first.stat().st_mtime_ns == stamp
    phones, _ = ja.JapaneseFrontend(user_dict_csv=csv).g2p("鯖缶鯖")
    assert [p for p in phones if p not in PROSODY] == "t e s u t o g o".split()
    csv.write_text(csv.read_text(encoding="utf-8").replace("テストゴ", "テストガ"), encoding="utf-8")
    assert oj.compiled_user_dict(csv, oj.system_dict_dir()) != first


# --- bad and odd input ------------------------------------------------------------------

ODD = [
    "",
    "😀🎉",
    "東京😀タワー",
    "\x00\x01\t\n",
    "\ud800",
    "％と%",
    "Ａｂｃ１２３٣",
    "ｶﾞｯｺｳ",
    "ー・ゝゞ々〆",
    "𝟏𝟐",
    "İstanbul",
    "…—「」『』（）",
    "ﾞﾟ",
]


@needs_jtalk
@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("text", ODD)
def test_odd_input_never_crashes(text: str, version: str) -> None:
    from fastsovits.text.frontend import clean_run
    from fastsovits.text.symbols import symbol_to_id

    seg = clean_run(text, "ja", version)
    assert all(p in symbol_to_id(version) for p in seg.phones)
    assert ja.load(version).g2p(ja.normalize(text))[1] is None


@needs_jtalk
def test_marks_between_pieces_are_kept_and_mapped() -> None:
    phones, _ = ja.load("v2").g2p("あ、い。う！え？お：か；き，く\nけ·こ")
    assert [p for p in phones if p in ",.!?"] == [",", ".", "!", "?", ",", ",", ",", ".", ","]
    assert " " not in ja.load("v2").g2p("あ い")[0]


@pytest.mark.parametrize("text", ["ア" * 201, "ぁ" * 400, "x" * 250, "1" * 300, "一" * 201, "あ" * 2731])
def test_runs_that_would_overflow_open_jtalk_are_refused(text: str) -> None:
    # Checked before Open JTalk is called (the C code has fixed buffers and would crash).
    with pytest.raises(TextTooLong):
        ja.JapaneseFrontend().piece_phones(text)


@needs_jtalk
def test_long_text_with_breaks_is_fine() -> None:
    phones, _ = ja.load("v2").g2p("アイウエオ" * 40 + "、" + "かきくけこ" * 40)
    assert "," in phones and len(phones) > 400


def test_silence_inside_labels_is_a_typed_error() -> None:
    def label(ph: str) -> str:
        return f"xx^xx-{ph}+xx=xx/A:xx+xx+xx/E:xx_xx!0_xx/F:xx_xx#xx"

    with pytest.raises(UnsupportedCharacters):
        ja.labels_to_prosody_phones([label("sil"), label("sil"), label("sil")])
    assert ja.labels_to_prosody_phones([label("sil"), label("pau"), label("sil")]) == ["^", "_", "$"]


# --- environment ------------------------------------------------------------------------


def test_missing_dictionary_names_package_and_env(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FASTSOVITS_OPENJTALK_DICT", str(tmp_path / "nope"))
    with pytest.raises(MissingResource) as err:
        ja.JapaneseFrontend().g2p("日本")
    assert "open-jtalk-mecab-naist-jdic" in str(err.value) and "FASTSOVITS_OPENJTALK_DICT" in str(err.value)


def test_open_jtalk_dict_dir_env_is_honoured(tmp_path, monkeypatch) -> None:
    from fastsovits.text.g2p import ja_openjtalk as oj

    monkeypatch.delenv("FASTSOVITS_OPENJTALK_DICT", raising=False)
    monkeypatch.setenv("OPEN_JTALK_DICT_DIR", str(tmp_path))
    with pytest.raises(MissingResource, match=str(tmp_path)):
        oj.system_dict_dir()


def test_missing_pyopenjtalk_is_a_missing_dependency(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyopenjtalk", None)
    monkeypatch.setitem(sys.modules, "pyopenjtalk.openjtalk", None)
    with pytest.raises(MissingDependency) as err:
        ja.JapaneseFrontend().g2p("日本")
    assert err.value.extra == "ja"


@needs_jtalk
def test_concurrent_use_gives_sequential_results() -> None:
    fe = ja.load("v2")
    texts = [s["norm_text"] for _, s in JA_RUNS] * 4
    expected = [fe.g2p(t)[0] for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda t: fe.g2p(t)[0], texts))
    assert got == expected
