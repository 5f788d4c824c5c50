"""v3/v4 checkpoint handling: export round trip, LoRA file checks, vocoder files, unsafe pickles."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fastsovits.checkpoints.common import HPARAMS_GLOBAL, HParamsStandIn, read_torch_file
from fastsovits.checkpoints.lora import split_lora
from fastsovits.checkpoints.sovits_v3 import export_sovits_v3, load_sovits_v3
from fastsovits.checkpoints.vocoders import (
    build_v4_vocoder,
    load_bigvgan,
    load_v4_vocoder,
    save_bigvgan,
    v4_vocoder_state_dict,
)
from fastsovits.errors import CheckpointError, MissingResource
from fastsovits.models.bigvgan import BigVGAN, BigVGANConfig
from tests.reference import reference_dir


def _tiny(name: str) -> Path:
    return reference_dir() / "tiny" / name


def test_export_round_trip(tmp_path: Path) -> None:
    model, config, info = load_sovits_v3(_tiny("tiny_s2_v4.pth"), "v4")
    out = tmp_path / "out.pth"
    export_sovits_v3(model, config, out, official_config=info.official_config, info="2epoch_5iteration")
    assert out.read_bytes()[:2] == b"PK" and os.listdir(tmp_path) == ["out.pth"]
    original = read_torch_file(_tiny("tiny_s2_v4.pth"), extra={HPARAMS_GLOBAL: HParamsStandIn}).obj["weight"]
    written = read_torch_file(out, extra={HPARAMS_GLOBAL: HParamsStandIn}).obj["weight"]
    assert list(written) == list(original)  # same keys, official order
    assert all(written[k].dtype == torch.float16 and written[k].shape == original[k].shape for k in original)
    again, config2, info2 = load_sovits_v3(out, "v4")
    assert config2 == config and info2.info == "2epoch_5iteration"
    a, b = model.state_dict(), again.state_dict()
    for k in a:  # fp16 storage of folded weight-norm convs is the only rounding
        assert (a[k] - b[k]).abs().max().item() <= 2e-3 * max(a[k].abs().max().item(), 1e-3), k


def _rewrite_lora(tmp_path: Path, edit: Callable[[dict], object]) -> Path:
    obj = read_torch_file(_tiny("tiny_s2_v4_lora.pth"), extra={HPARAMS_GLOBAL: HParamsStandIn}).obj
    obj = {**obj, "config": obj["config"].to_dict()}
    edit(obj)
    buf = io.BytesIO()
    torch.save(obj, buf)
    path = tmp_path / "lora.pth"
    path.write_bytes(b"04" + buf.getvalue()[2:])
    return path


def test_lora_file_problems_are_clear_errors(tmp_path: Path) -> None:
    base = _tiny("tiny_s2_v4.pth")
    odd = _rewrite_lora(tmp_path, lambda o: o["weight"].update({"not_a_model_key.weight": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match="base lacks"):
        load_sovits_v3(odd, base=base)
    rank = _rewrite_lora(tmp_path, lambda o: o.update(lora_rank=8))
    with pytest.raises(CheckpointError, match="lora_rank"):
        load_sovits_v3(rank, base=base)
    with pytest.raises(CheckpointError, match="v4 LoRA"):
        load_sovits_v3(_tiny("tiny_s2_v4_lora.pth"), "v3", base=base)
    with pytest.raises(CheckpointError, match="itself a LoRA file"):
        load_sovits_v3(_tiny("tiny_s2_v4_lora.pth"), base=_tiny("tiny_s2_v4_lora.pth"))
    with pytest.raises(MissingResource):
        load_sovits_v3(_tiny("tiny_s2_v4_lora.pth"), base=tmp_path / "missing.pth")
    key = "cfm.base_model.model.estimator.transformer_blocks.0.attn.to_q.lora_A.default.weight"
    with pytest.raises(CheckpointError, match="pair"):
        split_lora({key: torch.zeros(4, 8)}, 4, "x")
    with pytest.raises(CheckpointError, match="targets"):
        split_lora({key.replace("to_q", "norm"): torch.zeros(4, 8)}, 4, "x")


def test_v4_vocoder_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    voc = build_v4_vocoder(32, (3, 5, 7)).eval()
    path = tmp_path / "vocoder.pth"
    torch.save(v4_vocoder_state_dict(voc), path)
    loaded = load_v4_vocoder(path)
    mel = torch.randn(1, 100, 6)
    with torch.no_grad():
        assert torch.allclose(loaded(mel), voc(mel), atol=1e-6)
    torch.save({"conv_pre.weight": torch.zeros(32, 100, 7)}, path)
    with pytest.raises(CheckpointError):
        load_v4_vocoder(path)


def test_bigvgan_folder_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = BigVGAN(BigVGANConfig(upsample_initial_channel=64)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1 and p.shape[0] <= 64:
                p.add_(torch.randn_like(p) * 0.1)  # snake parameters away from their initial values
    save_bigvgan(model, tmp_path / "bv")
    raw = read_torch_file(tmp_path / "bv" / "bigvgan_generator.pt").obj["generator"]
    assert "conv_pre.weight_g" in raw and "conv_pre.weight" not in raw
    loaded = load_bigvgan(tmp_path / "bv")
    mel = torch.randn(1, 100, 5) - 4
    with torch.no_grad():
        assert (loaded(mel) - model(mel)).abs().max().item() <= 1e-5
    (tmp_path / "bv" / "config.json").unlink()
    with pytest.raises(MissingResource, match="config.json"):
        load_bigvgan(tmp_path / "bv")


class _Evil:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned",))


def test_unsafe_pickles_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "bv"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"generator": _Evil()}, protocol=2))
    (folder / "bigvgan_generator.pt").write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="forbidden|refused"):
        read_torch_file(folder / "bigvgan_generator.pt")
    (tmp_path / "vocoder.pth").write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError):
        load_v4_vocoder(tmp_path / "vocoder.pth")
