"""Weight-only int8 T2S (models/quant.py): the layer's arithmetic, and accuracy against fp32 on the
tiny parity checkpoints (teacher-forced along the official greedy tokens, so one near-tie does not
derail the rest of a sequence)."""

from __future__ import annotations

import copy
import json
from functools import cache

import numpy as np
import pytest
import torch
from torch import nn

from fastsovits.api import stage_dtypes
from fastsovits.checkpoints.gpt import load_gpt
from fastsovits.engine.t2s_inputs import T2SRow, pad_rows
from fastsovits.errors import InvalidParameter
from fastsovits.models.kv_cache import StaticKVCache
from fastsovits.models.quant import PACKED_MAX_ROWS, Int8Linear, is_quantized, quantize_per_channel, quantize_t2s_
from tests.reference import reference_dir

# Measured on the tiny fixtures (docs/engine.md, "Precision on CPU"): max |logit error| 0.025 (logits span
# about ±2), teacher-forced argmax agreement 244/247 steps. Asserted with headroom:
LOGIT_ERR_BOUND = 0.04
AGREEMENT_FLOOR = 0.97


def test_per_channel_quantization_error_is_half_a_step() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(96, 64, generator=g) * torch.linspace(0.01, 3.0, 96).unsqueeze(1)  # very different rows
    q, scale = quantize_per_channel(w)
    assert q.dtype == torch.int8 and scale.dtype == torch.bfloat16 and scale.shape == (96,)
    assert int(q.abs().max()) <= 127
    err = (q.float() * scale.float().unsqueeze(1) - w).abs()
    assert bool((err <= scale.float().unsqueeze(1) * 0.5 + 1e-6).all())


@pytest.mark.parametrize("in_features", [64, 256, 60])  # 60: not a multiple of 32 -> always the widening path
@pytest.mark.parametrize("rows", [1, 3, PACKED_MAX_ROWS + 5])
def test_int8_linear_matches_its_dequantized_weight(in_features: int, rows: int) -> None:
    g = torch.Generator().manual_seed(1)
    linear = nn.Linear(in_features, 48)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(48, in_features, generator=g) * 0.1)
    layer = Int8Linear.from_linear(linear)
    assert layer.packed_ok == (in_features % 32 == 0)
    x = torch.randn(2, rows, in_features, generator=g).to(torch.bfloat16)
    got = layer(x)
    assert got.shape == (2, rows, 48) and got.dtype == torch.bfloat16
    want = x.float() @ layer.dequantized().float().t() + linear.bias.detach().to(torch.bfloat16).float()
    assert (got.float() - want).abs().max().item() <= 0.02 * want.abs().max().item() + 1e-3
    exact = x.float() @ linear.weight.detach().t() + linear.bias.detach()
    assert (got.float() - exact).abs().max().item() <= 0.05 * exact.abs().max().item()


def test_stage_dtypes_int8() -> None:
    assert stage_dtypes("int8", "cpu")["t2s"] == torch.int8
    assert stage_dtypes("int8", "cpu")["sovits"] in (torch.bfloat16, torch.float32)
    assert stage_dtypes(torch.int8, "cpu") == stage_dtypes("INT8", "cpu")
    assert stage_dtypes("t2s=int8,sovits=bf16", "cpu") == {"t2s": torch.int8, "sovits": torch.bfloat16}
    assert stage_dtypes({"t2s": "int8", "sovits": "fp32"}, "cpu") == {"t2s": torch.int8, "sovits": torch.float32}
    with pytest.raises(InvalidParameter):
        stage_dtypes("int8", "cuda")


@pytest.mark.parametrize("native", [True, False])
def test_plain_int8_picks_the_best_float_for_sovits(monkeypatch, native: bool) -> None:
    from fastsovits import runtime

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native)
    want = torch.bfloat16 if native else torch.float32
    assert stage_dtypes("int8", "cpu") == {"t2s": torch.int8, "sovits": want}


def _sets() -> list[str]:
    return sorted(p.stem for p in (reference_dir() / "io").glob("s1_*.json"))


@cache
def _fixture(name: str):
    meta = json.loads((reference_dir() / "io" / f"{name}.json").read_text())
    arrays = dict(np.load(reference_dir() / "io" / f"{name}.npz"))
    model = load_gpt(reference_dir() / meta["checkpoint"])[0].eval()
    return meta, arrays, model


@torch.no_grad()
def _forced_logits(model, row: T2SRow, tokens: list[int]) -> torch.Tensor:
    """Prefill, then one cached decode step per given token: -> [len(tokens) + 1, V] float32."""
    phones, phone_lens, bert, prompts, prompt_lens = pad_rows([row], model.config.bert_dim, "cpu")
    cache_ = StaticKVCache.for_model(model, 1, int(phone_lens + prompt_lens) + len(tokens) + 2)
    logits, pos = model.prefill(phones, phone_lens, bert, prompts, prompt_lens, cache_)
    out = [logits.float()]
    for t in tokens:
        logits = model.decode_step(torch.tensor([[t]]), pos, cache_, int(pos) + 1)
        pos = pos + 1
        out.append(logits.float())
    return torch.cat(out)


def test_int8_t2s_tracks_fp32_on_the_parity_fixtures() -> None:
    names = _sets()
    assert names, "no s1 fixtures found"
    agree = total = 0
    for name in names:
        meta, arrays, model = _fixture(name)
        quant = quantize_t2s_(copy.deepcopy(model))
        assert is_quantized(quant) and not is_quantized(model)
        assert next(quant.parameters()).dtype == torch.bfloat16
        assert all(b.qkv.qweight.dtype == torch.int8 for b in quant.layers)
        for case in meta["cases"]:
            row = T2SRow(*(torch.from_numpy(arrays[f"{case}.{k}"]) for k in ("phones", "bert", "prompt")))
            tokens = arrays[f"{case}.rp1.0.tokens"].tolist()  # the official greedy sequence
            want = _forced_logits(model, row, tokens)
            got = _forced_logits(quant, row, tokens)
            err = (got - want).abs().max().item()
            assert err <= LOGIT_ERR_BOUND, (name, case, err)
            same = got.argmax(-1) == want.argmax(-1)
            # wherever fp32's choice leads by more than twice the error bound, int8 must choose the same
            top2 = want.topk(2, dim=-1).values
            clear = (top2[:, 0] - top2[:, 1]) > 2 * LOGIT_ERR_BOUND
            assert bool(same[clear].all()), (name, case)
            agree += int(same.sum())
            total += same.numel()
    assert agree / total >= AGREEMENT_FLOOR, (agree, total)


def test_tts_with_int8_t2s_synthesizes() -> None:
    from fastsovits import SynthesisParams
    from fastsovits.api import TTS

    ref = reference_dir()
    with TTS.from_pretrained(
        gpt=ref / "tiny/tiny_s1_v2.ckpt",
        sovits=ref / "tiny/tiny_s2_v2.pth",
        hubert_dir=ref / "tiny/tiny_hubert",
        device="cpu",
        dtype="t2s=int8,sovits=fp32",
        num_slots=2,
        max_len=256,
    ) as tts:
        assert is_quantized(tts.t2s) and next(tts.synthesizer.parameters()).dtype == torch.float32
        wav = np.load(ref / "io/audio_inputs.npz")["wav32k_b"]
        voice = tts.load_reference((wav, 32000), "This is the reference.", "en")
        audio = tts.synthesize("Hello there.", voice, "en", SynthesisParams(top_k=1, seed=0, max_new_tokens=40))
        assert audio.samples.dtype == np.float32 and audio.duration > 0.3
        assert np.isfinite(audio.samples).all()
