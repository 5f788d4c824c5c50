"""Official files -> converted folder -> identical models, loaded without any pickle."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from fastsovits.checkpoints.convert import convert, load_converted
from fastsovits.checkpoints.gpt import load_gpt
from fastsovits.checkpoints.sovits import load_sovits
from fastsovits.errors import CheckpointError, MissingResource
from tests.reference import reference_dir

TINY = reference_dir() / "tiny"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    return convert(out_dir=out, gpt=TINY / "tiny_s1_v2.ckpt", sovits=TINY / "tiny_s2_v2ProPlus.pth")


def test_state_dicts_identical(converted) -> None:
    loaded = load_converted(converted)
    gpt, _, _ = load_gpt(TINY / "tiny_s1_v2.ckpt")
    synth, _, _ = load_sovits(TINY / "tiny_s2_v2ProPlus.pth")
    for ours, official in ((loaded.t2s, gpt), (loaded.sovits, synth)):
        a, b = ours.state_dict(), official.state_dict()
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert loaded.sovits_config == load_sovits(TINY / "tiny_s2_v2ProPlus.pth")[1]


def test_outputs_identical(converted) -> None:
    loaded = load_converted(converted)
    gpt, _, _ = load_gpt(TINY / "tiny_s1_v2.ckpt")
    torch.manual_seed(0)
    phones = torch.randint(0, 700, (1, 12))
    bert = torch.randn(1, 1024, 12)
    prompt = torch.randint(0, 1024, (1, 8))
    lens = (torch.tensor([12]), torch.tensor([8]))
    with torch.no_grad():
        a = loaded.t2s(phones, lens[0], bert, prompt, lens[1])
        b = gpt(phones, lens[0], bert, prompt, lens[1])
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_loading_never_unpickles(converted, monkeypatch) -> None:
    def refuse(*a, **k):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = load_converted(converted)
    assert loaded.t2s is not None and loaded.sovits is not None


def test_config_records_sources(converted) -> None:
    cfg = json.loads((converted / "config.json").read_text())
    assert len(cfg["gpt"]["source_sha256"]) == 64
    assert cfg["sovits"]["config"]["version"] == "v2ProPlus"


def test_corrupt_and_missing(tmp_path, converted) -> None:
    with pytest.raises(MissingResource):
        load_converted(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((converted / "config.json").read_text())
    (bad / "gpt.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError):
        load_converted(bad)
    (bad / "config.json").write_text('{"format": "other"}')
    with pytest.raises(CheckpointError):
        load_converted(bad)


def test_fp16_by_default(converted) -> None:
    from safetensors import safe_open

    with safe_open(str(converted / "gpt.safetensors"), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert dtypes == {torch.float16}, dtypes
