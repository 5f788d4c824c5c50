"""Official files -> converted folder -> identical models, loaded without any pickle."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from fastsovits.checkpoints.convert import convert, load_converted
from fastsovits.checkpoints.gpt import load_gpt
from fastsovits.checkpoints.sovits import load_sovits
from fastsovits.errors import CheckpointError, InvalidParameter, MissingResource
from tests.reference import reference_dir

TINY = reference_dir() / "tiny"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    return convert(out_dir=out, gpt=TINY / "tiny_s1_v2.ckpt", sovits=TINY / "tiny_s2_v2ProPlus.pth")


def test_state_dicts_identical(converted) -> None:
    loaded = load_converted(converted)
    gpt, _, _ = load_gpt(TINY / "tiny_s1_v2.ckpt")
    synth, _, _ = load_sovits(TINY / "tiny_s2_v2ProPlus.pth")
    for ours, official in ((loaded.t2s, gpt), (loaded.sovits, synth)):
        a, b = ours.state_dict(), official.state_dict()
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert loaded.sovits_config == load_sovits(TINY / "tiny_s2_v2ProPlus.pth")[1]


def test_outputs_identical(converted) -> None:
    loaded = load_converted(converted)
    gpt, _, _ = load_gpt(TINY / "tiny_s1_v2.ckpt")
    torch.manual_seed(0)
    phones = torch.randint(0, 700, (1, 12))
    bert = torch.randn(1, 1024, 12)
    prompt = torch.randint(0, 1024, (1, 8))
    lens = (torch.tensor([12]), torch.tensor([8]))
    with torch.no_grad():
        a = loaded.t2s(phones, lens[0], bert, prompt, lens[1])
        b = gpt(phones, lens[0], bert, prompt, lens[1])
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_loading_never_unpickles(converted, monkeypatch) -> None:
    def refuse(*a, **k):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = load_converted(converted)
    assert loaded.t2s is not None and loaded.sovits is not None


def test_config_records_sources(converted) -> None:
    cfg = json.loads((converted / "config.json").read_text())
    assert len(cfg["gpt"]["source_sha256"]) == 64
    assert cfg["sovits"]["config"]["version"] == "v2ProPlus"


def test_corrupt_and_missing(tmp_path, converted) -> None:
    with pytest.raises(MissingResource):
        load_converted(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((converted / "config.json").read_text())
    (bad / "gpt.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError):
        load_converted(bad)
    (bad / "config.json").write_text('{"format": "other"}')
    with pytest.raises(CheckpointError):
        load_converted(bad)


def test_fp16_by_default(converted) -> None:
    from safetensors import safe_open

    with safe_open(str(converted / "gpt.safetensors"), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert dtypes == {torch.float16}, dtypes


def _tampered(tmp_path, converted, edit) -> object:
    """A copy of the converted folder whose config.json went through ``edit(config)``."""
    import shutil

    folder = tmp_path / "tampered"
    shutil.copytree(converted, folder)
    cfg = json.loads((folder / "config.json").read_text())
    edit(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def _set(path: str, value):
    def edit(cfg: dict) -> None:
        *keys, last = path.split(".")
        node = cfg
        for k in keys:
            node = node[k]
        node[last] = value

    return edit


@pytest.mark.parametrize(
    "path,value",
    [
        ("gpt.config.n_layers", 1_000_000),
        ("gpt.config.n_layers", "24"),
        ("gpt.config.hidden_dim", None),
        ("gpt.config.heads", True),
        ("gpt.config.dropout", 5),
        ("gpt.config", [1, 2]),
        ("gpt", "oops"),
        ("gpt.max_sec", -1),
        ("sovits.config.upsample_rates", [10, 0, 2, 2, 2]),
        ("sovits.config.upsample_rates", 10),
        ("sovits.config.resblock_dilation_sizes", [[1, 3, 5], 7]),
        ("sovits.config.sampling_rate", 0),
        ("sovits.config.version", ["v2"]),
        ("sovits.config.version", "v9"),
        ("sovits.config.extra", []),
        ("sovits.config", None),
        ("paths", {"hubert_dir": 3}),
        ("paths", {"evil": "/etc"}),
    ],
)
def test_tampered_config_is_a_checkpoint_error(tmp_path, converted, path, value) -> None:
    """Before: TypeError/AttributeError, or a million layers built. Now CheckpointError naming the field."""
    folder = _tampered(tmp_path, converted, _set(path, value))
    with pytest.raises(CheckpointError) as err:
        load_converted(folder)
    assert "config.json" in str(err.value)


def test_tampered_config_is_refused_before_building(tmp_path, converted, monkeypatch) -> None:
    import fastsovits.models.t2s as t2s_module

    def never(*a, **k):
        raise AssertionError("a model was built from a config out of range")

    monkeypatch.setattr(t2s_module, "Text2Semantic", never)
    folder = _tampered(tmp_path, converted, _set("gpt.config.n_layers", 1_000_000))
    with pytest.raises(CheckpointError, match="n_layers"):
        load_converted(folder)


def test_failed_convert_leaves_nothing(tmp_path) -> None:
    out = tmp_path / "out"
    with pytest.raises(CheckpointError):  # the SoVITS file is not a GPT checkpoint: fails after the GPT is written
        convert(out_dir=out, gpt=TINY / "tiny_s1_v2.ckpt", sovits=TINY / "tiny_s1_v2.ckpt")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary folder left behind either


def test_convert_replaces_a_converted_folder_and_refuses_others(tmp_path, converted) -> None:
    out = tmp_path / "m"
    convert(out_dir=out, gpt=TINY / "tiny_s1_v2.ckpt")
    convert(out_dir=out, sovits=TINY / "tiny_s2_v2.pth")  # replaces the earlier conversion
    assert not (out / "gpt.safetensors").exists() and (out / "sovits.safetensors").is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(InvalidParameter):
        convert(out_dir=other, gpt=TINY / "tiny_s1_v2.ckpt")
    assert (other / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "other"]


def test_paths_are_absolute_and_work_from_another_directory(tmp_path, monkeypatch) -> None:
    import shutil

    work = tmp_path / "work"
    (work / "assets").mkdir(parents=True)
    shutil.copytree(TINY / "tiny_hubert", work / "assets/hubert")
    monkeypatch.chdir(work)
    convert(
        out_dir="models/m", gpt=TINY / "tiny_s1_v2.ckpt", sovits=TINY / "tiny_s2_v2.pth", hubert_dir="assets/hubert"
    )  # relative to the cwd at convert time
    cfg = json.loads((work / "models/m/config.json").read_text())
    assert cfg["paths"]["hubert_dir"] == str(work / "assets/hubert")
    monkeypatch.chdir(tmp_path)  # somewhere else
    loaded = load_converted(work / "models/m")
    assert loaded.config["paths"]["hubert_dir"] == str(work / "assets/hubert")


def test_relative_paths_written_by_hand_are_relative_to_the_folder(tmp_path, converted, monkeypatch) -> None:
    folder = _tampered(tmp_path, converted, _set("paths", {"hubert_dir": "hubert"}))
    monkeypatch.chdir(tmp_path)
    assert load_converted(folder).config["paths"]["hubert_dir"] == str(folder.resolve() / "hubert")


def test_missing_inputs_say_not_found(tmp_path) -> None:
    with pytest.raises(MissingResource, match="not found"):
        convert(out_dir=tmp_path / "m", gpt=TINY / "tiny_s1_v2.ckpt", hubert_dir=tmp_path / "no-such-folder")
    assert not (tmp_path / "m").exists()
