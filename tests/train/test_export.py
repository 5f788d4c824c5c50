"""Exported weights carry exactly the official key layout and load in our loaders (and equal the trained model)."""

from __future__ import annotations

import json

import pytest
import torch

from fastsovits.checkpoints.common import HPARAMS_GLOBAL, HParamsStandIn, read_torch_file
from fastsovits.checkpoints.gpt import load_gpt, official_layout
from fastsovits.checkpoints.sovits import load_sovits
from fastsovits.checkpoints.sovits_keys import key_entries
from fastsovits.models.sovits import SovitsConfig, Synthesizer
from fastsovits.models.t2s import T2SConfig
from fastsovits.train.export import export_gpt_weights, export_sovits_weights, plain_generator, plain_state_dict
from fastsovits.train.sovits import apply_weight_norm
from tests.reference import reference_dir

REF = reference_dir()
TINY = REF / "tiny"


def _file(path):
    return read_torch_file(path, extra={HPARAMS_GLOBAL: HParamsStandIn})


def _layout(obj) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    return [(k, tuple(v.shape), v.dtype) for k, v in obj["weight"].items()]


def test_gpt_export_has_the_official_layout(tmp_path) -> None:
    model, _, info = load_gpt(TINY / "tiny_s1_v2.ckpt")
    with torch.no_grad():
        model.head.weight.add_(0.25)  # "trained"
    out = export_gpt_weights(model, tmp_path / "w" / "exp-e3.ckpt", epoch=3, official_config=info.official_config)
    ours, official = _file(out), _file(TINY / "tiny_s1_v2.ckpt")
    assert _layout(ours.obj) == _layout(official.obj)  # same keys, order, shapes, fp16
    assert ours.obj["info"] == "GPT-e3" and ours.obj["config"]["model"]["n_layer"] == 2
    assert ours.header_tag is None
    loaded, _, _ = load_gpt(out)
    torch.testing.assert_close(loaded.head.weight, model.head.weight.half().float())


@pytest.mark.parametrize("version", ["v1", "v2", "v2Pro", "v2ProPlus"])
def test_sovits_export_has_the_official_layout(tmp_path, version) -> None:
    src = TINY / f"tiny_s2_{version}.pth"
    model, _, info = load_sovits(src, with_posterior=True)
    plain_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("posterior.")}
    apply_weight_norm(model)
    assert any(".parametrizations.weight." in k for k in model.state_dict())
    with torch.no_grad():
        model.vocoder.ups[0].parametrizations.weight.original0.mul_(1.5)  # "trained": g of a weight-normed conv
    out = export_sovits_weights(
        model, tmp_path / f"exp_e2_s9_{version}.pth", epoch=2, step=9, official_config=info.official_config
    )
    ours, official = _file(out), _file(src)
    assert _layout(ours.obj) == _layout(official.obj)  # no enc_q, weight_g/weight_v pairs, fp16
    assert not any(k.startswith("enc_q.") for k in ours.obj["weight"])
    assert ours.header_tag == official.header_tag == {"v2Pro": "05", "v2ProPlus": "06"}.get(version)
    assert ours.obj["info"] == "2epoch_9iteration"
    loaded, config, linfo = load_sovits(out)
    assert config.version == version and linfo.model_version == version
    got = loaded.state_dict()
    for k, v in plain_before.items():
        want = v * 1.5 if k == "vocoder.ups.0.weight" else v
        torch.testing.assert_close(got[k], want.half().float(), atol=2e-3, rtol=2e-3)


def test_plain_copy_leaves_the_training_model_intact() -> None:
    model, _, _ = load_sovits(TINY / "tiny_s2_v2.pth", with_posterior=True)
    apply_weight_norm(model)
    plain_generator(model)
    plain_generator(model)  # a second copy must not break the parametrized original
    assert model.vocoder.ups[0].weight.shape == plain_state_dict(model)["vocoder.ups.0.weight"].shape


@pytest.mark.parametrize("name", ["s2_v1", "s2_v2", "s2_v2Pro", "s2_v2ProPlus"])
def test_full_size_training_generator_exports_the_manifest_keys(name) -> None:
    """A full-size training generator (meta tensors, weight-norm parametrised, with posterior)
    folds back to exactly the official key set and shapes of ``manifests/<name>.json``."""
    manifest = json.loads((REF / "manifests" / f"{name}.json").read_text())
    version = name.split("_", 1)[1]
    hps = {
        "model": manifest["config_model_section"],
        "data": {"filter_length": 2048, "hop_length": 640},
        "train": {"segment_size": 20480},
    }
    config = SovitsConfig.from_official(hps, version)
    with torch.device("meta"):
        model = Synthesizer(config, with_posterior=True)
    apply_weight_norm(model)
    plain = plain_generator(model)
    layout = {e.official: list(e.shape) for e in key_entries(plain)}
    assert layout == manifest["state_dict"]


@pytest.mark.parametrize("name", ["s1_v1", "s1_v2"])
def test_full_size_gpt_layout_matches_manifest(name) -> None:
    manifest = json.loads((REF / "manifests" / f"{name}.json").read_text())
    config = T2SConfig.from_official(manifest["config_model_section"])
    assert {k: list(v) for k, v in official_layout(config).items()} == manifest["state_dict"]
