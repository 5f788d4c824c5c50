"""SoVITS fine-tuning on the tiny official-format s2 models: losses fall, frozen parts, discriminator."""

from __future__ import annotations

import pytest
import torch

from fastsovits.audio.dsp import training_mel
from fastsovits.errors import CheckpointError
from fastsovits.train.config import SovitsTrainConfig
from fastsovits.train.data import SovitsDataset, collate_sovits
from fastsovits.train.discriminator import (
    MultiPeriodDiscriminator,
    load_official_discriminator,
    ours_to_official,
)
from fastsovits.train.loop import DistEnv
from fastsovits.train.losses import SpecToMel, slice_segments
from fastsovits.train.sovits import SovitsTask, build_models, generator_param_groups, train_sovits
from tests.reference import reference_dir
from tests.train.layout_fixture import make_layout

TINY = reference_dir() / "tiny"
SMALL_D = dict(disc_channels=(4, 8, 16, 16, 16), disc_scale_channels=(4, 8, 16, 16, 16, 16))
FAST = dict(min_items=0, batch_size=2, segment_frames=8, progress=False, device="cpu", **SMALL_D)


def test_losses_fall_and_export(tmp_path) -> None:
    exp = make_layout(tmp_path / "exp", n=2)
    cfg = SovitsTrainConfig(epochs=6, lr=4e-4, save_every=3, **FAST)
    result = train_sovits(exp, TINY / "tiny_s2_v2.pth", cfg, run_dir=tmp_path / "run")
    assert result.steps == 6
    for key in ("loss/mel", "loss/g_total"):
        v = [h[key] for h in result.history]
        assert sum(v[-2:]) / 2 < 0.9 * sum(v[:2]) / 2, (key, v)
    assert all(h["loss/d"] > 0 and h["lr"] == pytest.approx(4e-4, rel=1e-3) for h in result.history[:3])
    assert result.history[-1]["lr"] < result.history[0]["lr"]  # ExponentialLR, stepped per epoch
    assert [p.name for p in result.exported] == ["exp_e3_s3.pth", "exp_e6_s6.pth"]


def test_pro_step_freezes_quantizer_and_updates_the_rest(tmp_path) -> None:
    exp = make_layout(tmp_path / "exp", n=2, sv=True)
    cfg = SovitsTrainConfig(**FAST)
    model, disc, _ = build_models(TINY / "tiny_s2_v2ProPlus.pth", None, cfg)
    assert len(disc.discriminators) == 8  # scale + periods 2, 3, 5, 7, 11, 17, 23
    ds = SovitsDataset(exp, "v2ProPlus")
    task = SovitsTask(model, disc, ds, cfg, DistEnv(), "exp")
    frozen = model.semantic_proj.weight.detach().clone()
    codebook = model.codebook.embed.clone()
    sv_before = model.sv_proj.weight.detach().clone()
    m = task.train_step([collate_sovits([ds[0], ds[1]], 8)])
    assert all(torch.isfinite(torch.tensor(v)) for v in m.values())
    assert torch.equal(frozen, model.semantic_proj.weight) and torch.equal(codebook, model.codebook.embed)
    assert not torch.equal(sv_before, model.sv_proj.weight)
    groups = generator_param_groups(model, 1e-4, 0.4)
    low = {id(p) for p in groups[1]["params"]}
    assert id(model.prior.phone_embedding.weight) in low and id(model.prior.mrte.out.weight) in low
    assert id(model.vocoder.conv_in.weight) not in low and groups[1]["lr"] == pytest.approx(4e-5)
    assert all(id(p) != id(model.semantic_proj.weight) for g in groups for p in g["params"])


def test_discriminator_periods_and_official_weights(tmp_path) -> None:
    d2 = MultiPeriodDiscriminator("v2", SMALL_D["disc_channels"], SMALL_D["disc_scale_channels"])
    assert [getattr(d, "period", None) for d in d2.discriminators] == [None, 2, 3, 5, 7, 11]
    official = ours_to_official(d2.state_dict())
    assert "discriminators.1.convs.0.weight_g" in official and "discriminators.0.conv_post.weight_v" in official
    torch.save({"weight": official}, tmp_path / "s2D.pth")
    pro = MultiPeriodDiscriminator("v2Pro", SMALL_D["disc_channels"], SMALL_D["disc_scale_channels"])
    missing = load_official_discriminator(pro, tmp_path / "s2D.pth")
    assert missing and all(k.startswith(("discriminators.6.", "discriminators.7.")) for k in missing)
    y = torch.randn(1, 1, 2048)
    for a, b in zip(d2(y, y)[0], pro(y, y)[0][:6]):
        torch.testing.assert_close(a, b)
    wide = MultiPeriodDiscriminator("v2", (8, 8, 16, 16, 16), SMALL_D["disc_scale_channels"])
    with pytest.raises(CheckpointError, match="another shape"):
        load_official_discriminator(wide, tmp_path / "s2D.pth")
    torch.save({"weight": {"dec.conv_pre.weight": torch.zeros(1)}}, tmp_path / "G.pth")
    with pytest.raises(CheckpointError, match="not an official discriminator"):
        load_official_discriminator(d2, tmp_path / "G.pth")


def test_full_size_discriminator_parameter_counts() -> None:
    """46.75 M (v1/v2) and 63.19 M (v2Pro) parameters, as the official MultiPeriodDiscriminator."""
    with torch.device("meta"):
        counts = {v: sum(p.numel() for p in MultiPeriodDiscriminator(v).parameters()) for v in ("v2", "v2Pro")}
    assert round(counts["v2"] / 1e6, 2) == 46.75 and round(counts["v2Pro"] / 1e6, 2) == 63.19


def test_target_mel_from_spectrogram_equals_mel_of_waveform() -> None:
    from fastsovits.audio.dsp import reference_spectrogram

    wav = torch.randn(2, 640 * 20) * 0.1
    torch.testing.assert_close(SpecToMel()(reference_spectrogram(wav)), training_mel(wav), atol=1e-4, rtol=1e-4)
    x = torch.arange(2 * 3 * 10.0).view(2, 3, 10)
    out = slice_segments(x, torch.tensor([1, 4]), 5)
    assert torch.equal(out[0], x[0, :, 1:6]) and torch.equal(out[1], x[1, :, 4:9])


def test_missing_pro_inputs_are_reported(tmp_path) -> None:
    exp = make_layout(tmp_path / "exp", n=5, sv=True)
    (exp / "7-sv_cn" / "utt001.wav.pt").unlink()
    (exp / "5-wav32k" / "utt002.wav").write_bytes(b"not a wav")
    (exp / "4-cnhubert" / "utt003.wav.pt").write_bytes(b"truncated")
    torch.save(torch.zeros(1, 768, 3), exp / "4-cnhubert" / "utt004.wav.pt")  # far too few frames
    ds = SovitsDataset(exp, "v2Pro")
    assert [it.name for it in ds.items] == ["utt000.wav"]
    assert "7-sv_cn" in ds.skipped["utt001.wav"] and "utt002.wav" in ds.skipped
    assert "cannot read" in ds.skipped["utt003.wav"] and "HuBERT frames" in ds.skipped["utt004.wav"]
