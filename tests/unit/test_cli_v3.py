"""`fastsovits convert/detect/info/download` with SoVITS v3/v4 files, LoRA fine-tunes and vocoders (local files only)."""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

import pytest
import torch

from fastsovits.checkpoints.discovery import BERT, BIGVGAN_DIR, BIGVGAN_FILES, HUBERT, OFFICIAL_FILES, VOCODER_FILES
from fastsovits.cli import main
from tests.reference import reference_dir

TINY = reference_dir() / "tiny"
LORA, BASE, VOC4 = (TINY / n for n in ("tiny_s2_v4_lora.pth", "tiny_s2_v4.pth", "tiny_vocoder_v4.pth"))
VOC3 = TINY / "tiny_bigvgan_v3"
GPT = TINY / "tiny_s1_v2.ckpt"


def _run(capsys, *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_convert_a_lora_with_its_gpt_into_one_complete_folder(tmp_path: Path, capsys) -> None:
    from fastsovits.checkpoints.convert import load_converted
    from fastsovits.checkpoints.sovits_v3 import load_sovits_v3
    from fastsovits.checkpoints.v3_files import resolve_v3

    out = tmp_path / "model"
    code, _, err = _run(
        capsys, "convert", "--gpt", GPT, "--sovits", LORA, "--base", BASE, "--vocoder", VOC4, "--out", out
    )
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {
        "config.json",
        "gpt.safetensors",
        "sovits_v3.json",
        "sovits_v3.safetensors",
        "vocoder.safetensors",
    }
    assert load_converted(out).t2s is not None
    got = resolve_v3(out)
    ref, _, _ = load_sovits_v3(LORA, base=BASE)
    a, b = ref.state_dict(), got.model.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    code, info, _ = _run(capsys, "info", out)
    described = json.loads(info)
    assert code == 0 and described["sovits"] == {"version": "v4", "lora_merged": True, "vocoder": "v4"}
    assert described["gpt"]["layers"] == 2


def test_convert_a_plain_v3_model_with_bigvgan(tmp_path: Path, capsys) -> None:
    from fastsovits.checkpoints.v3_files import resolve_v3

    out = tmp_path / "v3"
    assert _run(capsys, "convert", "--sovits", BASE, "--sovits-version", "v3", "--vocoder", VOC3, "--out", out)[0] == 0
    got = resolve_v3(out)
    assert got.version == "v3" and not got.is_lora and type(got.vocoder).__name__ == "BigVGAN"
    assert json.loads(_run(capsys, "info", out)[1])["sovits"]["vocoder"] == "bigvgan"


@pytest.mark.parametrize(
    "args,error,names",
    [
        (["--sovits", LORA, "--vocoder", VOC4], "MissingResource", ["--base", "s2Gv4.pth"]),
        (["--sovits", BASE, "--vocoder", VOC4], "CheckpointError", ["--sovits-version", "'v4'"]),
        (["--sovits", LORA, "--base", BASE], "MissingResource", ["--vocoder", "vocoder.pth"]),
        (["--sovits", BASE, "--sovits-version", "v4", "--vocoder", VOC3], "CheckpointError", ["BigVGAN"]),
        (["--sovits", BASE, "--sovits-version", "v3", "--vocoder", VOC4], "CheckpointError", ["vocoder.pth"]),
        (["--sovits", TINY / "tiny_s2_v2.pth", "--vocoder", VOC4], "InvalidParameter", ["--vocoder", "v3/v4"]),
        (
            ["--sovits", BASE, "--sovits-version", "v4", "--base", BASE, "--vocoder", VOC4],
            "InvalidParameter",
            ["--base", "only for LoRA"],
        ),
        (["--sovits", LORA, "--base", TINY / "tiny_s2_v2.pth", "--vocoder", VOC4], "CheckpointError", ["base"]),
        (["--sovits", LORA, "--base", LORA, "--vocoder", VOC4], "CheckpointError", ["itself a LoRA"]),
    ],
)
def test_convert_refuses_bad_v3_input(tmp_path: Path, capsys, args, error, names) -> None:
    code, _, err = _run(capsys, "convert", *args, "--out", tmp_path / "m")
    assert code == 2 and error in err and "Traceback" not in err, err
    for name in names:
        assert name in err, (name, err)
    assert "base=" not in err and "vocoder=" not in err and "sovits_version=" not in err  # flags, not kwargs
    assert list(tmp_path.iterdir()) == []  # nothing written, no partial folder left


def test_convert_with_a_wrong_version_base(tmp_path: Path, capsys) -> None:
    v3_base = tmp_path / "s2Gv3.pth"
    v3_base.write_bytes(b"02" + BASE.read_bytes()[2:])  # the official v3 header
    code, _, err = _run(
        capsys, "convert", "--sovits", LORA, "--base", v3_base, "--vocoder", VOC4, "--out", tmp_path / "m"
    )
    assert code == 2 and "CheckpointError" in err and "v3 model" in err and "s2Gv4.pth" in err
    assert not (tmp_path / "m").exists()


def test_a_failed_convert_keeps_the_previous_folder(tmp_path: Path, capsys) -> None:
    out = tmp_path / "m"
    assert _run(capsys, "convert", "--sovits", LORA, "--base", BASE, "--vocoder", VOC4, "--out", out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    truncated = tmp_path / "gpt.ckpt"
    truncated.write_bytes(GPT.read_bytes()[:1000])
    code, _, err = _run(
        capsys, "convert", "--gpt", truncated, "--sovits", LORA, "--base", BASE, "--vocoder", VOC4, "--out", out
    )
    assert code == 2 and "CheckpointError" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpt.ckpt", "m"]
    # a truncated LoRA file is refused as well
    bad = tmp_path / "lora.pth"
    bad.write_bytes(LORA.read_bytes()[: LORA.stat().st_size // 3])
    assert _run(capsys, "convert", "--sovits", bad, "--base", BASE, "--vocoder", VOC4, "--out", tmp_path / "n")[0] == 2


def test_detect_v3_files_and_vocoders(capsys) -> None:
    code, out, _ = _run(capsys, "detect", LORA)
    got = json.loads(out)
    assert code == 0 and got["model_version"] == "v4" and got["lora"] is True and got["lora_rank"] == 4
    assert got["family"] == "v3/v4"
    got = json.loads(_run(capsys, "detect", BASE)[1])
    assert got["model_version"] is None and got["official_detection"] == "v2" and got["recorded_version"] == "v4"
    assert got["lora"] is False and got["family"] == "v3/v4"
    assert json.loads(_run(capsys, "detect", VOC4)[1]) | {"file": ""} == {
        "file": "",
        "kind": "vocoder",
        "vocoder": "v4",
        "for_version": "v4",
    }
    assert json.loads(_run(capsys, "detect", VOC3)[1])["vocoder"] == "bigvgan"
    got = json.loads(_run(capsys, "detect", TINY / "tiny_s2_v2ProPlus.pth")[1])
    assert got["model_version"] == "v2ProPlus" and got["family"] == "v1-v2ProPlus" and got["lora_rank"] is None


def test_info_v3_files_and_vocoders(tmp_path: Path, capsys) -> None:
    got = json.loads(_run(capsys, "info", LORA)[1])
    assert got["kind"] == "SoVITS" and got["version"] == "v4" and got["lora"] is True and got["lora_rank"] == 4
    assert any("s2Gv4.pth" in n for n in got["needs"]) and any("vocoder.pth" in n for n in got["needs"])
    got = json.loads(_run(capsys, "info", BASE)[1])
    assert got["version"] is None and got["recorded_version"] == "v4" and "--sovits-version" in got["note"]
    got = json.loads(_run(capsys, "info", VOC4)[1])
    assert got["kind"] == "vocoder" and got["sampling_rate"] == 48000 and got["parameters"] > 0
    got = json.loads(_run(capsys, "info", VOC3)[1])
    assert got["vocoder"] == "bigvgan" and got["for_version"] == "v3"
    assert got["sampling_rate"] == json.loads((VOC3 / "config.json").read_text())["sampling_rate"]
    folder = _official_v4(tmp_path / "pretrained")
    got = json.loads(_run(capsys, "info", folder)[1])
    assert got["complete_versions"] == ["v4"]


def _official_v4(root: Path) -> Path:
    gpt, sovits, _ = OFFICIAL_FILES["v4"]
    for rel, src in ((gpt, GPT), (sovits, BASE), (VOCODER_FILES["v4"], VOC4)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, root / rel)
    for folder in (HUBERT, BERT):
        (root / folder).mkdir(parents=True)
        (root / folder / "config.json").write_text("{}")
    return root


def _fake_hub(hub: Path, version: str) -> None:
    gpt, sovits, _ = OFFICIAL_FILES[version]
    rels = [gpt, sovits, f"{HUBERT}/config.json", f"{BERT}/config.json"]
    rels += [f"{BIGVGAN_DIR}/{f}" for f in BIGVGAN_FILES] if version == "v3" else [VOCODER_FILES["v4"]]
    rels += ["unrelated/other.pth"]
    for rel in rels:
        (hub / rel).parent.mkdir(parents=True, exist_ok=True)
        (hub / rel).write_bytes(b"x")


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch):
    import huggingface_hub

    hub = tmp_path / "hub"
    seen: dict = {}

    def snapshot_download(repo_id, revision, allow_patterns, local_dir):
        seen["patterns"] = allow_patterns
        for f in hub.rglob("*"):
            rel = f.relative_to(hub).as_posix()
            if f.is_file() and any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                (Path(local_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, Path(local_dir) / rel)
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return hub, seen


@pytest.mark.parametrize("form", [["v3"], ["--version", "v3"], ["v4"], ["--version", "v4"]])
def test_download_v3_v4_fills_the_official_layout(tmp_path: Path, capsys, fake_hub, form) -> None:
    from fastsovits.checkpoints.discovery import discover

    hub, seen = fake_hub
    version = form[-1]
    _fake_hub(hub, version)
    out = tmp_path / "models"
    code, printed, err = _run(capsys, "download", *form, "--cache", out)
    assert code == 0, err
    assert f"{version} weights ready" in printed
    found = discover(out, version)
    if version == "v3":
        assert found.vocoder == out / BIGVGAN_DIR and (out / BIGVGAN_DIR / "bigvgan_generator.pt").is_file()
    else:
        assert found.vocoder == out / "gsv-v4-pretrained" / "vocoder.pth" and found.vocoder.is_file()
    assert not (out / "unrelated").exists() and OFFICIAL_FILES[version][1] in seen["patterns"]


def test_download_v3_offline_lists_the_vocoder_files(tmp_path: Path, capsys, monkeypatch) -> None:
    import huggingface_hub

    def offline(**kwargs):
        raise OSError("Cannot reach the hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    for version, files in (("v3", [f"{BIGVGAN_DIR}/{f}" for f in BIGVGAN_FILES]), ("v4", [VOCODER_FILES["v4"]])):
        code, _, err = _run(capsys, "download", version, "--cache", tmp_path / "m")
        assert code == 2 and f"could not download the {version} weights" in err
        for rel in [*OFFICIAL_FILES[version][:2], *files]:
            assert str(tmp_path / "m" / rel) in err, rel


def test_download_a_half_v4_folder_says_what_is_missing(tmp_path: Path, capsys, fake_hub) -> None:
    hub, _ = fake_hub
    _fake_hub(hub, "v4")
    (hub / VOCODER_FILES["v4"]).unlink()
    code, _, err = _run(capsys, "download", "v4", "--cache", tmp_path / "m")
    assert code == 2 and "MissingResource" in err and "vocoder.pth" in err
