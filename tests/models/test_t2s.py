"""Invariants of the text-to-semantic model, KV cache and sampler on a tiny random model."""

from __future__ import annotations

import pytest
import torch

from fastsovits.engine.reference_loop import generate
from fastsovits.engine.sampling import (
    GREEDY,
    RowSampling,
    SamplingTensors,
    apply_repetition_penalty_,
    exponential_noise,
    filter_logits,
    mark_seen_,
    sample_step,
)
from fastsovits.engine.t2s_inputs import T2SRow, pad_rows
from fastsovits.errors import InvalidInput, InvalidParameter
from fastsovits.models.kv_cache import StaticKVCache
from fastsovits.models.t2s import T2SConfig, Text2Semantic

CFG = T2SConfig(
    embedding_dim=32,
    hidden_dim=32,
    heads=4,
    n_layers=2,
    phoneme_vocab_size=40,
    vocab_size=65,
    eos=64,
    dropout=0.0,
    bert_dim=16,
)


def _model(seed: int = 0, eos_logit: float = 0.0) -> Text2Semantic:
    """Random weights; eos_logit != 0 pins the EOS logit near that value (feature 0 of the output is 10)."""
    torch.manual_seed(seed)
    model = Text2Semantic(CFG)
    with torch.no_grad():
        for p in model.parameters():  # every tensor matters (no ones/zeros left)
            p.copy_(
                torch.randn_like(p) * (0.3 if p.dim() > 1 else 0.5) + (1.0 if p.dim() == 1 and p.numel() < 2 else 0)
            )
        if eos_logit:
            model.layers[-1].norm2.weight[0] = 0.0
            model.layers[-1].norm2.bias[0] = 10.0
            model.head.weight[:, 0] = 0.0
            model.head.weight[CFG.eos, 0] = eos_logit / 10.0
    return model.eval()


def _row(seed: int, n: int, t: int | None) -> T2SRow:
    g = torch.Generator().manual_seed(seed)
    prompt = None if t is None else torch.randint(0, CFG.vocab_size - 1, (t,), generator=g)
    return T2SRow(
        torch.randint(0, CFG.phoneme_vocab_size, (n,), generator=g), torch.randn(CFG.bert_dim, n, generator=g), prompt
    )


ROWS = [_row(1, 7, 5), _row(2, 13, 11), _row(3, 3, 2), _row(4, 9, None)]


@pytest.fixture(scope="module")
def model() -> Text2Semantic:
    return _model()


def test_cached_decode_equals_uncached_forward(model: Text2Semantic) -> None:
    rows = ROWS[:3]
    results = generate(model, rows, GREEDY, max_steps=20, record_logits=True)
    for row, res in zip(rows, results):
        audio = torch.cat([row.prompt, torch.tensor(res.tokens, dtype=torch.long)])
        t = row.prompt.shape[0]
        full = model(
            row.phones[None],
            torch.tensor([row.phones.shape[0]]),
            row.bert[None],
            audio[None],
            torch.tensor([audio.shape[0]]),
        )[0]  # [P, V]
        n = row.phones.shape[0]
        steps = res.step_logits.shape[0]
        want = full[n + t - 1 : n + t - 1 + steps]
        assert want.shape[0] == steps
        assert (res.step_logits - want).abs().max().item() < 1e-4


def test_batched_greedy_equals_per_row(model: Text2Semantic) -> None:
    batched = generate(model, ROWS, GREEDY, max_steps=40, record_logits=True)
    for row, got in zip(ROWS, batched):
        alone = generate(model, [row], GREEDY, max_steps=40, record_logits=True)[0]
        assert got.tokens == alone.tokens and got.idx == alone.idx and got.stop_reason == alone.stop_reason
        assert (got.step_logits - alone.step_logits).abs().max().item() < 1e-4


def test_prefill_into_chosen_cache_rows(model: Text2Semantic) -> None:
    phones, plen, bert, prompts, tlen = pad_rows(ROWS[:2], CFG.bert_dim, "cpu")
    a = StaticKVCache.for_model(model, 2, 64)
    la, pa = model.prefill(phones, plen, bert, prompts, tlen, a)
    b = StaticKVCache.for_model(model, 4, 64)
    lb, pb = model.prefill(phones, plen, bert, prompts, tlen, b, rows=torch.tensor([3, 1]))
    assert torch.allclose(la, lb, atol=1e-5) and torch.equal(pa, pb)
    tok = la.argmax(-1)
    k_ptr = b.k.data_ptr()
    step_a = model.decode_step(tok.view(2, 1), pa, a)
    full_tok = torch.zeros(4, 1, dtype=torch.long)
    full_tok[[3, 1], 0] = tok
    full_pos = torch.zeros(4, dtype=torch.long)
    full_pos[[3, 1]] = pb
    step_b = model.decode_step(full_tok, full_pos, b)
    assert b.k.data_ptr() == k_ptr  # written in place, never reallocated
    assert (step_a - step_b[[3, 1]]).abs().max().item() < 1e-5


def test_sampled_rows_do_not_depend_on_neighbours(model: Text2Semantic) -> None:
    p = RowSampling(top_k=20, top_p=0.9, temperature=1.3, repetition_penalty=1.35, seed=1234)
    alone = generate(model, [ROWS[1]], p, max_steps=30)[0]
    other = RowSampling(top_k=5, top_p=1.0, temperature=0.7, repetition_penalty=1.0, seed=99)
    mixed = generate(model, [ROWS[0], ROWS[2], ROWS[1]], [other, other, p], max_steps=30)[2]
    assert mixed.tokens == alone.tokens and mixed.idx == alone.idx
    reseeded = generate(model, [ROWS[1]], RowSampling(top_k=20, top_p=0.9, temperature=1.3, seed=1235), max_steps=30)
    assert reseeded[0].tokens != alone.tokens


def test_exponential_race_follows_probabilities() -> None:
    torch.manual_seed(0)
    v, n = 12, 20000
    logits = torch.randn(1, v).expand(n, v).clone()
    knobs = SamplingTensors.from_rows(
        [RowSampling(top_k=0, top_p=1.0, repetition_penalty=1.0, seed=s) for s in range(n)], v
    )
    seen = torch.zeros(n, v, dtype=torch.bool)
    tokens, _ = sample_step(logits.clone(), seen, knobs, torch.full((n,), 20), eos=v - 1)
    freq = torch.bincount(tokens, minlength=v).float() / n
    assert (freq - torch.softmax(logits[0], -1)).abs().max().item() < 0.015


def test_counter_noise_is_exp1_and_row_local() -> None:
    vocab = torch.arange(1025)
    noise = exponential_noise(torch.arange(64) * 7919 + 2**40, torch.arange(64) % 5, vocab)  # [64, 1025]
    assert abs(noise.mean().item() - 1.0) < 0.02 and abs(noise.var().item() - 1.0) < 0.05
    one = exponential_noise(torch.tensor([3 * 7919 + 2**40]), torch.tensor([3]), vocab)
    assert torch.equal(one[0], noise[3])
    assert not torch.equal(noise[0], exponential_noise(torch.tensor([2**40]), torch.tensor([1]), vocab)[0])


def _reference_filter(logits: torch.Tensor, top_k: int, top_p: float, temperature: float) -> torch.Tensor:
    """Straightforward single-row version of the official order: top-p, temperature, top-k."""
    x = logits.clone()
    if top_p < 1.0:
        order = torch.argsort(x, descending=True)
        cum = torch.cumsum(torch.softmax(x[order], -1), -1)
        for rank, idx in enumerate(order.tolist()):
            if rank > 0 and cum[rank] > top_p:
                x[idx] = float("-inf")
    x = x / max(temperature, 1e-5)
    if top_k > 0:
        kth = torch.topk(x, min(top_k, x.numel())).values[-1]
        x[x < kth] = float("-inf")
    return x


def test_filter_matches_reference_per_row() -> None:
    torch.manual_seed(3)
    settings = [(1, 1.0, 1.0), (5, 1.0, 0.7), (0, 0.8, 1.0), (10, 0.5, 2.0), (100, 0.95, 0.3), (3, 0.2, 1.0)]
    logits = torch.randn(len(settings), 50) * 2
    rows = [RowSampling(top_k=k, top_p=p, temperature=t, seed=0) for k, p, t in settings]
    got = filter_logits(logits, SamplingTensors.from_rows(rows, 50))
    for i, (k, p, t) in enumerate(settings):
        want = _reference_filter(logits[i], k, p, t)
        assert torch.equal(torch.isinf(got[i]), torch.isinf(want)), settings[i]
        kept = ~torch.isinf(want)
        assert torch.allclose(got[i][kept], want[kept])


def test_repetition_penalty_once_per_distinct_token() -> None:
    logits = torch.tensor([[2.0, -2.0, 1.0, 4.0]])
    seen = mark_seen_(torch.zeros(1, 4, dtype=torch.bool), torch.tensor([[0, 0, 0, 1, 1]]), torch.tensor([5]))
    apply_repetition_penalty_(logits, seen, torch.tensor([2.0]))
    assert logits.tolist() == [[1.0, -4.0, 1.0, 4.0]]
    # padding beyond a row's length is not "seen"
    seen = mark_seen_(torch.zeros(1, 4, dtype=torch.bool), torch.tensor([[2, 3, 3]]), torch.tensor([1]))
    assert seen.tolist() == [[False, False, True, False]]


def test_eos_banned_for_eleven_steps_then_stops() -> None:
    model = _model(seed=5, eos_logit=100.0)  # EOS dominates every step
    res = generate(model, [ROWS[0]], GREEDY, max_steps=40, record_logits=True)[0]
    assert res.stop_reason == "eos" and res.idx == 11 and len(res.tokens) == 11
    assert int(res.step_logits[0].argmax()) == CFG.eos  # it would have stopped at once without the ban


def test_early_stop_and_cap_keep_the_last_token(model: Text2Semantic) -> None:
    model_no_eos = _model(seed=6, eos_logit=-100.0)
    res = generate(model_no_eos, [ROWS[1]], GREEDY, early_stop_num=15)[0]
    assert res.stop_reason == "early_stop" and res.idx == 15 and len(res.tokens) == 16
    res = generate(model_no_eos, [ROWS[1]], GREEDY, max_steps=25)[0]
    assert res.stop_reason == "max_steps" and res.idx == 24 and len(res.tokens) == 25


def test_training_left_padding_and_loss_decreases() -> None:
    model = _model(seed=7)
    rows = ROWS[:3]
    phones, plen, bert, codes, clen = pad_rows(rows, CFG.bert_dim, "cpu")
    loss, logits, targets = model.training_loss(phones, plen, bert, codes, clen)
    assert targets.shape == (3, codes.shape[1] + 1)
    for i, row in enumerate(rows):  # real positions match the inference forward of the same row
        t = row.prompt.shape[0]
        assert targets[i, t] == CFG.eos and (targets[i, t + 1 :] == CFG.eos).all()
        full = model(row.phones[None], plen[i : i + 1], row.bert[None], row.prompt[None], clen[i : i + 1])[0]
        n = row.phones.shape[0]
        assert (logits[i, : t + 1] - full[n - 1 : n + t]).abs().max().item() < 1e-4
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(15):
        loss, _, _ = model.training_loss(phones, plen, bert, codes, clen)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first


def test_config_round_trip_and_validation() -> None:
    official = CFG.to_official()
    assert official["head"] == 4 and official["n_layer"] == 2 and official["EOS"] == 64
    assert T2SConfig.from_official({"model": official}).to_official() == official
    assert T2SConfig.from_dict(CFG.to_dict()) == CFG
    with pytest.raises(InvalidParameter, match="EOS|eos"):
        T2SConfig(vocab_size=1025, eos=5)
    with pytest.raises(InvalidParameter, match="head"):
        T2SConfig.from_official({"model": {k: v for k, v in official.items() if k != "head"}})
    with pytest.raises(InvalidParameter, match="divisible"):
        T2SConfig(embedding_dim=30, hidden_dim=30, heads=4)


def test_bad_inputs_raise_typed_errors(model: Text2Semantic) -> None:
    cache = StaticKVCache.for_model(model, 1, 8)
    phones, plen, bert, prompts, tlen = pad_rows([ROWS[1]], CFG.bert_dim, "cpu")
    with pytest.raises(InvalidInput, match="max_len"):
        model.prefill(phones, plen, bert, prompts, tlen, cache)
    with pytest.raises(InvalidInput):
        pad_rows([T2SRow(torch.zeros(0, dtype=torch.long), torch.zeros(CFG.bert_dim, 0))], CFG.bert_dim, "cpu")
