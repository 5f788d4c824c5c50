"""BERT features with a tiny random BERT and a small vocabulary (no download)."""

from __future__ import annotations

import pytest
import torch

from fastsovits.errors import InvalidInput, MissingResource
from fastsovits.text.bert import BertFeatureExtractor, phone_features
from fastsovits.text.types import Phonemes, Segment

CHARS = list("你好世界我们一起去银行今天天气很不错的是了") + ["，", "。", ",", ".", "!", "?"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory):
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    d = tmp_path_factory.mktemp("tiny_bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + CHARS
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(d / "vocab.txt")).save_pretrained(str(d))
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64
    )
    BertForMaskedLM(cfg).eval().save_pretrained(str(d))
    return BertFeatureExtractor(d)


def _reference(ext: BertFeatureExtractor, text: str) -> torch.Tensor:
    enc = ext.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        out = ext.model(**enc, output_hidden_states=True)
    return out.hidden_states[-3][0, 1:-1]


def test_features_repeat_rows_by_word2ph(tiny_bert: BertFeatureExtractor) -> None:
    text, w2p = "你好，世界。", [2, 2, 1, 2, 2, 1]
    feats = tiny_bert.features(text, w2p)
    assert feats.shape == (32, sum(w2p))
    ref = _reference(tiny_bert, text)
    col = 0
    for i, n in enumerate(w2p):
        for _ in range(n):
            torch.testing.assert_close(feats[:, col], ref[i])
            col += 1


def test_batched_equals_single(tiny_bert: BertFeatureExtractor) -> None:
    items = [("你好。", [2, 2, 1]), ("今天天气很不错的。", [2] * 8 + [1]), ("去", [2])]
    batched = tiny_bert.features_batch(items)
    for (t, w), b in zip(items, batched):
        torch.testing.assert_close(b, tiny_bert.features(t, w), atol=1e-5, rtol=1e-5)


def test_word2ph_length_mismatch_is_typed(tiny_bert: BertFeatureExtractor) -> None:
    with pytest.raises(InvalidInput):
        tiny_bert.features("你好", [2])


def test_phone_features_zero_for_other_languages(tiny_bert: BertFeatureExtractor) -> None:
    segs = [
        Segment("en", "Hi", "Hi", [",", "HH", "AY1"], None),
        Segment("zh", "你好。", "你好。", ["n", "i3", "h", "ao3", "."], [2, 2, 1]),
        Segment("yue", "你好", "你好", ["Yn", "Yei5", "Yh", "You2"], [2, 2]),
    ]
    ph = Phonemes("Hi你好。你好", [p for s in segs for p in s.phones], [0] * 12, None, segs)
    feats = phone_features(ph, tiny_bert)
    assert feats.shape == (32, 12)
    assert torch.count_nonzero(feats[:, :3]) == 0
    assert torch.count_nonzero(feats[:, 8:]) == 0  # Cantonese gets zeros, as official
    torch.testing.assert_close(feats[:, 3:8], tiny_bert.features("你好。", [2, 2, 1]))


def test_chinese_without_bert_is_an_error() -> None:
    segs = [Segment("zh", "你", "你", ["n", "i3"], [2])]
    with pytest.raises(MissingResource):
        phone_features(Phonemes("你", ["n", "i3"], [0, 0], [2], segs), None)


def test_missing_folder(tmp_path) -> None:
    with pytest.raises(MissingResource):
        BertFeatureExtractor(tmp_path / "nope")
