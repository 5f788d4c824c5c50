"""GPT fine-tuning on the tiny official-format s1 model: loss falls, padding is right, resume, configs."""

from __future__ import annotations

import shutil

import pytest
import torch

from fastsovits.checkpoints.gpt import load_gpt
from fastsovits.errors import CheckpointError, InvalidParameter
from fastsovits.train.config import GPTTrainConfig, load_config, with_overrides
from fastsovits.train.data import BucketBatchSampler, T2SDataset, collate_t2s
from fastsovits.train.loop import STATE_FILE
from fastsovits.train.t2s import GPTTask, _Teacher, lr_factor, rejected_codes, token_loss, train_gpt
from tests.reference import reference_dir
from tests.train.layout_fixture import make_layout

S1 = reference_dir() / "tiny/tiny_s1_v2.ckpt"
FAST = dict(min_items=0, batch_size=3, lr=0.01, warmup_steps=2, progress=False, device="cpu", seed=7)


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    return make_layout(tmp_path_factory.mktemp("gpt") / "exp", n=6)


def _weights(path) -> dict[str, torch.Tensor]:
    model, _, _ = load_gpt(path)
    return model.state_dict()


def test_loss_falls_and_exports(exp, tmp_path) -> None:
    cfg = GPTTrainConfig(epochs=5, **FAST)
    result = train_gpt(exp, S1, cfg, run_dir=tmp_path / "run")
    losses = [h["loss/ce"] for h in result.history]
    assert result.steps == len(losses) == 10  # 6 items / batch 3 = 2 steps per epoch
    assert sum(losses[-2:]) / 2 < 0.8 * sum(losses[:2]) / 2, losses
    assert result.items == 30
    lines = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    assert len(lines) == 10 and '"loss/ce"' in lines[0]
    assert [p.name for p in result.exported] == [f"exp-e{e}.ckpt" for e in range(1, 6)]
    _, _, info = load_gpt(result.exported[-1])
    assert info.info == "GPT-e5" and info.max_sec == 54


def test_padding_does_not_change_a_rows_loss(exp) -> None:
    """Rows of different phone/code lengths batched together score as they do alone (spec 14.2)."""
    model, _, _ = load_gpt(S1)
    ds = T2SDataset(exp, "v2")
    rows = [ds[i] for i in range(3)]
    assert len({len(r["phones"]) for r in rows}) > 1 and len({len(r["codes"]) for r in rows}) > 1
    teacher, cfg = _Teacher(model).eval(), GPTTrainConfig(loss_reduction="sum")
    b = collate_t2s(rows)
    with torch.no_grad():
        logits, targets = teacher(b.phones, b.phone_lens, b.bert, b.codes, b.code_lens)
        _, ce = token_loss(logits, targets, b.code_lens, cfg)
        for i, r in enumerate(rows):
            one = collate_t2s([r])
            lg, tg = teacher(one.phones, one.phone_lens, one.bert, one.codes, one.code_lens)
            alone, _ = token_loss(lg, tg, one.code_lens, cfg)
            n = int(one.code_lens[0]) + 1
            torch.testing.assert_close(ce[i, :n].sum(), alone, atol=2e-3, rtol=1e-4)


def test_resume_equals_uninterrupted_run(exp, tmp_path) -> None:
    cfg = GPTTrainConfig(epochs=2, **FAST)
    straight = train_gpt(exp, S1, cfg, run_dir=tmp_path / "a")
    first = train_gpt(exp, S1, with_overrides(cfg, {"epochs": 1}), run_dir=tmp_path / "b")
    assert first.steps == 2
    resumed = train_gpt(exp, S1, cfg, run_dir=tmp_path / "b")
    assert resumed.first_epoch == 2 and resumed.steps == straight.steps == 4 and len(resumed.history) == 2
    a, b = _weights(straight.exported[-1]), _weights(resumed.exported[-1])
    assert all(torch.equal(a[k], b[k]) for k in a)
    done = train_gpt(exp, S1, cfg, run_dir=tmp_path / "b")  # nothing left to do
    assert done.history == [] and done.steps == 4


def test_corrupt_or_foreign_state_is_a_clear_error(exp, tmp_path) -> None:
    cfg = GPTTrainConfig(epochs=1, **FAST)
    train_gpt(exp, S1, cfg, run_dir=tmp_path / "run")
    state = tmp_path / "run" / STATE_FILE
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        train_gpt(exp, S1, cfg, run_dir=tmp_path / "run")
    torch.save({"format": "fastsovits-train-state/1", "kind": "sovits", "epoch": 1, "step": 1, "task": {}}, state)
    with pytest.raises(CheckpointError, match="'sovits' training state"):
        train_gpt(exp, S1, cfg, run_dir=tmp_path / "run")
    fresh = train_gpt(exp, S1, cfg, run_dir=tmp_path / "run", resume=False)
    assert fresh.first_epoch == 1 and fresh.steps == 2


def test_dpo_and_accumulation_step(exp) -> None:
    model, _, _ = load_gpt(S1)
    ds = T2SDataset(exp, "v2")
    from fastsovits.train.loop import DistEnv

    task = GPTTask(model, ds, GPTTrainConfig(dpo=True, grad_accum=2, **FAST), DistEnv(), "exp")
    before = model.head.weight.detach().clone()
    m = task.train_step([collate_t2s([ds[0], ds[1]]), collate_t2s([ds[2]])])
    assert m["loss/dpo"] > 0 and m["loss/ce"] > 0 and "grad_norm" in m
    assert not torch.equal(before, model.head.weight)
    codes = torch.tensor([[5, 6, 7, 8, 9, 1024], [1, 2, 3, 1024, 1024, 1024]])
    rej, lens = rejected_codes(codes, torch.tensor([5, 3]), 1024, torch.Generator().manual_seed(0))
    for row, n, orig in zip(rej, lens.tolist(), ([5, 6, 7, 8, 9], [1, 2, 3])):
        assert 0 < n and (row[n:] == 1024).all() and set(row[:n].tolist()) <= set(orig)


def test_lr_schedule() -> None:
    cfg = GPTTrainConfig(warmup_steps=4, min_lr_ratio=0.1)
    f = [lr_factor(s, 20, cfg) for s in range(20)]
    assert f[0] == pytest.approx(0.25) and f[3] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[3:], f[4:])) and f[-1] == pytest.approx(0.1, abs=0.02)
    assert lr_factor(7, 20, with_overrides(cfg, {"lr_schedule": "constant"})) == 1.0


def test_dataset_filters_report_each_item(tmp_path) -> None:
    exp = make_layout(tmp_path / "exp", n=5)
    lines = (exp / "2-name2text.txt").read_text().splitlines()
    name0, _, w2p, text = lines[0].split("\t")
    lines[0] = "\t".join([name0, " ".join(["AA1"] * 200), w2p, text])  # far too many phones per second
    name1 = lines[1].split("\t")[0]
    lines[2] = lines[2].replace(lines[2].split("\t")[1], "AA1 NOT_A_PHONE")
    (exp / "2-name2text.txt").write_text("\n".join(lines[:1] + lines[2:]) + "\n")  # drop item 1's text
    (exp / "3-bert").mkdir()
    name3 = lines[3].split("\t")[0]
    torch.save(torch.zeros(1024, 2), exp / "3-bert" / f"{name3}.pt")  # wrong phone count
    ds = T2SDataset(exp, "v2")
    assert [it.name for it in ds.items] == [lines[4].split("\t")[0]] and len(ds.skipped) == 4
    assert "phones per second" in ds.skipped[name0] and "not in 2-name2text" in ds.skipped[name1]
    assert "NOT_A_PHONE" in ds.skipped[lines[2].split("\t")[0]] and "BERT" in ds.skipped[name3]


def test_small_datasets_repeat_as_officially(exp) -> None:
    assert len(T2SDataset(exp, "v2", min_items=100)) == 6 * 16  # max(2, 100 // 6) copies
    assert len(T2SDataset(exp, "v2", min_items=10)) == 12 and len(T2SDataset(exp, "v2")) == 6
    assert GPTTrainConfig().min_items == 100


def test_all_items_bad_is_a_typed_error(tmp_path) -> None:
    from fastsovits.errors import InvalidInput

    exp = make_layout(tmp_path / "exp", n=2)
    (exp / "6-name2semantic.tsv").write_text("item_name\tsemantic_audio\n")
    with pytest.raises(InvalidInput, match="no usable GPT training item"):
        T2SDataset(exp, "v2")
    shutil.rmtree(exp)


def test_bucket_sampler() -> None:
    lengths = [5, 50, 7, 48, 6, 52, 9, 8, 10]
    s = BucketBatchSampler(lengths, 3, seed=1)
    batches = s.batches()
    assert sorted(i for b in batches for i in b) == list(range(9))
    assert all(max(lengths[i] for i in b) - min(lengths[i] for i in b) <= 4 for b in batches)
    s.set_epoch(1)
    assert sorted(i for b in s.batches() for i in b) == list(range(9)) and s.batches() == s.batches()
    shards = [BucketBatchSampler(lengths, 2, seed=1, rank=r, world_size=2).batches() for r in range(2)]
    assert len(shards[0]) == len(shards[1]) and shards[0] != shards[1]
    capped = BucketBatchSampler(lengths, 3, max_tokens=60, seed=1).batches()
    assert all(sum(lengths[i] for i in b) <= 60 or len(b) == 1 for b in capped)


def test_config_overrides(tmp_path) -> None:
    y = tmp_path / "o.yaml"
    y.write_text("epochs: 3\nbetas: [0.8, 0.9]\nlr_schedule: constant\n")
    cfg = load_config(GPTTrainConfig, y, {"batch_size": 2, "lr": None})
    assert (cfg.epochs, cfg.betas, cfg.lr_schedule, cfg.batch_size, cfg.lr) == (3, (0.8, 0.9), "constant", 2, 0.002)
    with pytest.raises(InvalidParameter, match="unknown"):
        load_config(GPTTrainConfig, None, {"epoch": 3})
    with pytest.raises(InvalidParameter, match="integer"):
        load_config(GPTTrainConfig, None, {"epochs": "3"})
    y.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(InvalidParameter):
        load_config(GPTTrainConfig, y)
    with pytest.raises(InvalidParameter, match="lr_schedule"):
        GPTTrainConfig(lr_schedule="linear")


def test_bf16_step_and_fp16_needs_cuda(exp) -> None:
    from fastsovits.train.loop import DistEnv

    model, _, _ = load_gpt(S1)
    ds = T2SDataset(exp, "v2")
    task = GPTTask(model, ds, GPTTrainConfig(precision="bf16", **FAST), DistEnv(), "exp")
    m = task.train_step([collate_t2s([ds[0], ds[1]])])
    assert torch.isfinite(torch.tensor(m["loss/ce"])) and model.head.weight.dtype == torch.float32
    fp16 = GPTTask(load_gpt(S1)[0], ds, GPTTrainConfig(precision="fp16", **FAST), DistEnv(), "exp")
    with pytest.raises(InvalidParameter, match="CUDA"):
        fp16.train_step([collate_t2s([ds[0]])])
