"""Golden parity of the SoVITS synthesizer (v1/v2/v2Pro/v2ProPlus) with the official outputs.

Checks every ``io/s2_<version>.npz`` + ``.json`` pair found in the reference folder (fixtures
README 3.4): codes from ``extract_latent`` exactly, every ``decode`` case's waveform and stored
intermediates within 1e-4; every ``manifests/s2_<version>.json`` key layout; the version
detection of the tiny files; and batched decoding against single-row decoding.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from fastsovits.checkpoints.sovits import (
    detect_sovits_version,
    detect_sovits_version_fast,
    load_sovits,
    official_layout,
)
from fastsovits.models.sovits import VERSIONS, SovitsConfig
from tests.reference import reference_dir

pytestmark = pytest.mark.parity

TOL = 1e-4  # README 3.4: intermediates and wav max abs; ssl_proj_out (README 3.4 a)
INTERMEDIATES = ("ge_after_prelu", "ge512", "enc_p_x", "m_p", "logs_p", "y_mask", "z", "dec_in", "wav")


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny models are latency-bound: extra intra-op threads only add contention on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _versions() -> list[str]:
    io_dir = reference_dir() / "io"
    found = [p.stem.removeprefix("s2_") for p in io_dir.glob("s2_*.json") if p.with_suffix(".npz").exists()]
    return sorted(v for v in found if v in VERSIONS)  # s2_v3_synthesis / s2_v4_synthesis are another task


def _manifests() -> list[Path]:
    paths = (reference_dir() / "manifests").glob("s2_*.json")
    return sorted(p for p in paths if p.stem.removeprefix("s2_") in VERSIONS)


@cache
def _load(version: str):
    meta = json.loads((reference_dir() / "io" / f"s2_{version}.json").read_text())
    arrays = dict(np.load(reference_dir() / "io" / f"s2_{version}.npz"))
    model, config, info = load_sovits(reference_dir() / meta["checkpoint"])
    return meta, arrays, model, config, info


@cache
def _spectrograms() -> dict[str, np.ndarray]:
    return dict(np.load(reference_dir() / "io" / "spectrograms.npz"))


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _cases() -> list[tuple[str, str]]:
    out = []
    for v in _versions():
        meta = json.loads((reference_dir() / "io" / f"s2_{v}.json").read_text())
        out += [(v, case) for case in meta["cases"]]
    return out


def _call_args(call: str) -> tuple[float, float, list[str] | None]:
    """noise_scale, speed and sv_emb array names from the recorded official call."""
    noise_scale = float(re.search(r"noise_scale=([0-9.]+)", call)[1])
    speed = float(re.search(r"speed=([0-9.]+)", call)[1])
    sv = re.search(r"sv_emb=\[([^\]]*)\]", call)
    return noise_scale, speed, [s.strip() for s in sv[1].split(",")] if sv else None


def test_fixture_sets_found() -> None:
    assert _versions(), f"no io/s2_<version>.npz fixtures under {reference_dir()}"


@pytest.mark.parametrize("version", _versions())
def test_extract_latent_codes_exact(version: str) -> None:
    meta, arrays, model, _, _ = _load(version)
    ssl = _t(arrays["extract.ssl"])
    with torch.no_grad():
        proj = model.project_ssl(ssl)
        codes = model.extract_latent(ssl)
    assert (proj - _t(arrays["extract.ssl_proj_out"])).abs().max().item() <= TOL
    assert codes.dtype == torch.int64 and codes.shape == arrays["extract.codes"].shape
    assert torch.equal(codes, _t(arrays["extract.codes"]))


@pytest.mark.parametrize(("version", "case"), _cases())
def test_decode_case_matches_official(version: str, case: str) -> None:
    meta, arrays, model, config, _ = _load(version)
    body = meta["cases"][case]
    noise_scale, speed, sv_names = _call_args(body["call"])
    refer = [_t(_spectrograms()[name]) for name in body["refer"]]
    sv = [_t(arrays[f"decode.{n}"]) for n in sv_names] if sv_names else None
    assert (sv is not None) == config.is_pro
    noise_key = f"decode.{case}.noise"
    noise = _t(arrays[noise_key]) if noise_key in arrays else None
    trace: dict = {}
    wav = model.decode(
        _t(arrays["decode.codes"]), _t(arrays["decode.phones"]), refer, noise_scale, speed, sv, noise=noise, trace=trace
    )
    assert list(wav.shape) == body["wav_shape"]
    # With sv vectors the official code adds them in place (`ge += ...`) to the very tensor its
    # ref_enc hook stored, so the stored "ge_ref_enc" of Pro models is ref_enc + sv_proj(sv).
    ge_key = "ge_with_sv" if config.is_pro else "ge_ref_enc"
    checked = {"ge_ref_enc": torch.stack(trace[ge_key])}
    for name in INTERMEDIATES:
        key = f"decode.{case}.{name}"
        if key in arrays:
            value = trace[name]
            checked[name] = torch.stack(value) if isinstance(value, list) else value
    assert "wav" in checked and "z" in checked
    if config.is_pro:
        assert "ge512" in checked and "ge_after_prelu" in checked
    for name, ours in checked.items():
        ref = _t(arrays[f"decode.{case}.{name}"])
        assert ours.shape == ref.shape, (name, tuple(ours.shape), tuple(ref.shape))
        diff = (ours - ref).abs().max().item()
        assert diff <= TOL, f"{version}/{case}/{name}: max abs diff {diff:.3g}"


@pytest.mark.parametrize("path", _manifests(), ids=lambda p: p.stem)
def test_full_size_layout_matches_manifest(path: Path) -> None:
    manifest = json.loads(path.read_text())
    hps = {
        "model": manifest["config_model_section"],
        "data": {"filter_length": 2048, "hop_length": 640},
        "train": {"segment_size": 20480},
    }
    config = SovitsConfig.from_official(hps, path.stem.removeprefix("s2_"))
    layout = official_layout(config)  # built on the meta device
    expected = {k: tuple(s) for k, s in manifest["state_dict"].items()}
    assert len(layout) == manifest["num_keys"]
    assert list(layout) == list(expected)  # same keys in the official order
    assert dict(layout) == expected  # same shapes
    numel = sum(int(np.prod(s)) for s in layout.values())
    assert numel == manifest["numel_in_file"]


@pytest.mark.parametrize("version", _versions())
def test_version_detection_as_official(version: str) -> None:
    meta, _, _, config, info = _load(version)
    path = reference_dir() / meta["checkpoint"]
    assert list(detect_sovits_version_fast(path)) == meta["detected"]
    symbols = "v1" if meta["n_symbols"] == 322 else "v2"
    expected = (symbols, meta["loaded_hps_model_version"], False)
    assert detect_sovits_version(path) == expected
    assert (info.symbol_version, info.model_version, info.is_lora) == expected
    assert config.version == meta["loaded_hps_model_version"] and config.n_symbols == meta["n_symbols"]


def _pad(rows: list[torch.Tensor], dim: int) -> torch.Tensor:
    width = max(r.shape[dim] for r in rows)
    out = []
    for r in rows:
        pad = [0, 0] * (r.dim() - 1 - dim) + [0, width - r.shape[dim]]
        out.append(torch.nn.functional.pad(r, pad))
    return torch.cat(out, 0)


@pytest.mark.parametrize("version", _versions())
def test_batched_decode_equals_single_rows(version: str) -> None:
    """Two sentences of different lengths (own style, speed and noise each) in one padded batch."""
    _, arrays, model, config, _ = _load(version)
    specs = _spectrograms()
    gen = torch.Generator().manual_seed(5)
    svs = [_t(arrays["decode.sv_emb_a"]), _t(arrays["decode.sv_emb_b"])] if config.is_pro else [None, None]
    ges = [model.style([_t(specs[s])], [sv] if sv is not None else None) for s, sv in zip(("spec_a", "spec_b"), svs)]
    codes = [torch.randint(0, 1024, (1, 1, n), generator=gen) for n in (37, 21)]
    phones = [torch.randint(0, config.n_symbols, (1, n), generator=gen) for n in (14, 30)]
    speeds = [1.0, 1.25]
    singles, noises = [], []
    for b in range(2):
        frames = int(model.wav_lengths(torch.tensor([codes[b].shape[2]]), speeds[b])[0]) // config.samples_per_frame
        noises.append(torch.randn(1, config.inter_channels, frames, generator=gen))
        with torch.no_grad():
            singles.append(model.decode_with_style(codes[b], phones[b], ges[b], 0.5, speeds[b], noise=noises[b]))
    code_lengths = torch.tensor([c.shape[2] for c in codes])
    with torch.no_grad():
        batch = model.decode_with_style(
            _pad(codes, 2),
            _pad(phones, 1),
            torch.cat(ges, 0),
            0.5,
            speeds,
            noise=_pad(noises, 2),
            code_lengths=code_lengths,
            phone_lengths=torch.tensor([p.shape[1] for p in phones]),
        )
    lengths = model.wav_lengths(code_lengths, speeds).tolist()
    assert lengths == [s.shape[2] for s in singles] and batch.shape[2] == max(lengths)
    for b in range(2):
        diff = (batch[b : b + 1, :, : lengths[b]] - singles[b]).abs().max().item()
        assert diff <= TOL, f"row {b}: batched vs single max abs diff {diff:.3g}"
        assert torch.all(batch[b, :, lengths[b] :] == 0)
