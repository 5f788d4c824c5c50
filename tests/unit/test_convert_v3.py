"""Official v3/v4 files (LoRA merged) -> converted folder -> the same models, loaded without any pickle."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from fastsovits.checkpoints.convert_v3 import CONFIG_FILE, convert_v3, load_converted_v3
from fastsovits.checkpoints.sovits_v3 import load_sovits_v3
from fastsovits.checkpoints.vocoders import load_bigvgan, load_v4_vocoder
from fastsovits.errors import CheckpointError, MissingResource
from tests.reference import reference_dir


def _tiny(name: str) -> Path:
    return reference_dir() / "tiny" / name


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("pickle used")


@pytest.mark.parametrize("version", ["v4", "v3"])
def test_converted_equals_loaded_without_pickle(tmp_path: Path, version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if version == "v4":  # the LoRA file merged over its base, with the v4 vocoder
        src, base, voc_path = _tiny("tiny_s2_v4_lora.pth"), _tiny("tiny_s2_v4.pth"), _tiny("tiny_vocoder_v4.pth")
        ref, _, _ = load_sovits_v3(src, base=base)
        ref_voc = load_v4_vocoder(voc_path)
    else:
        src, base, voc_path = _tiny("tiny_s2_v4.pth"), None, _tiny("tiny_bigvgan_v3")
        ref, _, _ = load_sovits_v3(src, "v3")
        ref_voc = load_bigvgan(voc_path)
    out = convert_v3(out_dir=tmp_path / "c", sovits=src, version=None if base else "v3", base=base, vocoder=voc_path)
    for name in ("Unpickler", "load", "loads"):
        monkeypatch.setattr(pickle, name, _refuse)
    monkeypatch.setattr(torch, "load", _refuse)
    loaded = load_converted_v3(out)
    assert loaded.config == ref.config and loaded.meta["sovits"]["is_lora"] == (base is not None)
    a, b = ref.state_dict(), loaded.model.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(ref.cfm.estimator.text_embed.freqs_cis, loaded.model.cfm.estimator.text_embed.freqs_cis)
    va, vb = ref_voc.state_dict(), loaded.vocoder.state_dict()
    assert set(va) == set(vb) and all(torch.equal(va[k], vb[k]) for k in va)


def test_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(MissingResource):
        load_converted_v3(tmp_path)
    (tmp_path / CONFIG_FILE).write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError):
        load_converted_v3(tmp_path)
