"""Loading and writing official SoVITS (s2) .pth files, and refusing everything else."""

from __future__ import annotations

import io
import os
import sys
import types
from functools import cache
from pathlib import Path

import pytest
import torch

from fastsovits.checkpoints.common import HParamsStandIn, read_torch_file
from fastsovits.checkpoints.sovits import (
    HEADER_VERSIONS,
    V1_MAX_BYTES,
    detect_sovits_version,
    detect_sovits_version_fast,
    export_sovits,
    fold_weight_norm,
    load_sovits,
    official_layout,
)
from fastsovits.errors import CheckpointError, InvalidParameter, MissingResource
from tests.reference import reference_dir

TINY = reference_dir() / "tiny"


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny(version: str) -> Path:
    path = TINY / f"tiny_s2_{version}.pth"
    if not path.exists():
        pytest.skip(f"{path} not in the reference folder")
    return path


@cache
def _loaded(version: str):
    return load_sovits(_tiny(version))


def _decode(model, config) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    codes, phones = torch.randint(0, 1024, (1, 1, 12), generator=gen), torch.randint(0, 300, (1, 9), generator=gen)
    spec = torch.rand(1, 1025, 40, generator=gen) * 5
    sv = [torch.randn(1, 20480, generator=gen)] if config.is_pro else None
    return model.decode(codes, phones, [spec], 0.0, 1.0, sv)


def test_fold_weight_norm_matches_torch_weight_norm() -> None:
    conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.ConvTranspose1d(6, 3, 4, 2))
    g, v = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    with torch.no_grad():
        g.uniform_(0.5, 2.0)
        folded = fold_weight_norm(g, v)
        expected = conv.weight  # computed by torch from g and v
    assert g.shape == (6, 1, 1)
    torch.testing.assert_close(folded, expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("version", ["v1", "v2", "v2Pro", "v2ProPlus"])
def test_tiny_file_loads_every_weight(version: str) -> None:
    model, config, info = _loaded(version)
    raw = read_torch_file(_tiny(version), extra={("utils", "HParams"): HParamsStandIn}).obj["weight"]
    layout = official_layout(config)
    assert set(raw) == set(layout)  # every file key consumed; nothing else expected
    state = model.state_dict()
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in state.values())
    assert not model.training and model.posterior is None
    # a plain tensor is the fp32 copy of the fp16 value; a folded one follows g * v / ||v||
    assert torch.equal(state["prior.phone_embedding.weight"], raw["enc_p.text_embedding.weight"].float())
    g, v = raw["dec.ups.0.weight_g"].float(), raw["dec.ups.0.weight_v"].float()
    torch.testing.assert_close(state["vocoder.ups.0.weight"], v * g / v.norm(dim=(1, 2), keepdim=True))
    assert info.info == "8epoch_96iteration" and info.official_config["model"]["gin_channels"] == config.gin_channels


def test_with_posterior_adds_a_trainable_posterior() -> None:
    model, config, _ = load_sovits(_tiny("v2"), with_posterior=True)
    assert model.posterior is not None
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.posterior.parameters())


def test_loading_never_writes_next_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "voice.pth"
    data = _tiny("v2Pro").read_bytes()
    path.write_bytes(data)
    assert data[:2] == b"05"
    load_sovits(path)
    assert os.listdir(tmp_path) == ["voice.pth"] and path.read_bytes() == data


def test_missing_file_is_missing_resource(tmp_path: Path) -> None:
    with pytest.raises(MissingResource, match="nope.pth"):
        load_sovits(tmp_path / "nope.pth")
    with pytest.raises(MissingResource):
        detect_sovits_version_fast(tmp_path / "nope.pth")


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_file_is_refused(tmp_path: Path, cut: float) -> None:
    data = _tiny("v2").read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(CheckpointError, match="cut.pth"):
        load_sovits(path)


def test_corrupt_bytes_are_refused(tmp_path: Path) -> None:
    data = bytearray(_tiny("v2").read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)  # inside a tensor record: the zip CRC no longer matches
    path = tmp_path / "corrupt.pth"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load_sovits(path)


def test_not_a_zip_and_unknown_header_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"PK" + os.urandom(3000))
    with pytest.raises(CheckpointError):
        load_sovits(junk)
    tagged = tmp_path / "tagged.pth"
    tagged.write_bytes(b"09" + _tiny("v2").read_bytes()[2:])
    with pytest.raises(CheckpointError, match="09"):
        load_sovits(tagged)


def test_gpt_checkpoint_given_as_sovits_is_refused() -> None:
    gpt = sorted(TINY.glob("tiny_s1_*.ckpt"))
    if not gpt:
        pytest.skip("no GPT checkpoint in the reference folder")
    with pytest.raises(CheckpointError, match="GPT"):
        load_sovits(gpt[0])


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_pickle_that_runs_code_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"weight": {"dec.conv_pre.weight": torch.zeros(1)}, "config": _Evil(), "info": "x"}, path)
    with pytest.raises(CheckpointError, match="system"):
        load_sovits(path)
    with pytest.raises(CheckpointError):
        detect_sovits_version(path)
    assert not (tmp_path / "pwned.txt").exists()


def test_bare_state_dict_and_wrong_shapes_are_refused(tmp_path: Path) -> None:
    model, config, _ = _loaded("v2")
    bare = tmp_path / "bare.pth"
    torch.save(model.state_dict(), bare)
    with pytest.raises(CheckpointError, match="bare state_dict"):
        load_sovits(bare)
    # a v2 file that claims (by header) to be v2Pro lacks the speaker-verification weights
    fake_pro = tmp_path / "fake_pro.pth"
    fake_pro.write_bytes(b"05" + _tiny("v2").read_bytes()[2:])
    with pytest.raises(CheckpointError, match="sv_emb"):
        load_sovits(fake_pro)
    # an explicit version that contradicts the symbol table
    with pytest.raises(CheckpointError, match="322"):
        load_sovits(_tiny("v1"), version="v2")
    with pytest.raises(InvalidParameter):
        load_sovits(_tiny("v2"), version="v5")


def test_v3_v4_weights_are_refused(tmp_path: Path) -> None:
    loaded = read_torch_file(_tiny("v2"), extra={("utils", "HParams"): HParamsStandIn}).obj
    weight = {**loaded["weight"], "cfm.estimator.proj_out.weight": torch.zeros(2, 2, dtype=torch.float16)}
    path = tmp_path / "v4like.pth"
    torch.save({"weight": weight, "config": loaded["config"].to_dict(), "info": "x"}, path)
    with pytest.raises(CheckpointError, match="v3/v4"):
        load_sovits(path)


@pytest.mark.parametrize(("version", "header"), [("v2", b"PK"), ("v2Pro", b"05"), ("v2ProPlus", b"06")])
def test_export_round_trip(tmp_path: Path, version: str, header: bytes) -> None:
    model, config, info = _loaded(version)
    path = tmp_path / "out.pth"
    export_sovits(model, config, path, version, official_config=info.official_config, info="3epoch_7iteration")
    assert path.read_bytes()[:2] == header and os.listdir(tmp_path) == ["out.pth"]
    assert detect_sovits_version(path) == (config.symbol_version, version, False)
    again, config2, info2 = load_sovits(path)
    assert config2 == config and info2.info == "3epoch_7iteration"
    assert info2.official_config["train"] == info.official_config["train"]
    raw = read_torch_file(path, extra={("utils", "HParams"): HParamsStandIn}).obj["weight"]
    assert list(raw) == list(official_layout(config)) and all(t.dtype == torch.float16 for t in raw.values())
    a, b = model.state_dict(), again.state_dict()
    assert torch.equal(a["prior.stats.weight"], b["prior.stats.weight"])  # fp16 values survive exactly
    for key in a:  # weight-normed tensors are re-split, so fp16 rounding of g and v is all that differs
        torch.testing.assert_close(b[key], a[key], atol=2e-3, rtol=2e-3)
    with torch.no_grad():
        assert (_decode(again, config) - _decode(model, config)).abs().max() < 5e-3


def test_export_is_readable_by_the_official_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate the official side: an importable ``utils.HParams`` and a plain torch.load."""

    class HParams:  # the official class keeps its keys as attributes
        def __getitem__(self, key):
            return getattr(self, key)

    fake = types.ModuleType("utils")
    fake.HParams = HParams
    HParams.__module__ = "utils"
    monkeypatch.setitem(sys.modules, "utils", fake)
    model, config, info = _loaded("v2Pro")
    path = tmp_path / "pro.pth"
    export_sovits(model, config, path)
    data = b"PK" + path.read_bytes()[2:]
    obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)  # our own file, as official does
    hps = obj["config"]
    assert isinstance(hps, HParams) and isinstance(hps["model"], HParams)
    assert hps["model"]["gin_channels"] == config.gin_channels and hps["model"]["version"] == "v2Pro"
    assert hps["data"]["filter_length"] // 2 + 1 == config.spec_channels
    assert hps["train"]["segment_size"] // hps["data"]["hop_length"] == config.segment_frames
    assert not any(k.startswith("enc_q.") for k in obj["weight"])


def test_export_rejects_a_mismatched_version(tmp_path: Path) -> None:
    model, config, _ = _loaded("v2")
    with pytest.raises(InvalidParameter, match="v2Pro"):
        export_sovits(model, config, tmp_path / "x.pth", "v2Pro")
    assert not list(tmp_path.iterdir())


def test_fast_detection_header_and_size_rules(tmp_path: Path) -> None:
    for tag, expected in HEADER_VERSIONS.items():
        path = tmp_path / f"h{tag.decode()}.pth"
        path.write_bytes(tag + b"\0" * 100)
        assert detect_sovits_version_fast(path) == expected
    small, mid = tmp_path / "small.pth", tmp_path / "mid.pth"
    small.write_bytes(b"PK" + b"\0" * 100)
    with open(mid, "wb") as f:  # sparse file just over the v1 size limit
        f.write(b"PK\1")
        f.truncate(V1_MAX_BYTES + 1)
    assert detect_sovits_version_fast(small) == ("v1", "v1", False)
    assert detect_sovits_version_fast(mid) == ("v2", "v2", False)
