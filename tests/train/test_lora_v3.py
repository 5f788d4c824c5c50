"""SoVITS v3/v4 LoRA fine-tuning on the tiny official v4 model: steps, export, reload, official file layout, CLI."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from fastsovits.checkpoints.common import HPARAMS_GLOBAL, HParamsStandIn, read_torch_file
from fastsovits.checkpoints.sovits import detect_sovits_version_fast
from fastsovits.checkpoints.sovits_v3 import load_sovits_v3
from fastsovits.errors import CheckpointError
from fastsovits.models.sovits import as_plain_dict
from fastsovits.train.config import SovitsLoraTrainConfig
from fastsovits.train.loop import DistEnv
from fastsovits.train.lora import export_lora_weights, load_lora_weights, lora_modules, merge_lora_
from fastsovits.train.sovits_v3 import SovitsLoraTask, SovitsV3Dataset, build_lora_model, collate_v3
from tests.reference import reference_dir
from tests.train.layout_fixture import make_layout

TINY = reference_dir() / "tiny"
BASE = TINY / "tiny_s2_v4.pth"
FAST = dict(lora_rank=4, min_items=0, batch_size=2, progress=False, device="cpu")


def _read(path) -> dict:
    return read_torch_file(path, extra={HPARAMS_GLOBAL: HParamsStandIn}).obj


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny v4 base after 3 LoRA steps (a large lr so the adapters move well past fp16 rounding)."""
    tmp = tmp_path_factory.mktemp("lora")
    exp = make_layout(tmp / "exp", n=2)
    cfg = SovitsLoraTrainConfig(lr=1e-2, shortcut_prob=0.0, **FAST)
    torch.manual_seed(0)
    model, official = build_lora_model(BASE, cfg, "v4")
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ds = SovitsV3Dataset(exp, "v4", min_items=0)
    task = SovitsLoraTask(model, ds, cfg, DistEnv(), "exp", official)
    batch = collate_v3([ds[0], ds[1]])
    metrics = [task.train_step([batch]) for _ in range(3)]
    return model, official, before, metrics, tmp


def test_steps_train_the_adapters_and_the_official_parts_only(trained) -> None:
    model, _, before, metrics, _ = trained
    assert all(np.isfinite(m["loss/cfm"]) and m["loss/cfm"] > 0 and np.isfinite(m["grad_norm"]) for m in metrics)
    after = model.state_dict()
    changed = {k for k, v in after.items() if not torch.equal(v, before[k])}
    lora_b = [k for k in after if ".lora_B." in k]
    assert lora_b and all(k in changed for k in lora_b)  # B starts at zero and moves
    assert all(k in changed for k in after if ".lora_A." in k)
    assert "style_encoder.fc1.weight" in changed and "bridge.weight" in changed
    assert "mel_encoder.wavenet.dilated.0.parametrizations.weight.original1" in changed
    frozen = [k for k in after if k.startswith(("prior.", "semantic_proj.", "codebook.")) or ".base_layer." in k]
    frozen += [k for k in after if k.startswith("cfm.") and ".lora_" not in k]
    assert frozen and not changed & set(frozen)
    assert "linear_mel.weight" not in changed  # trained officially, but no loss reaches it


def _round_trained_to_fp16(model: torch.nn.Module) -> None:
    """What the file stores: every trained tensor in fp16 (the base was fp16 already)."""
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(p.half().float())


def _outputs(model, a: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(features, ge) of the fixture's encode call and a CFM call on its stored inputs and noise."""
    t = {k: torch.from_numpy(v) for k, v in a.items()}
    ge = model.style(t["encp.refer_spec"])
    feats = model.encode_features(t["encp.codes"], t["encp.phones"], ge)
    mel = model.cfm.sample(t["cfm.mu"], t["cfm.prompt"], 4, noise=t["cfm.noise"])
    return feats.fea, ge, mel


def test_export_reloads_over_its_base_with_the_same_outputs(trained) -> None:
    """Export -> our loader (base + LoRA file, merged) -> the in-memory model's outputs.

    The file stores fp16 (the official format), so the in-memory model's trained tensors are
    rounded to fp16 first; what remains is float32 arithmetic (merged ``W + B A`` instead of
    ``W x + B (A x)``, weight norm folded once instead of per call): about 1e-6 of outputs of
    order 1, checked at 1e-4 (the fixture's tolerance for features), while the training moved the
    outputs away from the base model's by far more than that (checked too).
    """
    model, official, _, _, tmp = trained
    _round_trained_to_fp16(model)
    path = export_lora_weights(model, tmp / "w" / "exp_e1_s3_l4.pth", epoch=1, step=3, official_config=official)
    loaded, config, info = load_sovits_v3(path, base=BASE)
    assert info.is_lora and info.model_version == "v4" and info.header_tag == "04" and config == model.config
    a = dict(np.load(reference_dir() / "io" / "lora_v4.npz"))
    model.eval()
    with torch.no_grad():
        ours = _outputs(model, a)
        back = _outputs(loaded, a)
        base = _outputs(load_sovits_v3(BASE, "v4")[0], a)
    for x, y, z in zip(ours, back, base):
        assert torch.isfinite(x).all()
        assert (x - y).abs().max().item() < 1e-4
        assert (x - z).abs().max().item() > 1e-2  # the LoRA training changed the model
    merged = merge_lora_(copy.deepcopy(model))  # the in-memory merge equals the loader's
    assert not lora_modules(merged)
    w = "cfm.estimator.transformer_blocks.1.attn.to_out.0.weight"
    torch.testing.assert_close(merged.state_dict()[w], loaded.state_dict()[w], rtol=0, atol=1e-6)


def test_exported_file_has_the_official_lora_layout(trained) -> None:
    model, official, _, _, tmp = trained
    ref_path = TINY / "tiny_s2_v4_lora.pth"
    ref = _read(ref_path)
    path = tmp / "layout.pth"
    export_lora_weights(model, path, epoch=2, step=7, official_config=official)
    ours = _read(path)
    assert path.read_bytes()[:2] == ref_path.read_bytes()[:2] == b"04"
    assert detect_sovits_version_fast(path) == ("v2", "v4", True)
    assert list(ours) == list(ref) == ["weight", "config", "info", "lora_rank"]
    assert ours["lora_rank"] == ref["lora_rank"] == 4 and ours["info"] == "2epoch_7iteration"
    # same architecture and rank as the official fixture: the same keys, in the same order, same shapes
    assert list(ours["weight"]) == list(ref["weight"])
    assert all(ours["weight"][k].shape == ref["weight"][k].shape for k in ref["weight"])
    assert all(t.dtype == torch.float16 for t in ours["weight"].values())
    hps = as_plain_dict(ours["config"])
    assert hps["model"]["version"] == "v4" and hps["version"] == "v4" and hps["train"]["lora_rank"] == "4"
    assert type(ours["config"]).__name__ == type(ref["config"]).__name__  # utils.HParams, like the official


def test_v3_lora_file_has_header_03(tmp_path) -> None:
    cfg = SovitsLoraTrainConfig(**FAST)
    model, official = build_lora_model(BASE, cfg, "v3")
    path = export_lora_weights(model, tmp_path / "v3.pth", epoch=1, step=1, official_config=official)
    assert path.read_bytes()[:2] == b"03" and detect_sovits_version_fast(path) == ("v2", "v3", True)
    loaded, _, info = load_sovits_v3(path, base=BASE)
    assert info.model_version == "v3" and info.is_lora


def test_cli_trains_exports_resumes_and_the_file_loads(tmp_path, capsys) -> None:
    from fastsovits.cli import main

    exp = make_layout(tmp_path / "exp", n=2)
    (tmp_path / "cfg.yaml").write_text("min_items: 0\nshortcut_prob: 0.5\n", encoding="utf-8")
    args = ["train", "sovits", "--exp-dir", str(exp), "--pretrained-g", str(BASE), "--version", "v4"]
    args += [
        "--lora-rank",
        "4",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--quiet",
        "--config",
        str(tmp_path / "cfg.yaml"),
    ]
    assert main([*args, "--epochs", "1"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["epochs"] == [1, 1] and out["steps"] == 1 and np.isfinite(out["last"]["loss/cfm"])
    assert out["run_dir"] == str(exp / "logs_s2_v4_lora_4")
    first = out["exported"][0]
    assert first.endswith("exp_e1_s1_l4.pth")
    assert main([*args, "--epochs", "2"]) == 0  # resumes after epoch 1
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["epochs"] == [2, 2] and out["steps"] == 2 and out["exported"][0].endswith("exp_e2_s2_l4.pth")
    model, _, info = load_sovits_v3(out["exported"][0], base=BASE)
    assert info.is_lora and info.info == "2epoch_2iteration"
    assert as_plain_dict(_read(first)["config"])["name"] == "exp"
    # wrong combinations are clear errors
    assert main([*args, "--epochs", "1", "--pretrained-d", str(BASE)]) == 2
    assert "no discriminator" in capsys.readouterr().err
    v2 = ["train", "sovits", "--exp-dir", str(exp), "--pretrained-g", str(TINY / "tiny_s2_v2.pth"), "--lora-rank", "4"]
    assert main(v2) == 2
    assert "v3/v4 models only" in capsys.readouterr().err
    lora_base = ["train", "sovits", "--exp-dir", str(exp), "--pretrained-g", str(TINY / "tiny_s2_v4_lora.pth")]
    assert main([*lora_base, "--no-resume"]) == 2
    assert "is a LoRA file" in capsys.readouterr().err
    small = ["train", "sovits", "--exp-dir", str(exp), "--pretrained-g", str(BASE), "--no-resume"]  # no --version
    assert main(small) == 2
    assert "pass --version v3 or --version v4" in capsys.readouterr().err


def test_official_lora_file_loads_into_training_and_exports_back_unchanged(tmp_path) -> None:
    """The official fixture -> our training model -> export: the same tensors (our file = theirs),
    and the training model computes what our loader (official merge semantics) computes."""
    ref_path = TINY / "tiny_s2_v4_lora.pth"
    model, official = build_lora_model(BASE, SovitsLoraTrainConfig(**FAST), "v4")
    load_lora_weights(model, ref_path)
    path = export_lora_weights(model, tmp_path / "again.pth", epoch=8, step=800, official_config=official)
    ref, ours = _read(ref_path)["weight"], _read(path)["weight"]
    assert list(ours) == list(ref) and all(torch.equal(ours[k], ref[k]) for k in ref)
    a = dict(np.load(reference_dir() / "io" / "lora_v4.npz"))
    with torch.no_grad():
        mine = _outputs(model.eval(), a)
        theirs = _outputs(load_sovits_v3(ref_path, base=BASE)[0], a)
    for x, y in zip(mine, theirs):
        assert (x - y).abs().max().item() < 1e-4
    torch.testing.assert_close(mine[0], torch.from_numpy(a["encp.fea"]), rtol=0, atol=1e-4)  # the official output
    with pytest.raises(CheckpointError, match="rank"):
        load_lora_weights(build_lora_model(BASE, SovitsLoraTrainConfig(**{**FAST, "lora_rank": 2}), "v4")[0], ref_path)


def test_flow_matching_loss_ignores_padding_and_needs_real_frames() -> None:
    from fastsovits.train.cfm_loss import flow_matching_loss

    est = load_sovits_v3(BASE, "v4")[0].cfm.estimator.eval().requires_grad_(False)
    g = torch.Generator().manual_seed(1)
    x1, mu = torch.randn(2, 100, 40, generator=g), torch.randn(2, 40, 512, generator=g)
    lengths, prompts = torch.tensor([40, 25]), torch.tensor([10, 5])
    junk = x1.clone()
    junk[1, :, 25:] = 100.0  # row 1's padding
    losses = []
    for x in (x1, junk):
        torch.manual_seed(5)
        losses.append(float(flow_matching_loss(est, x, lengths, prompts, mu, shortcut_prob=0.0)))
    assert np.isfinite(losses[0]) and losses[0] == pytest.approx(losses[1], rel=1e-6)
    changed = x1.clone()
    changed[1, :, 10:20] += 1.0  # real, scored frames of row 1
    torch.manual_seed(5)
    assert float(flow_matching_loss(est, changed, lengths, prompts, mu, shortcut_prob=0.0)) != pytest.approx(losses[0])
