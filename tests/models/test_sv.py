"""ERes2NetV2 (w24s4ep4): official key layout, the 20480-d feature, batching, safe loading."""

from __future__ import annotations

import pytest
import torch

from fastsovits.errors import CheckpointError
from fastsovits.models.sv import ERes2NetV2, SpeakerEncoder, SVConfig, load_sv


@pytest.fixture(scope="module")
def model() -> ERes2NetV2:
    torch.manual_seed(0)
    return ERes2NetV2().eval()


def test_official_key_layout(model) -> None:
    sd = model.state_dict()
    # Representative official names (ERes2NetV2.py / fusion.py module names).
    for key, shape in {
        "conv1.weight": (64, 1, 3, 3),
        "layer1.0.conv1.weight": (96, 64, 1, 1),  # width = floor(64 * 24 / 64) = 24, x scale 4
        "layer1.0.convs.3.weight": (24, 24, 3, 3),
        "layer1.0.shortcut.0.weight": (256, 64, 1, 1),
        "layer3.0.fuse_models.2.local_att.0.weight": (24, 192, 1, 1),  # width 96 -> AFF(96): 192 in, 24 inner
        "layer4.2.bn3.running_var": (2048,),
        "layer3_ds.weight": (2048, 1024, 3, 3),
        "fuse34.local_att.3.weight": (2048, 512, 1, 1),
        "seg_1.weight": (192, 40960),
    }.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(k.startswith(("layer1.0.fuse_models", "layer2.0.fuse_models")) for k in sd)
    assert SVConfig().feature_dim == 20480


def test_forward3_shape_and_batching(model) -> None:
    enc = SpeakerEncoder(model)
    torch.manual_seed(1)
    a, b = torch.randn(16000 * 3) * 0.1, torch.randn(16000 * 4) * 0.1
    both = enc.embed([a, b])
    assert both.shape == (2, 20480)
    torch.testing.assert_close(both[1:], enc.embed([b]))
    feats = torch.randn(2, 200, 80)
    torch.testing.assert_close(model.forward3(feats)[1], model.forward3(feats[1:])[0], atol=1e-5, rtol=1e-5)


def test_checkpoint_round_trip(tmp_path, model) -> None:
    path = tmp_path / "sv.ckpt"
    torch.save(model.state_dict(), path)
    loaded = load_sv(path)
    feats = torch.randn(1, 120, 80)
    torch.testing.assert_close(loaded.forward3(feats), model.forward3(feats))


def test_wrong_file(tmp_path) -> None:
    path = tmp_path / "x.ckpt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError):
        load_sv(path)
