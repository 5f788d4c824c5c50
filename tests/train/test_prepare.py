"""Data preparation on the espeak-ng corpus with the tiny models: layout files, resume, bad items, layout I/O."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fastsovits.audio.io import load_audio
from fastsovits.errors import InvalidInput, InvalidParameter, MissingResource
from fastsovits.train import layout as L
from fastsovits.train.prepare import Models, PrepareConfig, prepare
from fastsovits.train.prepare_audio import wav32k_int16
from fastsovits.train.prepare_text import parse_list, text_entry
from tests.reference import reference_dir
from tests.train.corpus import corpus  # noqa: F401  (session fixture)

TINY = reference_dir() / "tiny"
N_GOOD = 8


@pytest.fixture(scope="module")
def models() -> Models:
    from fastsovits.checkpoints.sovits import load_sovits
    from fastsovits.models.ssl import SSLExtractor

    synth, _, _ = load_sovits(TINY / "tiny_s2_v2.pth")
    return Models(hubert=SSLExtractor(TINY / "tiny_hubert"), synthesizer=synth)


def _bad_inputs(folder: Path) -> list[str]:
    """Lines that must each be reported: missing, unreadable and too short audio, empty text, bad language/line."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "garbage.wav").write_bytes(b"RIFF\x00\x00not really a wav file" * 10)
    sf.write(folder / "short.wav", np.full(3200, 0.1, dtype=np.float32), 16000)  # 0.2 s
    good = str(folder / "short.wav")
    return [
        f"{folder / 'missing.wav'}|spk|en|This file does not exist.",
        f"{folder / 'garbage.wav'}|spk|en|This file is not audio.",
        f"{good}|spk|en|Too short to use.",
        f"{folder / 'empty.wav'}|spk|en|   ",
        f"{folder / 'french.wav'}|spk|fr|Bonjour tout le monde.",
        "a line without separators",
    ]


@pytest.fixture(scope="module")
def prepared(corpus, models, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("prep")
    lines = [it.to_line() for it in corpus.items[: N_GOOD // 2] + corpus.items[-N_GOOD // 2 :]]
    lines[2:2] = _bad_inputs(root / "bad")
    list_path = root / "data.list"
    list_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = PrepareConfig(
        list_path=list_path,
        exp_dir=root / "logs" / "exp",
        hubert_dir=TINY / "tiny_hubert",
        sovits_path=TINY / "tiny_s2_v2.pth",
        progress=False,
        batch_size=3,
    )
    report = prepare(cfg, models)
    return cfg, report, L.ExperimentLayout(cfg.exp_dir)


def test_every_file_with_official_shapes(prepared, models) -> None:
    cfg, report, lay = prepared
    texts, sem = lay.read_name2text(), lay.read_semantic()
    assert report.ok == N_GOOD and len(texts) == N_GOOD and list(texts) == list(sem)
    assert lay.semantic.read_text(encoding="utf-8").split("\n")[0] == "item_name\tsemantic_audio"
    items = {it.name: it for it in parse_list(cfg.list_path)[0]}
    for name, entry in texts.items():
        assert entry == text_entry(items[name])  # phones as the frontend makes them, word2ph None (en)
        assert entry.word2ph is None and entry.phones[-1] == "."
        wav = lay.read_wav(name)
        assert wav.dtype == np.int16 and sf.info(str(lay.wav(name))).samplerate == 32000
        src, _ = load_audio(items[name].wav_path, 32000)
        assert np.array_equal(wav, wav32k_int16(src))  # the official loudness mix, as int16
        feats = lay.load_hubert(name)
        assert feats.shape[:2] == (1, 768) and feats.dtype == torch.float32
        assert abs(feats.shape[-1] - len(wav) / 640) <= 2  # 50 Hz at 16 kHz (conv stack: (n16 - 400) // 320 + 1)
        with torch.inference_mode():
            expect = models.synthesizer.extract_latent(feats)[0, 0].tolist()  # unbatched
        assert sem[name] == expect and len(expect) == feats.shape[-1] // 2
        assert all(0 <= c < 1024 for c in sem[name])
    assert not lay.sv_dir.exists() and not any(lay.bert_dir.iterdir())  # v2, English: no SV, no BERT
    assert not [p for p in lay.root.rglob("*") if ".tmp-" in p.name]


def test_bad_items_reported_and_job_continues(prepared) -> None:
    cfg, report, lay = prepared
    failed = {(f["name"], f["stage"]) for f in report.failed}
    assert failed == {
        ("missing.wav", "audio"),
        ("garbage.wav", "audio"),
        ("short.wav", "audio"),
        ("empty.wav", "text"),
        ("french.wav", "list"),
        ("", "list"),
    }
    by_name = {f["name"]: f for f in report.failed}
    assert "does not exist" in by_name["missing.wav"]["error"]
    assert "shorter" in by_name["short.wav"]["error"] and "fr" in by_name["french.wav"]["error"]
    assert report.total == N_GOOD + 6
    on_disk = json.loads(lay.report.read_text(encoding="utf-8"))
    assert on_disk["ok"] == N_GOOD and len(on_disk["failed"]) == 6
    assert not any(n in lay.read_name2text() for n in ("missing.wav", "garbage.wav", "short.wav"))


def test_resume_skips_done_items(prepared, models, tmp_path) -> None:
    cfg, _, lay = prepared
    exp = tmp_path / "exp"
    shutil.copytree(lay.root, exp)
    cfg2 = replace(cfg, exp_dir=exp)
    names = list(L.read_name2text(exp / L.NAME2TEXT))
    victim = names[1]
    (exp / L.HUBERT_DIR / f"{victim}.pt").unlink()
    stamps = {n: (exp / L.HUBERT_DIR / f"{n}.pt").stat().st_mtime_ns for n in names if n != victim}
    before = L.read_semantic(exp / L.SEMANTIC)
    report = prepare(cfg2, models)
    assert report.ok == N_GOOD
    # only the deleted item is recomputed (audio, then its tokens); the 3 items whose audio failed
    # are retried (and fail again)
    assert report.computed == {"audio": 1, "semantic": 1, "text": 3} and report.reused["text"] == N_GOOD
    assert len(report.failed) == 6
    assert report.reused["audio"] == N_GOOD - 1 and report.reused["semantic"] == N_GOOD - 1
    assert all((exp / L.HUBERT_DIR / f"{n}.pt").stat().st_mtime_ns == t for n, t in stamps.items())
    assert L.read_semantic(exp / L.SEMANTIC) == before


def test_corrupt_previous_table_is_recomputed(prepared, models, tmp_path) -> None:
    cfg, _, lay = prepared
    exp = tmp_path / "exp"
    shutil.copytree(lay.root, exp)
    (exp / L.SEMANTIC).write_text("not a header\nx\n", encoding="utf-8")
    victim = next(iter(lay.read_name2text()))
    (exp / L.HUBERT_DIR / f"{victim}.pt").write_bytes(b"truncated")  # a damaged per-item file
    report = prepare(replace(cfg, exp_dir=exp), models)
    assert report.computed == {"semantic": N_GOOD, "audio": 1, "text": 3}  # (text: the retried bad-audio items)
    assert L.load_tensor(exp / L.HUBERT_DIR / f"{victim}.pt").shape == lay.load_hubert(victim).shape
    assert L.read_semantic(exp / L.SEMANTIC) == lay.read_semantic()


def test_pro_writes_sv_features(corpus, models, tmp_path) -> None:  # noqa: F811
    from fastsovits.models.sv import ERes2NetV2, SpeakerEncoder, SVConfig

    torch.manual_seed(0)
    sv = SpeakerEncoder(ERes2NetV2(SVConfig(base_width=4, scale=2, blocks=(1, 1, 1, 1))))
    list_path = tmp_path / "pro.list"
    list_path.write_text("".join(it.to_line() + "\n" for it in corpus.items[:2]), encoding="utf-8")
    cfg = PrepareConfig(list_path=list_path, exp_dir=tmp_path / "exp", version="v2ProPlus", progress=False)
    with pytest.raises(MissingResource):
        prepare(cfg, Models(hubert=models.hubert, synthesizer=models.synthesizer))  # no --sv
    report = prepare(cfg, Models(hubert=models.hubert, synthesizer=models.synthesizer, sv=sv))
    lay = L.ExperimentLayout(cfg.exp_dir)
    assert report.ok == 2 and report.computed["sv"] == 2
    for name in lay.read_name2text():
        emb = lay.load_sv(name)
        assert emb.shape == (1, 20480) and torch.isfinite(emb).all()


def test_zh_items_get_bert_features(models, tmp_path) -> None:
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    from fastsovits.text.bert import BertFeatureExtractor

    bert_dir = tmp_path / "bert"
    bert_dir.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("你好世界今天很,.-")
    (bert_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(bert_dir / "vocab.txt")).save_pretrained(str(bert_dir))
    torch.manual_seed(0)
    cfg_b = BertConfig(
        vocab_size=len(vocab), hidden_size=1024, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32
    )
    BertForMaskedLM(cfg_b).eval().save_pretrained(str(bert_dir))
    wav = tmp_path / "zh.wav"
    sf.write(wav, (0.3 * np.sin(np.arange(32000) / 9)).astype(np.float32), 32000)
    list_path = tmp_path / "zh.list"
    list_path.write_text(f"{wav}|spk|ZH|你好%世界\n", encoding="utf-8")
    cfg = PrepareConfig(list_path=list_path, exp_dir=tmp_path / "exp", bert_dir=bert_dir, progress=False)
    bert = BertFeatureExtractor(bert_dir)
    report = prepare(cfg, Models(hubert=models.hubert, synthesizer=models.synthesizer, bert=bert))
    lay = L.ExperimentLayout(cfg.exp_dir)
    entry = lay.read_name2text()["zh.wav"]
    assert report.ok == 1 and entry.norm_text.startswith("你好") and "%" not in entry.norm_text
    assert entry.word2ph is not None and sum(entry.word2ph) == len(entry.phones)
    feats = lay.load_bert("zh.wav", len(entry.phones))
    torch.testing.assert_close(feats, bert.features(entry.norm_text, entry.word2ph))


# ---- layout I/O -------------------------------------------------------------------------------
def test_layout_round_trips(tmp_path) -> None:
    lay = L.ExperimentLayout(tmp_path / "exp")
    lay.make_dirs(with_sv=True)
    entries = [
        L.TextEntry("a.wav", ["HH", "AH0", "."], None, "Ha."),
        L.TextEntry("b.wav", ["n", "i2", "h", "ao3"], [2, 2], "你好"),
    ]
    L.write_name2text(lay.name2text, entries)
    assert lay.name2text.read_text(encoding="utf-8") == "a.wav\tHH AH0 .\tNone\tHa.\nb.wav\tn i2 h ao3\t[2, 2]\t你好\n"
    assert list(lay.read_name2text().values()) == entries
    L.write_semantic(lay.semantic, {"a.wav": [0, 5, 1023]})
    assert lay.semantic.read_text(encoding="utf-8") == "item_name\tsemantic_audio\na.wav\t0 5 1023\n"
    assert lay.read_semantic() == {"a.wav": [0, 5, 1023]}
    L.save_tensor(lay.hubert("a.wav"), torch.ones(1, 768, 7, dtype=torch.float16))
    assert lay.load_hubert("a.wav").dtype == torch.float16
    L.save_tensor(lay.sv("a.wav"), torch.zeros(1, 20480))
    assert lay.load_sv("a.wav").shape == (1, 20480)
    L.write_wav32k(lay.wav("a.wav"), np.array([0, 1000, -32768], dtype=np.int16))
    assert lay.read_wav("a.wav").tolist() == [0, 1000, -32768]


def test_layout_rejects_bad_content(tmp_path) -> None:
    lay = L.ExperimentLayout(tmp_path)
    with pytest.raises(MissingResource):
        lay.read_semantic()
    lay.semantic.write_text("a.wav\t1 2\n", encoding="utf-8")  # no header
    with pytest.raises(InvalidInput):
        lay.read_semantic()
    lay.name2text.write_text("a.wav\tAA\n", encoding="utf-8")
    with pytest.raises(InvalidInput):
        lay.read_name2text()
    L.save_tensor(lay.hubert("x"), torch.zeros(1, 512, 3))
    with pytest.raises(InvalidInput):
        lay.load_hubert("x")
    lay.hubert("y").write_bytes(b"corrupt")
    with pytest.raises(InvalidInput):
        lay.load_hubert("y")
    with pytest.raises(InvalidInput):
        L.TextEntry("a\tb.wav", ["AA"], None, "x").to_line()
    with pytest.raises(InvalidParameter):
        PrepareConfig(list_path=tmp_path, exp_dir=tmp_path, version="v3")


def test_atomic_write_leaves_no_partial_file(tmp_path) -> None:
    target = tmp_path / "f.txt"
    with pytest.raises(RuntimeError), L.atomic_path(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_cli_prepare_loads_models_from_disk(corpus, tmp_path, capsys) -> None:  # noqa: F811
    from fastsovits.cli import main

    list_path = tmp_path / "cli.list"
    list_path.write_text("".join(f"{it.wav_path.name}|s|en|{it.text}\n" for it in corpus.items[:2]), encoding="utf-8")
    args = [
        "prepare",
        "--list",
        str(list_path),
        "--exp-dir",
        str(tmp_path / "exp"),
        "--wav-dir",
        str(corpus.wav_dir),
        "--hubert",
        str(TINY / "tiny_hubert"),
        "--sovits",
        str(TINY / "tiny_s2_v2.pth"),
        "-q",
    ]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ok"] == 2
    assert len(L.read_semantic(tmp_path / "exp" / L.SEMANTIC)) == 2
    args[args.index("--sovits") + 1] = str(tmp_path / "missing.pth")
    assert main(args) == 2 and "MissingResource" in capsys.readouterr().err


def test_audio_helpers_follow_the_official_formulas() -> None:
    from types import SimpleNamespace

    from fastsovits.train.prepare_audio import hubert_features, loudness_mix

    x = np.array([0.0, 0.5, -0.25, 1.5], dtype=np.float32)  # peak 1.5 (allowed up to 2.2)
    expect = x / 1.5 * 0.95 * 0.5 * 32768 + 0.5 * 32768 * x
    assert np.allclose(loudness_mix(x, 32768.0), expect)
    assert wav32k_int16(x).tolist() == [0, 13380, -6690, 32767]  # truncated like astype; clipped, not wrapped
    assert np.allclose(loudness_mix(x, 1145.14), expect / 32768 * 1145.14)

    class Model(torch.nn.Module):  # stands in for HubertModel: fp16 gives NaN, fp32 gives numbers
        def forward(self, wav):
            return SimpleNamespace(last_hidden_state=torch.ones(1, 3, 768) * wav.sum())

    nan = SimpleNamespace(
        dtype=torch.float16,
        device=torch.device("cpu"),
        model=Model(),
        features=lambda w, pad: torch.full((1, 768, 3), float("nan")),
    )
    feats = hubert_features(nan, torch.ones(400))
    assert feats.dtype == torch.float32 and torch.all(feats == 400)  # redone (and kept) in fp32
    bad = SimpleNamespace(dtype=torch.float32, features=lambda w, pad: torch.full((1, 768, 3), float("nan")))
    with pytest.raises(InvalidInput):
        hubert_features(bad, torch.ones(400))
