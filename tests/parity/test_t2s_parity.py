"""Golden parity of the text-to-semantic model with the official GPT-SoVITS outputs.

Every ``io/s1_<v>.npz`` + ``.json`` pair in the reference folder is checked, every case and
repetition-penalty setting in it (see the fixtures README, section 3.3), and every
``manifests/s1_*.json`` key layout.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from fastsovits.checkpoints.gpt import load_gpt, official_layout, official_state_dict
from fastsovits.engine.reference_loop import generate
from fastsovits.engine.sampling import RowSampling, apply_repetition_penalty_
from fastsovits.engine.t2s_inputs import T2SRow
from fastsovits.models.t2s import T2SConfig, Text2Semantic
from tests.reference import reference_dir

pytestmark = pytest.mark.parity

LOGIT_TOL = 1e-4  # README 3.3: prefill/step logits max abs
SIM_TOL = 1e-5
MUTE_TOKEN = 486  # TTS_Config.mute_tokens (README 3.3: similarity with row 486)


def _sets() -> list[str]:
    return sorted(p.stem for p in (reference_dir() / "io").glob("s1_*.json") if p.with_suffix(".npz").exists())


def _manifests() -> list[Path]:
    return sorted((reference_dir() / "manifests").glob("s1_*.json"))


@cache
def _load(name: str):
    meta = json.loads((reference_dir() / "io" / f"{name}.json").read_text())
    arrays = dict(np.load(reference_dir() / "io" / f"{name}.npz"))
    model, config, info = load_gpt(reference_dir() / meta["checkpoint"])
    return meta, arrays, model


def _penalty(rp_key: str) -> float:
    return float(rp_key.removeprefix("rp"))


def _greedy(rp_key: str) -> RowSampling:
    return RowSampling(top_k=1, top_p=1.0, temperature=1.0, repetition_penalty=_penalty(rp_key), seed=0)


def _case_params() -> list[tuple[str, str, str]]:
    out = []
    for name in _sets():
        meta = json.loads((reference_dir() / "io" / f"{name}.json").read_text())
        for case, body in meta["cases"].items():
            out += [(name, case, rp) for rp, v in body.items() if isinstance(v, dict)]
    return out


def _batch_params() -> list[tuple[str, str]]:
    out = []
    for name in _sets():
        meta = json.loads((reference_dir() / "io" / f"{name}.json").read_text())
        out += [(name, rp) for rp, v in meta.get("batch", {}).items() if isinstance(v, dict)]
    return out


def _row(arrays: dict, prefix: str, prompt: np.ndarray) -> T2SRow:
    return T2SRow(
        torch.from_numpy(arrays[f"{prefix}.phones"]),
        torch.from_numpy(arrays[f"{prefix}.bert"]),
        torch.from_numpy(prompt),
    )


@pytest.mark.parametrize("name,case,rp", _case_params())
def test_single_sequence(name: str, case: str, rp: str) -> None:
    meta, arrays, model = _load(name)
    expected = meta["cases"][case][rp]
    prompt = arrays[f"{case}.prompt"]
    result = generate(
        model, [_row(arrays, case, prompt)], _greedy(rp), early_stop_num=meta["early_stop_num"], record_logits=True
    )[0]

    raw = result.step_logits  # [steps, V]
    prefill_diff = (raw[0] - torch.from_numpy(arrays[f"{case}.prefill_logits"])).abs().max().item()
    assert prefill_diff <= LOGIT_TOL, f"prefill logits differ by {prefill_diff}"

    # stored step logits carry the in-place penalty over prompt + tokens generated before each step
    want = torch.from_numpy(arrays[f"{case}.{rp}.step_logits"])
    assert raw.shape == want.shape, (raw.shape, want.shape)
    history = list(prompt.tolist()) + result.tokens
    penalised = raw.clone()
    for step in range(raw.shape[0]):
        seen = torch.zeros(1, raw.shape[1], dtype=torch.bool)
        seen[0, history[: len(prompt) + step]] = True
        apply_repetition_penalty_(penalised[step : step + 1], seen, torch.tensor([_penalty(rp)]))
    step_diff = (penalised - want).abs().max().item()
    assert step_diff <= LOGIT_TOL, f"step logits differ by {step_diff}"

    y = history  # prompt + every generated token (EOS excluded), as the official y
    assert y == arrays[f"{case}.{rp}.y"].tolist()
    assert result.idx == expected["idx"]
    assert result.stop_reason == expected["stopped_by"]
    official_tokens = y[-result.idx :] if result.idx else y  # what TTS.run takes (README: early-stop quirk)
    assert official_tokens == expected["tokens"] == arrays[f"{case}.{rp}.tokens"].tolist()


@pytest.mark.parametrize("name,rp", _batch_params())
def test_batched_rows_of_different_lengths(name: str, rp: str) -> None:
    meta, arrays, model = _load(name)
    expected = meta["batch"][rp]
    n_items = len([k for k in arrays if k.startswith("batch.item") and k.endswith(".phones")])
    assert n_items == len(expected["idx_list"])
    prompt = arrays["batch.prompt"]
    rows = [_row(arrays, f"batch.item{i}", prompt) for i in range(n_items)]
    assert len({r.phones.shape[0] for r in rows}) > 1, "the batch is meant to mix lengths"
    results = generate(model, rows, _greedy(rp), early_stop_num=meta["early_stop_num"])
    for i, r in enumerate(results):
        assert r.idx == expected["idx_list"][i], (i, r.idx, expected["idx_list"][i])
        y = prompt.tolist() + r.tokens
        if r.stop_reason == "eos":
            batch_y = y  # both official paths agree on EOS-stopped rows
            naive_tokens = y[-r.idx :]
        else:  # README: the batched path drops the last token on early stop, the naive one the first
            batch_y = y[:-1]
            naive_tokens = y[-r.idx :]
        assert batch_y == arrays[f"batch.{rp}.item{i}.y"].tolist(), i
        assert batch_y[-r.idx :] == expected["tokens"][i] == arrays[f"batch.{rp}.item{i}.tokens"].tolist(), i
        assert naive_tokens == expected["naive_tokens"][i], i


@pytest.mark.parametrize("name", _sets())
def test_mute_similarity(name: str) -> None:
    _, arrays, model = _load(name)
    sim = model.audio_token_similarity(MUTE_TOKEN)
    diff = (sim - torch.from_numpy(arrays["mute_emb_sim_matrix"])).abs().max().item()
    assert diff <= SIM_TOL, diff


@pytest.mark.parametrize("path", _manifests(), ids=lambda p: p.stem)
def test_full_size_layout_matches_manifest(path: Path) -> None:
    manifest = json.loads(path.read_text())
    config = T2SConfig.from_official(manifest["config_model_section"])
    want = {k: tuple(v) for k, v in manifest["state_dict"].items()}
    layout = official_layout(config)
    assert list(layout) == list(want)  # same keys, same order
    assert dict(layout) == want
    with torch.device("meta"):
        model = Text2Semantic(config)
    exported = official_state_dict(model)
    assert {k: tuple(v.shape) for k, v in exported.items()} == want
    assert sum(int(np.prod(s)) for s in layout.values()) == manifest["numel_in_file"]
    assert sum(p.numel() for p in model.parameters()) == manifest["numel_module_parameters_total"]


@pytest.mark.parametrize("name,rp", _batch_params())
def test_engine_continuous_batching_reproduces_official_tokens(name: str, rp: str) -> None:
    """Every fixture row (batch items and single cases) through the scheduler + static-cache runner with
    fewer slots than rows (slots are reused mid-run): each row generates the official sequence."""
    from tests.engine.test_t2s_runner import _run

    meta, arrays, model = _load(name)
    prompt = arrays["batch.prompt"]
    n_items = len([k for k in arrays if k.startswith("batch.item") and k.endswith(".phones")])
    rows = [_row(arrays, f"batch.item{i}", prompt) for i in range(n_items)]
    want = [arrays[f"batch.{rp}.item{i}.y"].tolist() for i in range(n_items)]
    for case, body in meta["cases"].items():
        if rp in body and isinstance(body[rp], dict):
            rows.append(_row(arrays, case, arrays[f"{case}.prompt"]))
            want.append(arrays[f"{case}.{rp}.y"].tolist())
    early = meta["early_stop_num"]
    results, sizes = _run(
        model,
        rows,
        [_greedy(rp)] * len(rows),
        slots=2,
        max_new=early + 1,
        max_len=max(len(r.phones) + len(r.prompt) for r in rows) + early + 2,
    )
    assert max(n for n, _ in sizes) == 2 and len(results) == len(rows)
    for i, row in enumerate(rows):
        r = results[i]
        y = row.prompt.tolist() + r.generated
        if r.stop_reason == "eos":
            assert y == want[i], i
        else:  # the official batched path stores one token less on early stop (README 3.3)
            assert r.stop_reason == "max_tokens" and y[: len(want[i])] == want[i], i
