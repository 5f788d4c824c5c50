"""Discovery of the official pretrained_models/ layout (fake folder trees)."""

from __future__ import annotations

import pytest

from fastsovits.checkpoints.discovery import BERT, HUBERT, OFFICIAL_FILES, SV, available_versions, discover
from fastsovits.errors import InvalidParameter, MissingResource


def _touch(root, rel) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")


def _shared(root) -> None:
    _touch(root, f"{HUBERT}/config.json")
    _touch(root, f"{BERT}/config.json")


def test_finds_v2pro_plus(tmp_path) -> None:
    _shared(tmp_path)
    gpt, sovits, _ = OFFICIAL_FILES["v2ProPlus"]
    for rel in (gpt, sovits, SV):
        _touch(tmp_path, rel)
    found = discover(tmp_path, "v2ProPlus")
    assert found.gpt == tmp_path / gpt and found.sv == tmp_path / SV
    assert "v2ProPlus" in available_versions(tmp_path)
    assert "v1" not in available_versions(tmp_path)


def test_lists_what_is_missing(tmp_path) -> None:
    _touch(tmp_path, OFFICIAL_FILES["v2"][0])
    with pytest.raises(MissingResource) as e:
        discover(tmp_path, "v2")
    msg = str(e.value)
    assert "s2G2333k.pth" in msg and HUBERT in msg and BERT in msg
    assert "s1bert25hz-5kh" not in msg


def test_v1_needs_no_sv(tmp_path) -> None:
    _shared(tmp_path)
    for rel in OFFICIAL_FILES["v1"][:2]:
        _touch(tmp_path, rel)
    assert discover(tmp_path, "v1").sv is None


def test_bad_arguments(tmp_path) -> None:
    with pytest.raises(InvalidParameter):
        discover(tmp_path, "v9")
    with pytest.raises(MissingResource):
        discover(tmp_path / "nope")


def test_v3_v4_need_their_vocoders(tmp_path) -> None:
    from fastsovits.checkpoints.discovery import BIGVGAN_DIR, BIGVGAN_FILES, VOCODER_FILES
    from fastsovits.checkpoints.download import files_for

    _shared(tmp_path)
    for version in ("v3", "v4"):
        for rel in OFFICIAL_FILES[version][:2]:
            _touch(tmp_path, rel)
    for version in ("v3", "v4"):  # model files alone are not enough
        with pytest.raises(MissingResource, match="vocoder.pth" if version == "v4" else "bigvgan_generator.pt"):
            discover(tmp_path, version)
    _touch(tmp_path, VOCODER_FILES["v4"])
    assert discover(tmp_path, "v4").vocoder == tmp_path / "gsv-v4-pretrained" / "vocoder.pth"
    _touch(tmp_path, f"{BIGVGAN_DIR}/config.json")
    with pytest.raises(MissingResource, match="bigvgan_generator.pt"):
        discover(tmp_path, "v3")
    _touch(tmp_path, f"{BIGVGAN_DIR}/bigvgan_generator.pt")
    assert discover(tmp_path, "v3").vocoder == tmp_path / BIGVGAN_DIR
    assert {"v3", "v4"} <= set(available_versions(tmp_path))
    for rel in OFFICIAL_FILES["v2"][:2]:
        _touch(tmp_path, rel)
    assert discover(tmp_path, "v2").vocoder is None  # v1-v2ProPlus carry their vocoder in the SoVITS file
    assert [f"{BIGVGAN_DIR}/{f}" for f in BIGVGAN_FILES] == files_for("v3")[4:6]
    assert "gsv-v4-pretrained/vocoder.pth" in files_for("v4") and "gsv-v4-pretrained/s2Gv4.pth" in files_for("v4")
