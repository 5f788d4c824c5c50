"""resolve_v3: one v3/v4 model (SoVITS + vocoder) from a converted folder, an official folder or official files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from fastsovits.checkpoints.convert import convert
from fastsovits.checkpoints.discovery import BERT, BIGVGAN_DIR, HUBERT, OFFICIAL_FILES, VOCODER_FILES
from fastsovits.checkpoints.sovits_v3 import load_sovits_v3
from fastsovits.checkpoints.v3_files import inspect_sovits, resolve_v3, v3_version_of
from fastsovits.checkpoints.vocoders import load_bigvgan, load_v4_vocoder
from fastsovits.errors import CheckpointError, InvalidParameter, MissingResource
from fastsovits.models.bigvgan import BigVGAN
from fastsovits.models.hifigan import HifiGan
from tests.reference import reference_dir

TINY = reference_dir() / "tiny"
LORA, BASE, VOC4 = (TINY / n for n in ("tiny_s2_v4_lora.pth", "tiny_s2_v4.pth", "tiny_vocoder_v4.pth"))
VOC3 = TINY / "tiny_bigvgan_v3"


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.fixture(scope="module")
def merged_v4() -> torch.nn.Module:
    model, _, _ = load_sovits_v3(LORA, base=BASE)
    return model


def _pretrained(root: Path, version: str) -> Path:
    """An official pretrained_models layout holding the tiny files as ``version``."""
    gpt, sovits, _ = OFFICIAL_FILES[version]
    for rel, src in ((gpt, TINY / "tiny_s1_v2.ckpt"), (sovits, BASE)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, root / rel)
    for folder in (HUBERT, BERT):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "config.json").write_text("{}")
    if version == "v3":
        shutil.copytree(VOC3, root / BIGVGAN_DIR, dirs_exist_ok=True)
    else:
        (root / VOCODER_FILES["v4"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(VOC4, root / VOCODER_FILES["v4"])
    return root


def test_every_route_gives_the_same_lora_model(tmp_path: Path, merged_v4) -> None:
    ref_voc = load_v4_vocoder(VOC4)
    files = resolve_v3(sovits=LORA, base=BASE, vocoder=VOC4)
    assert (files.version, files.is_lora, files.source) == ("v4", True, "files")
    folder = _pretrained(tmp_path / "pretrained", "v4")
    official = resolve_v3(folder, sovits=LORA)  # base and vocoder: the folder's v4 files
    assert official.source == "pretrained" and official.gpt == folder / OFFICIAL_FILES["v4"][0]
    assert official.hubert_dir == folder / HUBERT
    out = convert(out_dir=tmp_path / "c", gpt=TINY / "tiny_s1_v2.ckpt", sovits=LORA, base=BASE, vocoder=VOC4)
    converted = resolve_v3(out)
    assert (converted.version, converted.is_lora, converted.source) == ("v4", True, "converted")
    for got in (files, official, converted):
        _same(got.model, merged_v4)
        assert isinstance(got.vocoder, HifiGan)
        _same(got.vocoder, ref_voc)
        assert got.config == merged_v4.config


def test_plain_models_from_a_pretrained_folder(tmp_path: Path) -> None:
    only_v3 = _pretrained(tmp_path / "v3", "v3")
    got = resolve_v3(only_v3)  # the one complete v3/v4 set
    ref, _, _ = load_sovits_v3(BASE, "v3")
    assert got.version == "v3" and not got.is_lora and isinstance(got.vocoder, BigVGAN)
    _same(got.model, ref)
    _same(got.vocoder, load_bigvgan(VOC3))
    both = _pretrained(_pretrained(tmp_path / "both", "v3"), "v4")
    assert resolve_v3(both).version == "v4" and resolve_v3(both, version="v3").version == "v3"
    with pytest.raises(MissingResource, match="vocoder.pth"):
        resolve_v3(tmp_path / "v3", version="v4")  # discover lists the missing v4 files


def test_converted_folder_without_vocoder(tmp_path: Path, merged_v4) -> None:
    out = convert(out_dir=tmp_path / "c", sovits=LORA, base=BASE)  # the library allows it
    with pytest.raises(MissingResource, match="vocoder"):
        resolve_v3(out)
    got = resolve_v3(out, vocoder=VOC4)
    _same(got.model, merged_v4)
    with pytest.raises(CheckpointError, match="v4"):
        resolve_v3(out, version="v3")
    with pytest.raises(InvalidParameter):
        resolve_v3(out, base=BASE)
    with pytest.raises(CheckpointError, match="BigVGAN"):
        resolve_v3(out, vocoder=VOC3)  # a v4 model with the v3 vocoder


def test_bad_inputs_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingResource, match="base="):
        resolve_v3(sovits=LORA, vocoder=VOC4)
    with pytest.raises(MissingResource, match="vocoder="):
        resolve_v3(sovits=LORA, base=BASE)
    with pytest.raises(MissingResource, match="not found"):
        resolve_v3(sovits=LORA, base=tmp_path / "nowhere.pth", vocoder=VOC4)
    with pytest.raises(CheckpointError, match="BigVGAN"):
        resolve_v3(sovits=LORA, base=BASE, vocoder=VOC3)
    with pytest.raises(CheckpointError, match="sovits_version="):
        resolve_v3(sovits=BASE, vocoder=VOC4)  # a small PK file: the version must be given
    with pytest.raises(InvalidParameter, match="only for LoRA"):
        resolve_v3(sovits=BASE, base=BASE, vocoder=VOC4, version="v4")
    with pytest.raises(CheckpointError, match="not a SoVITS v3/v4"):
        resolve_v3(sovits=TINY / "tiny_s2_v2.pth", vocoder=VOC4)
    with pytest.raises(InvalidParameter):
        resolve_v3(sovits=LORA, base=BASE, vocoder=VOC4, version="v2")
    truncated = tmp_path / "lora.pth"
    truncated.write_bytes(LORA.read_bytes()[: LORA.stat().st_size // 2])
    with pytest.raises(CheckpointError):
        resolve_v3(sovits=truncated, base=BASE, vocoder=VOC4)
    bad_voc = tmp_path / "voc"
    bad_voc.mkdir()
    (bad_voc / "config.json").write_text("{}")
    with pytest.raises(MissingResource, match="bigvgan_generator.pt") as e:
        resolve_v3(sovits=BASE, version="v3", vocoder=bad_voc)
    assert str(tmp_path) not in str(e.value)


def test_lora_base_must_be_a_plain_model_of_its_version(tmp_path: Path) -> None:
    v3_base = tmp_path / "s2Gv3.pth"
    v3_base.write_bytes(b"02" + BASE.read_bytes()[2:])  # the official v3 header: certainly v3
    with pytest.raises(CheckpointError, match="v3 model") as e:
        load_sovits_v3(LORA, base=v3_base)
    assert "s2Gv4.pth" in str(e.value)
    with pytest.raises(CheckpointError, match="not a plain SoVITS v3/v4"):
        load_sovits_v3(LORA, base=TINY / "tiny_s2_v2.pth")
    with pytest.raises(CheckpointError, match="itself a LoRA"):
        load_sovits_v3(LORA, base=LORA)


def test_inspect_and_route() -> None:
    lora = inspect_sovits(LORA)
    assert (lora.model_version, lora.is_lora, lora.lora_rank, lora.is_v3) == ("v4", True, 4, True)
    plain = inspect_sovits(BASE)
    assert plain.model_version is None and plain.official_detection == "v2" and plain.recorded_version == "v4"
    assert not plain.is_lora and plain.is_v3
    v2 = inspect_sovits(TINY / "tiny_s2_v2.pth")
    assert (v2.model_version, v2.is_v3, v2.lora_rank) == ("v2", False, None)
    assert v3_version_of(LORA) == "v4" and v3_version_of(BASE, "v3") == "v3"
    assert v3_version_of(TINY / "tiny_s2_v2.pth") is None and v3_version_of(TINY / "tiny_s2_v2Pro.pth") is None
    with pytest.raises(CheckpointError, match="'v4'"):
        v3_version_of(BASE)
    with pytest.raises(CheckpointError):
        inspect_sovits(VOC4)  # a vocoder, not a SoVITS file


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["sovits"]["config"]["dit"].update(depth=10**6),
        lambda m: m["sovits"]["config"].update(version="v9"),
        lambda m: m.update(vocoder={"kind": "other"}),
        lambda m: m.update(format_version=99),
    ],
)
def test_tampered_converted_config_is_refused_before_building(tmp_path: Path, edit) -> None:
    out = convert(out_dir=tmp_path / "c", sovits=BASE, sovits_version="v4", vocoder=VOC4)
    meta = json.loads((out / "sovits_v3.json").read_text())
    edit(meta)
    (out / "sovits_v3.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError):
        resolve_v3(out)
