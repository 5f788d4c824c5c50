"""Mandarin G2P: parity with every official zh run (v1 and v2), invariants, errors, threading."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from fastsovits.errors import InvalidInput, MissingResource, UnsupportedCharacters, UnsupportedLanguage
from fastsovits.text.g2p import zh
from fastsovits.text.symbols import symbol_to_id
from tests.reference import g2p_cases, split_cases

pytest.importorskip("jieba_fast")
pytest.importorskip("pypinyin")


def _ready() -> str | None:
    from fastsovits.text.assets import data_file

    try:
        data_file("opencpop-strict.txt")
    except MissingResource as e:
        return str(e)
    return None


_why_not = _ready()
pytestmark = pytest.mark.skipif(_why_not is not None, reason=f"text data missing: {_why_not}")

CASES = g2p_cases()
ZH_RUNS = [(c, s) for c in CASES if "error" not in c for s in c.get("segments") or [] if s["lang"] == "zh"]
# clean_run turns the run's commas into these when the raw run text has the mark.
_SPECIAL = (("￥", "SP2"), ("^", "SP3"))


def _official_phones(seg: dict) -> list[str]:
    """Fixture phones with the clean_run-level special-mark rewrite undone (back to ',')."""
    for mark, symbol in _SPECIAL:
        if mark in seg["text"]:
            return ["," if p == symbol else p for p in seg["phones"]]
    return seg["phones"]


def _preprocess_zh_segments() -> list[tuple[str, dict]]:
    """Whole-paragraph zh preprocess segments (v2) that are one zh run (no Latin/digits/marks)."""
    out = []
    for case in split_cases():
        pp = case.get("preprocess")
        if not pp or pp.get("lang") not in ("zh", "all_zh") or any(m in case["text"] for m, _ in _SPECIAL):
            continue
        for method in ("cut1", "cut5"):
            segs = pp.get(method)
            for seg in segs if isinstance(segs, list) else []:
                if not re.search("[A-Za-z0-9]", seg["norm_text"]):
                    out.append((case["id"], seg))
    return out


# --- parity -----------------------------------------------------------------------------


@pytest.mark.parity
def test_every_official_zh_run_matches() -> None:
    assert ZH_RUNS, "no zh runs in the fixtures"
    assert {c["version"] for c, _ in ZH_RUNS} == {"v1", "v2"}
    bad = []
    for case, seg in ZH_RUNS:
        phones, word2ph = zh.load(case["version"]).g2p(seg["norm_text"])
        if phones != _official_phones(seg) or word2ph != seg["word2ph"]:
            bad.append((case["id"], seg["norm_text"], " ".join(phones), " ".join(seg["phones"])))
    assert not bad, "\n".join(map(str, bad))


@pytest.mark.parity
def test_official_preprocess_zh_segments_match() -> None:
    segs = _preprocess_zh_segments()
    assert len(segs) > 50
    bad = [(cid, s["norm_text"]) for cid, s in segs if zh.load("v2").g2p(s["norm_text"])[0] != s["phones"]]
    assert not bad, bad


def test_erhua_only_in_v2() -> None:
    # v1-024 reads 哪儿 with er2 (no erhua step); v2-zh-086 reads 哪儿 with er3 (tone of 哪).
    case = next(c for c in CASES if c["id"] == "v1-024")
    norm = case["segments"][0]["norm_text"]
    v1_phones, _ = zh.load("v1").g2p(norm)
    v2_phones, _ = zh.load("v2").g2p(norm)
    assert v1_phones == case["segments"][0]["phones"]
    diff = [(a, b) for a, b in zip(v1_phones, v2_phones) if a != b]
    assert diff == [("er2", "er3")]


# --- invariants -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_invariants_on_fixture_texts(version: str) -> None:
    table = symbol_to_id(version)
    for _, seg in ZH_RUNS:
        phones, word2ph = zh.load(version).g2p(seg["norm_text"])
        assert len(word2ph) == len(seg["norm_text"])
        assert sum(word2ph) == len(phones)
        assert set(word2ph) <= {1, 2}
        assert all(p in table for p in phones), [p for p in phones if p not in table]
        # one phone per mark, two per syllable
        for ch, n in zip(seg["norm_text"], word2ph):
            assert n == (1 if ch in zh.PUNCTUATION else 2)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_every_opencpop_phone_is_a_symbol(version: str) -> None:
    table = symbol_to_id(version)
    opencpop = zh._read_opencpop()
    assert len(opencpop) > 400
    for initial, final in opencpop.values():
        assert initial in table
        assert all(f"{final}{tone}" in table for tone in "12345"), final


def test_load_caches_per_version() -> None:
    assert zh.load("v2") is zh.load("v2")
    assert zh.load("v1") is not zh.load("v2")
    with pytest.raises(UnsupportedLanguage):
        zh.ChineseG2P("v3")


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "噷",  # pypinyin has no final for it (official: IndexError)
        "兙好",  # no reading at all
        "你好abc",  # letters are dropped: word2ph no longer covers the text (official assert)
        "一1",  # a digit is not a mark (official assert)
        "一12",  # digits are one pypinyin item, not a mark (official assert)
        "你 好",  # whitespace inside a sentence
    ],
)
def test_unreadable_text_raises_typed_error(text: str) -> None:
    for version in ("v1", "v2"):
        with pytest.raises(UnsupportedCharacters):
            zh.load(version).g2p(text)
    assert issubclass(UnsupportedCharacters, InvalidInput)


def test_g2pw_is_opt_in_and_not_available(tmp_path) -> None:
    with pytest.raises(MissingResource, match="g2pw_dir unset"):
        zh.ChineseG2P("v2", g2pw_dir=tmp_path / "nowhere")
    (tmp_path / "g2pW.onnx").write_bytes(b"")
    with pytest.raises(MissingResource, match="not implemented"):
        zh.ChineseG2P("v2", g2pw_dir=tmp_path)


# --- process hygiene ----------------------------------------------------------------------


def test_concurrent_calls_agree_with_serial() -> None:
    texts = [s["norm_text"] for _, s in ZH_RUNS[:60]]
    serial = [zh.load("v2").g2p(t) for t in texts]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(zh.load("v2").g2p, texts))
    assert parallel == serial


def test_import_is_lazy_and_first_use_is_silent(tmp_path) -> None:
    code = (
        "import sys\n"
        "import fastsovits.text.g2p.zh as zh\n"
        "assert 'jieba_fast' not in sys.modules and 'pypinyin' not in sys.modules\n"
        "print(' '.join(zh.load('v2').g2p(sys.argv[1])[0]))\n"
    )
    case, seg = next((c, s) for c, s in ZH_RUNS if c["version"] == "v2")
    r = subprocess.run(
        [sys.executable, "-c", code, seg["norm_text"]], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.split() == _official_phones(seg)
    assert list(tmp_path.iterdir()) == []  # no cache or log written to the working directory
