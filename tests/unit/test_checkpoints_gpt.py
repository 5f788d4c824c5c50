"""Loading and writing official GPT (s1) .ckpt files, and refusing everything else."""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from fastsovits.checkpoints.common import read_torch_file
from fastsovits.checkpoints.gpt import export_gpt, load_gpt, official_layout, official_state_dict
from fastsovits.errors import CheckpointError, MissingResource
from fastsovits.models.t2s import T2SConfig, Text2Semantic
from tests.reference import reference_dir

TINY = sorted((reference_dir() / "tiny").glob("tiny_s1_*.ckpt"))
SOVITS = sorted((reference_dir() / "tiny").glob("tiny_s2_*.pth"))
SMALL = T2SConfig(
    embedding_dim=16, hidden_dim=16, heads=2, n_layers=1, phoneme_vocab_size=10, vocab_size=9, eos=8, bert_dim=1024
)


def _small_model() -> Text2Semantic:
    torch.manual_seed(0)
    model = Text2Semantic(SMALL)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("path", TINY, ids=lambda p: p.name)
def test_tiny_official_file_loads_with_fp32_copies_of_the_fp16_weights(path: Path) -> None:
    model, config, info = load_gpt(path)
    meta = json.loads((reference_dir() / "tiny" / "tiny_configs.json").read_text())
    section = next(v["config_model"] for v in meta["s1"].values() if v["file"] == path.name)
    assert config == T2SConfig.from_official(section)
    assert info.info and info.info.startswith("GPT-e") and info.max_sec == 54
    # an independent reader: torch's own restricted unpickler
    raw = torch.load(path, weights_only=True, map_location="cpu")["weight"]
    ours = official_state_dict(model)
    assert list(ours) == list(raw)
    for key, tensor in raw.items():
        assert tensor.dtype == torch.float16
        assert ours[key].dtype == torch.float32 and torch.equal(ours[key], tensor.float()), key
    assert not model.training and model.pe.device.type == "cpu"


def test_export_round_trip_is_exact_and_official(tmp_path: Path) -> None:
    model = _small_model()
    with torch.no_grad():  # fp16-representable values so the round trip must be bit-exact
        for p in model.parameters():
            p.copy_(p.half().float())
    out = tmp_path / "exported.ckpt"
    export_gpt(model, SMALL, out, info="GPT-e3")
    raw = torch.load(out, weights_only=True)
    assert set(raw) == {"weight", "config", "info"} and raw["info"] == "GPT-e3"
    assert {k: tuple(v.shape) for k, v in raw["weight"].items()} == dict(official_layout(SMALL))
    assert all(v.dtype == torch.float16 for v in raw["weight"].values())
    assert raw["config"]["model"]["head"] == 2 and raw["config"]["data"]["max_sec"] == 54
    loaded, config, info = load_gpt(out)
    assert config == SMALL and info.info == "GPT-e3"
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k


def test_export_carries_the_official_config_over(tmp_path: Path) -> None:
    if not TINY:
        pytest.skip("no tiny s1 checkpoint in the reference folder")
    model, config, info = load_gpt(TINY[0])
    out = tmp_path / "again.ckpt"
    export_gpt(model, config, out, info=info.info, official_config=info.official_config)
    again, config2, info2 = load_gpt(out)
    assert config2 == config and info2.official_config == info.official_config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


@pytest.mark.parametrize("path", SOVITS, ids=lambda p: p.name)
def test_sovits_file_is_refused_by_name(path: Path) -> None:
    with pytest.raises(CheckpointError, match="SoVITS"):
        load_gpt(path)


def _save(obj, path: Path) -> Path:
    torch.save(obj, str(path))
    return path


@pytest.mark.parametrize(
    "obj,match",
    [
        ({"weight": {"enc_p.text_embedding.weight": torch.zeros(2, 2)}, "config": {}}, "SoVITS"),
        ({"model.bert_proj.weight": torch.zeros(2, 2)}, "bare state_dict"),
        ({"weight": {"bert_proj.weight": torch.zeros(2, 2)}, "config": {"model": {}}}, "'model.'"),
        ({"state_dict": {}, "epoch": 3}, "no 'weight'"),
        ([1, 2, 3], "list"),
    ],
    ids=["sovits-keys", "bare-state-dict", "no-prefix", "no-weight", "not-a-dict"],
)
def test_wrong_kind_names_what_was_found(tmp_path: Path, obj, match: str) -> None:
    with pytest.raises(CheckpointError, match=match):
        load_gpt(_save(obj, tmp_path / "wrong.ckpt"))


def test_mismatched_config_and_weights(tmp_path: Path) -> None:
    model = _small_model()
    path = tmp_path / "m.ckpt"
    export_gpt(model, SMALL, path)
    raw = torch.load(path, weights_only=True)
    raw["config"]["model"]["phoneme_vocab_size"] = 11
    with pytest.raises(CheckpointError, match="ar_text_embedding"):
        load_gpt(_save(raw, tmp_path / "bad_shape.ckpt"))
    raw["config"]["model"]["phoneme_vocab_size"] = 10
    del raw["weight"]["model.ar_predict_layer.weight"]
    with pytest.raises(CheckpointError, match="missing 1 keys"):
        load_gpt(_save(raw, tmp_path / "missing.ckpt"))
    raw["config"]["model"].pop("head")
    with pytest.raises(CheckpointError, match="head"):
        load_gpt(_save(raw, tmp_path / "no_head.ckpt"))


def test_truncated_and_corrupt_files(tmp_path: Path) -> None:
    good = tmp_path / "good.ckpt"
    export_gpt(_small_model(), SMALL, good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_gpt(truncated)
    corrupt = tmp_path / "corrupt.ckpt"
    flipped = bytearray(data)
    for i in range(len(data) // 3, len(data) // 3 + 64):  # inside a tensor storage: CRC must catch it
        flipped[i] ^= 0xFF
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError):
        load_gpt(corrupt)
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError):
        load_gpt(empty)
    with pytest.raises(MissingResource):
        load_gpt(tmp_path / "absent.ckpt")


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil_zip = _save({"weight": {"model.x": _RunsCode(marker)}, "config": {}}, tmp_path / "evil.ckpt")
    with pytest.raises(CheckpointError, match="system"):
        load_gpt(evil_zip)
    # the same payload as the data.pkl of an otherwise valid archive
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(OrderedDict(weight=_RunsCode(marker)), protocol=2))
        zf.writestr("archive/byteorder", "little")
    (tmp_path / "evil2.ckpt").write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="forbidden"):
        read_torch_file(tmp_path / "evil2.ckpt")
    plain = tmp_path / "plain.pkl"  # a legacy non-zip pickle
    plain.write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(CheckpointError):
        load_gpt(plain)
    assert not marker.exists()
