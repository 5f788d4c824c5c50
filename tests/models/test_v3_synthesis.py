"""v3/v4 synthesis batched across rows equals per-row synthesis; per-row seeds; sampler options.

Random tiny models (no fixtures): a reduced SynthesizerV3, the v4 HiFi-GAN-style vocoder (x480)
and a reduced BigVGAN (x256). A small in-context window forces several CFM calls per row, with
rows of different voices (prompt lengths), speeds and chunk counts in one batch.
"""

from __future__ import annotations

import pytest
import torch

from fastsovits.checkpoints.vocoders import build_v4_vocoder
from fastsovits.errors import InvalidInput, InvalidParameter
from fastsovits.models import v3_synthesis as syn
from fastsovits.models.bigvgan import BigVGAN, BigVGANConfig
from fastsovits.models.dit import DiTConfig
from fastsovits.models.sovits_v3 import SovitsV3Config, SynthesizerV3

TOL = 1e-4


def _model(version: str) -> SynthesizerV3:
    torch.manual_seed(0)
    config = SovitsV3Config(
        version=version,
        inter_channels=16,
        hidden_channels=16,
        filter_channels=32,
        n_heads=2,
        n_layers=2,
        wns1_hidden=16,
        wns1_layers=2,
        bridge_channels=32,
        p_dropout=0.0,
        dit=DiTConfig(dim=32, depth=2, heads=2, dim_head=16, ff_mult=2, text_dim=32, conv_layers=1),
    )
    return SynthesizerV3(config).eval()


def _vocoder(version: str) -> torch.nn.Module:
    torch.manual_seed(1)
    if version == "v4":
        return build_v4_vocoder(32).eval()
    return BigVGAN(BigVGANConfig(upsample_initial_channel=64)).eval()


def _window(version: str) -> syn.SynthesisWindow:
    official = syn.WINDOWS[version]
    return syn.SynthesisWindow(
        official.mel_rate, official.sampling_rate, t_ref=30, t_chunk=70, upsample=official.upsample
    )


def _prompts(model: SynthesizerV3, window: syn.SynthesisWindow) -> list[syn.InContextPrompt]:
    gen = torch.Generator().manual_seed(2)
    out = []
    for n_codes, n_phones, seconds in ((12, 9, 0.5), (5, 4, 0.25)):
        codes = torch.randint(0, 1024, (1, 1, n_codes), generator=gen)
        phones = torch.randint(0, 732, (1, n_phones), generator=gen)
        spec = torch.rand(1, 704, 40, generator=gen) * 5
        audio = torch.randn(int(window.mel_rate * seconds), generator=gen) * 0.1
        out.append(syn.build_prompt(model, codes, phones, spec, audio, window))
    return out


@pytest.mark.parametrize("version", ["v4", "v3"])
def test_batched_synthesis_equals_single_rows_with_per_row_seeds(version: str) -> None:
    model, vocoder, window = _model(version), _vocoder(version), _window(version)
    voices = _prompts(model, window)
    assert voices[0].frames == window.t_ref and voices[1].frames < window.t_ref  # cut / uncut prompt
    gen = torch.Generator().manual_seed(3)
    rows = [(0, 23, 1.0), (1, 9, 1.25), (0, 31, 0.9)]  # (voice, tokens, speed)
    codes = [torch.randint(0, 1024, (1, 1, n), generator=gen) for _, n, _ in rows]
    phones = [torch.randint(0, 732, (1, 4 + n // 3), generator=gen) for _, n, _ in rows]
    prompts = [voices[v] for v, _, _ in rows]
    speeds = [s for _, _, s in rows]
    seeds = [11, 12, 13]

    def run(idx: list[int]) -> syn.SynthesisOutput:
        return syn.synthesize(
            model,
            vocoder,
            [prompts[i] for i in idx],
            [codes[i] for i in idx],
            [phones[i] for i in idx],
            [speeds[i] for i in idx],
            steps=3,
            generators=[torch.Generator().manual_seed(seeds[i]) for i in idx],
            window=window,
        )

    batch = run([0, 1, 2])
    assert len({len(c) for c in batch.cfm_lengths}) > 1 and max(len(c) for c in batch.cfm_lengths) >= 3
    for i in range(3):
        single = run([i])
        assert single.cfm_lengths[0] == batch.cfm_lengths[i]
        assert single.mels[0].shape == batch.mels[i].shape
        assert (single.mels[0] - batch.mels[i]).abs().max().item() <= TOL
        assert single.audio is not None and batch.audio is not None
        assert single.audio[0].shape == batch.audio[i].shape == (batch.mels[i].shape[2] * window.upsample,)
        assert (single.audio[0] - batch.audio[i]).abs().max().item() <= TOL
    # a different seed for row 0 changes row 0 only
    other = syn.synthesize(
        model,
        None,
        prompts[:2],
        codes[:2],
        phones[:2],
        speeds[:2],
        steps=3,
        generators=[torch.Generator().manual_seed(99), torch.Generator().manual_seed(seeds[1])],
        window=window,
    )
    assert (other.mels[0] - batch.mels[0]).abs().max().item() > 1e-2
    assert (other.mels[1] - batch.mels[1]).abs().max().item() <= TOL


def test_chunk_bounds_follow_the_official_window() -> None:
    # v4 long case of the fixtures: T_min 200, 880 frames -> calls of 1000 and 280 frames
    assert syn.chunk_bounds(880, 200, 1000) == [(0, 800), (800, 880)]
    assert syn.chunk_bounds(800, 200, 1000) == [(0, 800)]
    assert syn.chunk_bounds(0, 200, 1000) == []
    with pytest.raises(InvalidInput):
        syn.chunk_bounds(10, 1000, 1000)


def test_sampler_options() -> None:
    model = _model("v4")
    gen = torch.Generator().manual_seed(4)
    mu, prompt = torch.randn(1, 20, 32, generator=gen), torch.randn(1, 100, 6, generator=gen)
    noise = torch.randn(1, 100, 20, generator=gen)
    base = model.cfm.sample(mu, prompt, 4, noise=noise)
    assert torch.equal(model.cfm.sample(mu, prompt, 4, noise=noise), base)
    assert (model.cfm.sample(mu, prompt, 4, noise=noise, cfg_rate=0.7) - base).abs().max() > 1e-3
    assert (model.cfm.sample(mu, prompt, 8, noise=noise) - base).abs().max() > 1e-3
    cold = model.cfm.sample(mu, prompt, 4, noise=noise, temperature=0.0)
    assert torch.allclose(cold, model.cfm.sample(mu, prompt, 4, noise=torch.randn(1, 100, 20), temperature=0.0))
    for steps in (0, 129):
        with pytest.raises(InvalidParameter):
            model.cfm.sample(mu, prompt, steps, noise=noise)
