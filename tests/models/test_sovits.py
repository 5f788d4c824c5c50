"""SoVITS synthesizer modules on small random models (no files): semantics, masks, errors."""

from __future__ import annotations

import math

import pytest
import torch

from fastsovits.errors import InvalidInput, InvalidParameter
from fastsovits.models.hifigan import HifiGan
from fastsovits.models.ref_encoder import StyleEncoder
from fastsovits.models.sovits import SovitsConfig, Synthesizer
from fastsovits.models.sovits_attention import RelPosEncoder, RelPosSelfAttention
from fastsovits.models.sovits_modules import CouplingFlow
from fastsovits.models.sovits_prior import change_speed
from fastsovits.models.sovits_quantizer import SemanticCodebook

SMALL = dict(
    inter_channels=8,
    hidden_channels=8,
    filter_channels=16,
    n_heads=2,
    n_layers=2,
    upsample_initial_channel=64,
    upsample_kernel_sizes=(16, 16, 8, 2, 2),
    p_dropout=0.0,
)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(version: str = "v2", seed: int = 0) -> Synthesizer:
    torch.manual_seed(seed)
    gin = 16 if version in ("v2Pro", "v2ProPlus") else 512
    model = Synthesizer(SovitsConfig(version=version, gin_channels=gin, **SMALL), with_posterior=False)
    with torch.no_grad():  # every tensor random, so that a constant init cannot hide a wrong path
        for p in model.parameters():
            p.copy_(torch.randn_like(p) / math.sqrt(max(p[0].numel(), 1)))
    return model.eval()


def _naive_rel_attention(att: RelPosSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Loop version of relative-position attention, straight from its definition."""
    _, c, t = x.shape
    h, d, w = att.heads, att.head_dim, att.window
    q, k, v = att.q(x)[0], att.k(x)[0], att.v(x)[0]  # [C, T]
    out = torch.zeros(c, t)
    for head in range(h):
        sl = slice(head * d, (head + 1) * d)
        for i in range(t):
            qi = q[sl, i] / math.sqrt(d)
            scores = torch.stack(
                [qi @ k[sl, j] + (qi @ att.rel_k[0, j - i + w] if abs(j - i) <= w else 0) for j in range(t)]
            )
            p = torch.softmax(scores, 0)
            acc = sum(p[j] * v[sl, j] for j in range(t))
            acc = acc + sum(p[j] * att.rel_v[0, j - i + w] for j in range(t) if abs(j - i) <= w)
            out[sl, i] = acc
    return att.o(out.unsqueeze(0))


@pytest.mark.parametrize("length", [1, 3, 5, 12])
def test_relative_attention_matches_its_definition(length: int) -> None:
    torch.manual_seed(1)
    att = RelPosSelfAttention(8, 2, window=4).eval()
    x = torch.randn(1, 8, length)
    with torch.no_grad():
        got = att(x, torch.ones(1, 1, length))
        want = _naive_rel_attention(att, x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_encoder_padding_does_not_reach_real_frames() -> None:
    torch.manual_seed(2)
    enc = RelPosEncoder(8, 16, 2, 2, 3, 0.0).eval()
    x = torch.randn(1, 8, 9)
    padded = torch.cat([x, 100 * torch.randn(1, 8, 6)], 2)  # garbage in the padding
    mask = (torch.arange(15) < 9).float().view(1, 1, -1)
    with torch.no_grad():
        alone = enc(x, torch.ones(1, 1, 9))
        batched = enc(padded, mask)
    torch.testing.assert_close(batched[..., :9], alone, atol=1e-5, rtol=1e-5)
    assert torch.all(batched[..., 9:] == 0)


def test_hifigan_lengths_make_rows_independent_of_padding() -> None:
    torch.manual_seed(3)
    gen = HifiGan(8, "1", (3, 7), ((1, 3, 5), (1, 3, 5)), (4, 2), 16, (8, 4), gin_channels=4).eval()
    g = torch.randn(1, 4, 1)
    x = torch.randn(1, 8, 7)
    padded = torch.cat([x, torch.zeros(1, 8, 5)], 2)
    with torch.no_grad():
        alone = gen(x, g)
        batched = gen(padded, g, lengths=torch.tensor([7]))
        unmasked = gen(padded, g)
    assert alone.shape == (1, 1, 7 * 8)
    torch.testing.assert_close(batched[..., : 7 * 8], alone, atol=1e-6, rtol=1e-5)
    assert (unmasked[..., : 7 * 8] - alone).abs().max() > 1e-4  # without lengths the padding leaks in


@pytest.mark.parametrize("resblock", ["1", "2"])
def test_hifigan_channels_last_2d_path_equals_the_1d_path(resblock: str) -> None:
    """The CPU layout (height-1 2-D convs, channels-last) computes the same waveform, masks and grads included."""
    torch.manual_seed(4)
    gen = HifiGan(8, resblock, (3, 7), ((1, 3, 5), (1, 3, 5)), (4, 2), 16, (8, 4), gin_channels=4)
    g = torch.randn(2, 4, 1)
    x = torch.randn(2, 8, 9)
    lengths = torch.tensor([9, 6])
    outs = {}
    for flag in (False, True):
        gen.channels_last = flag
        gen.zero_grad()
        y = gen(x, g, lengths=lengths)
        y.square().sum().backward()
        outs[flag] = (y.detach(), gen.ups[0].weight.grad.clone())
        assert y.shape == (2, 1, 9 * 8) and y.is_contiguous()
    torch.testing.assert_close(outs[True][0], outs[False][0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(outs[True][1], outs[False][1], atol=1e-5, rtol=1e-4)
    gen.eval()
    with torch.no_grad():  # cached 2-D weights follow an in-place weight update
        gen.channels_last = True
        before = gen(x, g)
        gen.conv_out.weight.mul_(2.0)
        after = gen(x, g)
        gen.channels_last = False
        torch.testing.assert_close(after, gen(x, g), atol=1e-6, rtol=1e-5)
    assert (after - before).abs().max() > 1e-4


def test_resblock2_generator_runs() -> None:
    gen = HifiGan(8, "2", (3, 5), ((1, 3), (1, 3)), (2, 2), 8, (4, 4)).eval()
    assert gen(torch.randn(2, 8, 5)).shape == (2, 1, 20)


def test_flow_reverse_inverts_forward() -> None:
    torch.manual_seed(4)
    flow = CouplingFlow(8, 8, 5, 1, 2, 4, gin=4).eval()
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    x, g, mask = torch.randn(2, 8, 11), torch.randn(2, 4, 1), torch.ones(2, 1, 11)
    with torch.no_grad():
        z = flow(x, mask, g)
        back = flow(z, mask, g, reverse=True)
    assert (z - x).abs().max() > 1e-2
    torch.testing.assert_close(back, x, atol=1e-5, rtol=1e-5)


def test_codebook_picks_nearest_row_and_decodes_it() -> None:
    torch.manual_seed(5)
    cb = SemanticCodebook(size=32, dim=6)
    x = torch.randn(2, 6, 9)
    codes = cb.encode(x)
    brute = torch.cdist(x.transpose(1, 2), cb.embed.unsqueeze(0).expand(2, -1, -1)).argmin(-1)
    assert torch.equal(codes, brute)
    torch.testing.assert_close(cb.decode(codes), cb.embed[codes].transpose(1, 2))


def test_codebook_training_pass_is_straight_through() -> None:
    cb = SemanticCodebook(size=16, dim=4).train()
    x = torch.randn(1, 4, 5, requires_grad=True)
    q, codes, loss = cb.quantize(x)
    q.sum().backward()
    assert loss.item() > 0 and torch.equal(x.grad, torch.ones_like(x))
    torch.testing.assert_close(q.detach(), cb.decode(codes))


def test_change_speed_lengths_and_single_row_identity() -> None:
    x = torch.randn(2, 3, 80)
    out, new = change_speed(x, [80, 50], [1.25, 1.0])
    assert new == [65, 50] and out.shape == (2, 3, 65)
    torch.testing.assert_close(out[1, :, :50], x[1, :, :50])
    torch.testing.assert_close(out[0:1], torch.nn.functional.interpolate(x[0:1], size=65, mode="linear"))


def test_style_encoder_lengths_match_unpadded_rows() -> None:
    torch.manual_seed(6)
    enc = StyleEncoder(20, 6, hidden=8, heads=2).eval()
    a, b = torch.rand(1, 25, 13), torch.rand(1, 25, 9)
    batch = torch.cat([a, torch.nn.functional.pad(b, (0, 4), value=7.0)], 0)
    with torch.no_grad():
        got = enc(batch, torch.tensor([13, 9]))
        torch.testing.assert_close(got[0:1], enc(a), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(got[1:2], enc(b), atol=1e-6, rtol=1e-5)


def test_style_averages_references_and_uses_sv_for_pro() -> None:
    model = _model("v2Pro")
    a, b = torch.rand(1, 1025, 30), torch.rand(1, 1025, 22)
    sa, sb = torch.randn(1, 20480), torch.randn(1, 20480)
    with torch.no_grad():
        ge = model.style([a, b], [sa, sb])
        one_a, one_b = model.style_one(a, sa), model.style_one(b, sb)
        other_sv = model.style([a], [sb])
    assert ge.shape == (1, 16, 1)
    torch.testing.assert_close(ge, (one_a + one_b) / 2)
    assert (other_sv - one_a).abs().max() > 1e-3


def test_v1_style_reads_all_bins_and_v2_only_704() -> None:
    spec = torch.rand(1, 1025, 20)
    changed = spec.clone()
    changed[:, 900:] += 5.0
    for version, differs in (("v1", True), ("v2", False)):
        model = _model(version)
        with torch.no_grad():
            delta = (model.style([spec]) - model.style([changed])).abs().max().item()
        assert (delta > 1e-4) == differs, (version, delta)


def test_decode_shapes_noise_and_generator() -> None:
    model = _model("v2")
    codes, phones, spec = torch.randint(0, 1024, (1, 1, 10)), torch.randint(0, 732, (1, 7)), torch.rand(1, 1025, 30)
    wav = model.decode(codes, phones, [spec], noise_scale=0.0)
    assert wav.shape == (1, 1, 10 * 1280)
    assert torch.equal(wav, model.decode(codes, phones, [spec], noise_scale=0.0, noise=torch.randn(1, 8, 20)))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    w1 = model.decode(codes, phones, [spec], 0.5, generator=g1)
    assert torch.equal(w1, model.decode(codes, phones, [spec], 0.5, generator=g2))
    assert (w1 - wav).abs().max() > 1e-3 * wav.abs().max()  # the noise reached the waveform
    assert model.decode(codes, phones, [spec], 0.0, speed=1.25).shape == (1, 1, (int(20 / 1.25) + 1) * 640)
    assert model.wav_lengths(torch.tensor([40, 7]), 1.25).tolist() == [41600, 7680]


def test_decode_rejects_bad_inputs() -> None:
    v2, pro = _model("v2"), _model("v2Pro")
    codes, phones, spec = torch.randint(0, 1024, (1, 1, 6)), torch.randint(0, 732, (1, 5)), torch.rand(1, 1025, 20)
    with pytest.raises(InvalidInput, match="speaker-verification"):
        pro.decode(codes, phones, [spec])
    with pytest.raises(InvalidInput, match="sv_emb"):
        v2.decode(codes, phones, [spec], sv_emb=[torch.randn(1, 20480)])
    with pytest.raises(InvalidInput, match="2 sv_emb"):
        pro.decode(codes, phones, [spec], sv_emb=[torch.randn(1, 20480)] * 2)
    with pytest.raises(InvalidInput, match="speed"):
        v2.decode(codes, phones, [spec], speed=0.0)
    with pytest.raises(InvalidInput, match="noise"):
        v2.decode(codes, phones, [spec], 0.5, noise=torch.randn(1, 8, 5))
    with pytest.raises(InvalidInput, match="codes"):
        v2.decode(codes[0], phones, [spec])
    with pytest.raises(InvalidInput, match="704"):
        v2.decode(codes, phones, [spec[:, :500]])
    with pytest.raises(InvalidInput, match="reference"):
        v2.decode(codes, phones, [])


def test_config_validation_and_official_round_trip() -> None:
    with pytest.raises(InvalidParameter, match="v3"):
        SovitsConfig(version="v3")
    with pytest.raises(InvalidParameter, match="gin_channels"):
        SovitsConfig(version="v2", gin_channels=1024)
    with pytest.raises(InvalidParameter, match="halved"):
        SovitsConfig(upsample_initial_channel=16)
    pro = SovitsConfig(
        version="v2ProPlus", gin_channels=1024, upsample_initial_channel=768, upsample_kernel_sizes=(20, 16, 8, 2, 2)
    )
    hps = {
        "model": pro.to_official(),
        "data": {"filter_length": 2048, "hop_length": 640},
        "train": {"segment_size": 20480},
    }
    assert SovitsConfig.from_official(hps, "v2ProPlus") == pro
    assert pro.is_pro and pro.style_bins == 704 and pro.n_symbols == 732 and pro.samples_per_frame == 640
    v1 = SovitsConfig(version="v1")
    assert v1.style_bins == 1025 and v1.n_symbols == 322 and not v1.is_pro
    with pytest.raises(InvalidParameter, match="lacks"):
        SovitsConfig.from_official({"model": {"inter_channels": 8}}, "v2")


def test_posterior_encoder_for_training() -> None:
    model = _model("v2")
    post = model.build_posterior()
    spec, mask = torch.rand(2, 1025, 12), torch.ones(2, 1, 12)
    z, m, logs = post(spec, mask, torch.randn(2, 512, 1), generator=torch.Generator().manual_seed(0))
    assert z.shape == m.shape == logs.shape == (2, 8, 12)
    assert "posterior.wavenet.cond.weight" in Synthesizer(model.config).state_dict()
