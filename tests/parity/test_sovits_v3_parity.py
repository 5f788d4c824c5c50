"""Golden parity of SoVITS v3/v4 (features, CFM, in-context synthesis, vocoders, LoRA) with the official code.

Fixtures (README 3.6 and 4): ``io/s2_v4_synthesis.*`` and ``io/s2_v3_synthesis.*`` (the tiny v4
model loaded as v4 and as v3), ``io/bigvgan_v3.*`` (tiny BigVGAN alone and a whole v3 synthesis
with audio), ``io/lora_v4.*`` (a v4 LoRA over its base). Tolerances as stated there: features
1e-4 abs; CFM outputs 1e-3 abs; de-normalised mels 1e-3 relative to their max; vocoder output
1e-4 abs (1e-3 for the whole BigVGAN synthesis); merged LoRA weights 1e-6.
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest
import torch

from fastsovits.checkpoints.sovits import detect_sovits_version_fast
from fastsovits.checkpoints.sovits_v3 import load_sovits_v3, sizes_from_weights, v3_official_layout
from fastsovits.checkpoints.vocoders import build_v4_vocoder, load_bigvgan, load_v4_vocoder, v4_vocoder_state_dict
from fastsovits.errors import CheckpointError, MissingResource
from fastsovits.models import v3_synthesis as syn
from fastsovits.models.sovits_v3 import SovitsV3Config
from tests.reference import reference_dir

pytestmark = pytest.mark.parity

FEA_TOL = 1e-4
CFM_TOL = 1e-3
MEL_REL_TOL = 1e-3
WAV_TOL = 1e-4
SYNTH_WAV_TOL = 1e-3
MERGED_TOL = 1e-6
VERSIONS = ("v3", "v4")


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@cache
def _io(name: str) -> tuple[dict, dict[str, np.ndarray]]:
    base = reference_dir() / "io" / name
    return json.loads(base.with_suffix(".json").read_text()), dict(np.load(base.with_suffix(".npz")))


@cache
def _model(version: str):
    return load_sovits_v3(reference_dir() / "tiny" / "tiny_s2_v4.pth", version)[0]


@cache
def _lora_model():
    tiny = reference_dir() / "tiny"
    return load_sovits_v3(tiny / "tiny_s2_v4_lora.pth", base=tiny / "tiny_s2_v4.pth")


@cache
def _spec_a() -> torch.Tensor:
    return _t(np.load(reference_dir() / "io" / "spectrograms.npz")["spec_a"])


@cache
def _vocoder(version: str) -> torch.nn.Module:
    tiny = reference_dir() / "tiny"
    return load_v4_vocoder(tiny / "tiny_vocoder_v4.pth") if version == "v4" else load_bigvgan(tiny / "tiny_bigvgan_v3")


def _max_diff(ours: torch.Tensor, ref: np.ndarray) -> float:
    assert tuple(ours.shape) == ref.shape, (tuple(ours.shape), ref.shape)
    return (ours.float() - _t(ref)).abs().max().item()


def _synth_cases() -> list[tuple[str, str]]:
    return [(v, c) for v in VERSIONS for c in _io(f"s2_{v}_synthesis")[0]["cases"]]


# ---- features and single CFM calls ------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("speed", ["1", "1.25"])
def test_v3v4_encp_features_match_official(version: str, speed: str) -> None:
    _, a = _io(f"s2_{version}_synthesis")
    model = _model(version)
    fea, ge = model.decode_encp(_t(a["encp.codes"]), _t(a["encp.phones"]), _spec_a(), speed=float(speed))
    assert _max_diff(fea, a[f"encp.speed{speed}.fea"]) <= FEA_TOL
    assert _max_diff(ge, a[f"encp.speed{speed}.ge"]) <= FEA_TOL


@pytest.mark.parametrize("version", VERSIONS)
def test_v3v4_cfm_call_matches_official(version: str) -> None:
    _, a = _io(f"s2_{version}_synthesis")
    out = _model(version).cfm.sample(_t(a["cfm.mu"]), _t(a["cfm.prompt"]), 4, noise=_t(a["cfm.noise"]))
    assert _max_diff(out, a["cfm.out"]) <= CFM_TOL
    assert torch.all(out[:, :, : a["cfm.prompt"].shape[2]] == 0)  # prompt region zeroed


# ---- whole in-context syntheses --------------------------------------------------------------
def _prompt(model, a: dict[str, np.ndarray], spec: torch.Tensor) -> syn.InContextPrompt:
    codes = _t(a["synth.prompt_semantic"]).view(1, 1, -1)
    return syn.build_prompt(model, codes, _t(a["synth.prompt_phones"]).view(1, -1), spec, _t(a["synth.ref_audio"]))


@pytest.mark.parametrize(("version", "case"), _synth_cases())
def test_v3v4_synthesis_matches_official(version: str, case: str) -> None:
    meta, a = _io(f"s2_{version}_synthesis")
    body = meta["cases"][case]
    model = _model(version)
    k = f"synth.{case}."
    noises = [[_t(a[f"{k}noise{i}"]) for i in range(body["n_cfm_calls"])]]
    speed = 1.25 if "speed1.25" in case else 1.0
    with_audio = f"{k}audio" in a
    prompt = _prompt(model, a, _spec_a())
    out = syn.synthesize(
        model,
        _vocoder("v4") if with_audio else None,
        [prompt],
        [_t(a[f"{k}semantic"])],
        [_t(a[f"{k}phones"]).view(1, -1)],
        speed,
        steps=4,
        noises=noises,
    )
    assert out.cfm_lengths == [body["cfm_T_per_call"]]
    ref = a[f"{k}mel_to_vocoder"]
    assert out.mels[0].shape[2] == body["mel_frames"]
    assert _max_diff(out.mels[0], ref) <= MEL_REL_TOL * np.abs(ref).max()
    if with_audio:
        assert out.audio is not None and out.audio[0].shape[0] == body["audio_samples"]
        assert _max_diff(out.audio[0], a[f"{k}audio"]) <= WAV_TOL
    if f"{k}cfm0.fea_in" in a:  # the first call's condition and raw output
        fea = model.encode_features(_t(a[f"{k}semantic"]), _t(a[f"{k}phones"]).view(1, -1), prompt.ge).fea
        fea_in = torch.cat([prompt.fea, fea], 2).transpose(1, 2)
        assert _max_diff(fea_in, a[f"{k}cfm0.fea_in"]) <= FEA_TOL
        raw = model.cfm.sample(fea_in, prompt.mel, 4, noise=noises[0][0])
        assert _max_diff(raw, a[f"{k}cfm0.out"]) <= CFM_TOL


def test_v4_vocoder_matches_official() -> None:
    _, a = _io("s2_v4_synthesis")
    with torch.no_grad():
        wav = _vocoder("v4")(_t(a["vocoder.mel"]))
    assert _max_diff(wav, a["vocoder.wav"]) <= WAV_TOL


# ---- BigVGAN (v3 vocoder) ----------------------------------------------------------------------
def test_bigvgan_vocoder_matches_official() -> None:
    _, a = _io("bigvgan_v3")
    with torch.no_grad():
        wav = _vocoder("v3")(_t(a["vocoder.mel"]))
    assert _max_diff(wav, a["vocoder.wav"]) <= WAV_TOL


def test_bigvgan_v3_synthesis_with_audio_matches_official() -> None:
    meta, a = _io("bigvgan_v3")
    assert meta["n_noise"] == 1
    model = _model("v3")
    prompt = _prompt(model, a, _t(a["synth.refer_spec"]))
    out = syn.synthesize(
        model,
        _vocoder("v3"),
        [prompt],
        [_t(a["synth.short.semantic"])],
        [_t(a["synth.short.phones"]).view(1, -1)],
        1.0,
        steps=4,
        noises=[[_t(a["synth.short.noise0"])]],
    )
    ref = a["synth.short.mel_to_vocoder"]
    assert _max_diff(out.mels[0], ref) <= MEL_REL_TOL * np.abs(ref).max()
    assert out.audio is not None
    assert _max_diff(out.audio[0], a["synth.short.audio"]) <= SYNTH_WAV_TOL


def test_bigvgan_batched_rows_equal_single_rows() -> None:
    voc = _vocoder("v3")
    gen = torch.Generator().manual_seed(3)
    mels = [torch.randn(1, 100, n, generator=gen) - 5 for n in (23, 9, 16)]
    singles = syn.vocode(voc, mels[:1]) + syn.vocode(voc, mels[1:2]) + syn.vocode(voc, mels[2:])
    batched = syn.vocode(voc, mels)
    for s, b in zip(singles, batched):
        assert s.shape == b.shape
        assert (s - b).abs().max().item() <= WAV_TOL


# ---- LoRA ----------------------------------------------------------------------------------------
def test_lora_file_detected_as_official() -> None:
    meta, _ = _io("lora_v4")
    assert detect_sovits_version_fast(reference_dir() / meta["lora_file"]) == ("v2", "v4", True)
    _, _, info = _lora_model()
    assert info.is_lora and info.model_version == "v4" and info.header_tag == "04"


def test_lora_merged_weights_match_official() -> None:
    _, a = _io("lora_v4")
    state = _lora_model()[0].state_dict()
    merged = [k for k in a if k.startswith("merged.")]
    assert merged
    for key in merged:
        assert _max_diff(state[key.removeprefix("merged.")], a[key]) <= MERGED_TOL, key
    base = _model("v4").state_dict()
    assert any((state[k.removeprefix("merged.")] - base[k.removeprefix("merged.")]).abs().max() > 1e-4 for k in merged)


def test_lora_encp_and_cfm_match_official() -> None:
    _, a = _io("lora_v4")
    model = _lora_model()[0]
    fea, ge = model.decode_encp(_t(a["encp.codes"]), _t(a["encp.phones"]), _t(a["encp.refer_spec"]))
    assert _max_diff(fea, a["encp.fea"]) <= FEA_TOL
    assert _max_diff(ge, a["encp.ge"]) <= FEA_TOL
    out = model.cfm.sample(_t(a["cfm.mu"]), _t(a["cfm.prompt"]), 4, noise=_t(a["cfm.noise"]))
    assert _max_diff(out, a["cfm.out"]) <= CFM_TOL
    base_out = _model("v4").cfm.sample(_t(a["cfm.mu"]), _t(a["cfm.prompt"]), 4, noise=_t(a["cfm.noise"]))
    assert (base_out - out).abs().max().item() > 3 * CFM_TOL  # the adapters matter beyond the tolerance


def test_lora_without_base_is_a_clear_error() -> None:
    meta, _ = _io("lora_v4")
    with pytest.raises(MissingResource, match="base"):
        load_sovits_v3(reference_dir() / meta["lora_file"])


def test_small_pk_v3v4_file_needs_an_explicit_version() -> None:
    path = reference_dir() / "tiny" / "tiny_s2_v4.pth"
    assert detect_sovits_version_fast(path) == ("v1", "v1", False)  # the official size rule (under 82978 KiB)
    with pytest.raises(CheckpointError, match="version"):
        load_sovits_v3(path)


# ---- full-size layouts ----------------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
def test_v3v4_full_size_layout_matches_manifest(version: str) -> None:
    manifest = json.loads((reference_dir() / "manifests" / f"s2_{version}.json").read_text())
    expected = {k: tuple(s) for k, s in manifest["state_dict"].items()}
    sizes = sizes_from_weights({k: torch.empty(s, device="meta") for k, s in expected.items()})
    config = SovitsV3Config.from_official({"model": manifest["config_model_section"]}, version, **sizes)
    assert config.dit.depth == 22 and config.dit.heads == 16 and config.wns1_layers == 8
    layout = v3_official_layout(config)
    assert list(layout) == list(expected)
    assert dict(layout) == expected
    assert sum(int(np.prod(s)) for s in layout.values()) == manifest["numel_in_file"]


def test_v4_vocoder_full_size_layout_matches_manifest() -> None:
    manifest = json.loads((reference_dir() / "manifests" / "vocoder_v4.json").read_text())
    sd = v4_vocoder_state_dict(build_v4_vocoder())
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: tuple(s) for k, s in manifest["state_dict"].items()}
    assert len(sd) == manifest["num_keys"]
