"""The T2S attention used for word timestamps reproduces the model's own attention exactly."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fastsovits.models.layers import prefix_mask
from fastsovits.models.t2s import T2SConfig, Text2Semantic

CFG = T2SConfig(
    embedding_dim=32,
    hidden_dim=32,
    heads=4,
    n_layers=3,
    phoneme_vocab_size=40,
    vocab_size=65,
    eos=64,
    dropout=0.0,
    bert_dim=16,
)


def _model() -> Text2Semantic:
    torch.manual_seed(0)
    return Text2Semantic(CFG, max_positions=8).eval()  # a short table: text_attention must build its own


def test_timestamp_attention_probs_are_the_blocks_attention() -> None:
    model = _model()
    block = model.layers[0]
    torch.manual_seed(1)
    x = torch.randn(2, 9, 32)
    mask = prefix_mask(torch.tensor([4, 3]), torch.tensor([9, 7]), 9)
    probs = block.attention_probs(x, mask)  # [B, H, S, S]
    v = block.qkv(x)[..., 64:].view(2, 9, 4, 8).transpose(1, 2)
    attn = (probs @ v).transpose(1, 2).reshape(2, 9, 32)
    h = block.norm1(x + block.out(attn))
    expected = block.norm2(h + block.ff2(F.relu(block.ff1(h))))
    torch.testing.assert_close(expected, block(x, mask), rtol=1e-5, atol=1e-5)
    assert torch.all(probs[~mask.expand_as(probs)] == 0)
    torch.testing.assert_close(block.attention_probs(x, mask, slice(5, 8)), probs[:, :, 5:8])


def test_timestamp_text_attention_averages_the_forward_passes_attention() -> None:
    model = _model()
    n, t = 6, 11
    torch.manual_seed(2)
    phones, bert, audio = torch.randint(0, 40, (n,)), torch.randn(16, n), torch.randint(0, 64, (t,))
    out = model.text_attention(phones, bert, audio, query_chunk=4)  # chunks of 4 queries: 3 chunks
    assert out.shape == (t, n) and model.pe.shape[0] == 8  # the model's table is left alone
    inputs: list[torch.Tensor] = []
    hooks = [b.register_forward_pre_hook(lambda _m, args: inputs.append(args[0])) for b in model.layers]
    with torch.no_grad():
        model.ensure_positions(max(n, t))
        model(phones.view(1, n), torch.tensor([n]), bert.unsqueeze(0), audio.view(1, t), torch.tensor([t]))
    for hook in hooks:
        hook.remove()
    mask = prefix_mask(torch.tensor([n]), torch.tensor([n + t]), n + t)
    expected = sum(b.attention_probs(x, mask)[0, :, n:, :n].mean(0) for b, x in zip(model.layers, inputs))
    torch.testing.assert_close(out, expected / len(model.layers), rtol=1e-5, atol=1e-6)
    assert torch.all(out.sum(1) <= 1 + 1e-5) and torch.all(out > 0)
    assert model.text_attention(phones, bert, audio[:0]).shape == (0, n)
