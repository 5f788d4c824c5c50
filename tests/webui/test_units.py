"""The WebUI's pieces without a browser: path roots, model scan, voice library, transcripts, step runner, CLI."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import soundfile as sf

from fastsovits.errors import InvalidInput, MissingResource, ReferenceAudioError
from fastsovits.webui import finetune_steps as fs
from fastsovits.webui.catalog import scan
from fastsovits.webui.paths import PathNotAllowed, resolve_in_roots, safe_name
from fastsovits.webui.voice_store import DiskVoiceStore
from tests.webui.conftest import TINY, write_reference


def test_paths_stay_inside_the_roots(tmp_path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.wav").write_bytes(b"x")
    outside = tmp_path / "secret.txt"
    outside.write_text("no")
    (root / "link").symlink_to(outside)
    roots = (root.resolve(),)
    assert resolve_in_roots(str(root / "sub" / "a.wav"), roots) == (root / "sub" / "a.wav").resolve()
    assert resolve_in_roots("sub/a.wav", roots) == (root / "sub" / "a.wav").resolve()
    for bad in (str(outside), "../secret.txt", "sub/../../secret.txt", "link", "/etc/passwd", str(root / "nope")):
        with pytest.raises(PathNotAllowed) as e:
            resolve_in_roots(bad, roots)
        assert str(tmp_path) not in str(e.value).replace(bad, "")  # only the typed text is echoed
    with pytest.raises(InvalidInput):
        resolve_in_roots("  ", roots)
    assert safe_name("my-voice_1.x") == "my-voice_1.x"
    for bad in ("../x", ".hidden", "a/b", "", "x" * 65):
        with pytest.raises(InvalidInput):
            safe_name(bad)


def test_scan_finds_models_and_components(tmp_path) -> None:
    models = tmp_path / "models"
    (models / "sv").mkdir(parents=True)
    shutil.copyfile(TINY / "tiny_s1_v2.ckpt", models / "a.ckpt")
    shutil.copyfile(TINY / "tiny_s2_v2.pth", models / "a.pth")
    (models / "s2D2333k.pth").write_bytes(b"d")
    (models / "sv" / "pretrained_eres2netv2w24s4ep4.ckpt").write_bytes(b"sv")
    shutil.copytree(TINY / "tiny_hubert", models / "chinese-hubert-base")
    exports = tmp_path / "data" / "models" / "ft"
    exports.mkdir(parents=True)
    (exports / "ft.ckpt").write_bytes(b"g")
    cat = scan((models, tmp_path / "data" / "models"))
    assert cat.gpt_labels() == ["a.ckpt", "models/ft/ft.ckpt"]
    assert cat.sovits_labels() == ["a.pth"]  # the discriminator is not offered
    assert cat.components.hubert_dir == models / "chinese-hubert-base"
    assert cat.components.sv == models / "sv" / "pretrained_eres2netv2w24s4ep4.ckpt"
    assert cat.find("a.ckpt", "gpt").path == models / "a.ckpt"
    with pytest.raises(MissingResource):
        cat.find("../a.ckpt", "gpt")


def test_voice_store_round_trip_and_refusals(tmp_path) -> None:
    store = DiskVoiceStore(tmp_path / "voices")
    wav = write_reference(tmp_path / "ref.wav").read_bytes()
    rec = store.save("alice", wav, ".wav", "Hello there.", "en")
    assert rec.audio_path.read_bytes() == wav and store.get("alice").text == "Hello there."
    assert [v.name for v in store.list()] == ["alice"]
    with pytest.raises(ReferenceAudioError):
        store.save("bob", b"not audio", ".wav", None, None)
    long = tmp_path / "long.wav"
    sf.write(str(long), np.zeros(32000 * 40, np.float32), 32000)
    with pytest.raises(ReferenceAudioError):
        store.save("bob", long.read_bytes(), ".wav", None, None)
    with pytest.raises(InvalidInput):
        store.save("../evil", wav, ".wav", None, None)
    with pytest.raises(InvalidInput):
        store.save("carol", wav, ".wav", "text without a language", None)
    store.delete("alice")
    with pytest.raises(MissingResource):
        store.get("alice")


def test_transcripts_table_and_list(tmp_path) -> None:
    exp = fs.experiment(tmp_path, "v1")
    exp.clips.mkdir()
    for name in ("a.wav_0000000000_0000064000.wav", "b.wav"):
        (exp.clips / name).write_bytes(b"")
    rows, unmatched = fs.table_from_list(
        exp, "/x/a.wav|spk|EN|Hello a.\nC:\\y\\b.wav|spk|en|Hello b.\n/z/c.wav|s|en|c\n"
    )
    assert unmatched == 1
    assert rows == [
        [True, "a.wav_0000000000_0000064000.wav", "spk", "en", "Hello a."],
        [True, "b.wav", "spk", "en", "Hello b."],
    ]
    rows[1][0] = False
    assert fs.save_table(exp, rows) == 1
    assert exp.list_path.read_text().strip() == f"{exp.clips / rows[0][1]}|spk|en|Hello a."
    for bad in (
        [[True, "../../etc/passwd", "s", "en", "t"]],
        [[True, "b.wav", "s", "fr", "t"]],
        [[True, "b.wav", "s", "en", "  "]],
        [[False, "b.wav", "s", "en", "t"]],
    ):
        with pytest.raises(InvalidInput):
            fs.save_table(exp, bad)
    assert fs.table_from_clips(exp)[0] == [True, rows[0][1], "spk", "en", "Hello a."]
    with pytest.raises(MissingResource):
        fs.latest_weights(exp)
    exp.weights.mkdir()
    for name in ("v1-e2.ckpt", "v1-e10.ckpt", "v1_e3_s30.pth", "v1_e3_s9.pth"):
        (exp.weights / name).write_bytes(name.encode())
    gpt, sovits = fs.export(exp, tmp_path / "exports")
    upload = tmp_path / "my take (1).wav"
    upload.write_bytes(b"RIFF")
    assert (fs.store_uploads(exp, [str(upload)]) / "my_take__1_.wav").read_bytes() == b"RIFF"
    with pytest.raises(InvalidInput):
        fs.store_uploads(exp, [str(tmp_path / "notes.txt")])
    assert gpt.read_bytes() == b"v1-e10.ckpt" and sovits.read_bytes() == b"v1_e3_s30.pth"


def test_step_runner_reports_failure_and_cancels(tmp_path) -> None:
    from fastsovits.webui.jobs import StepRunner

    runner = StepRunner(tmp_path)
    runner.start(
        "e",
        "prepare",
        {
            "list": str(tmp_path / "missing.list"),
            "exp_dir": str(tmp_path / "x"),
            "sovits": str(tmp_path / "missing.pth"),
        },
    )
    deadline = time.monotonic() + 120
    while runner.status("e", "prepare").state == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    st = runner.status("e", "prepare")
    assert st.state == "failed" and st.error and "missing.pth" in st.error
    runner.reap("e", "prepare")
    runner.start("e", "slice", {"input": str(tmp_path / "nowhere"), "clips": str(tmp_path / "c")})
    with pytest.raises(InvalidInput):
        runner.start("e", "slice", {})  # one step at a time per experiment
    runner.cancel("e")
    assert runner.running("e") is None
    assert runner.status("e", "slice").state in ("cancelled", "failed")


def test_cli_parser_and_config(tmp_path) -> None:
    import argparse

    from fastsovits.webui.cli import add_webui_parser, config_from_args

    parser = argparse.ArgumentParser()
    add_webui_parser(parser.add_subparsers(dest="command"))
    a = parser.parse_args(
        ["webui", "--models", str(tmp_path), "--data", str(tmp_path / "d"), "--auth", "u:p", "--language", "zh"]
    )
    cfg = config_from_args(a)
    assert cfg.auth == ("u", "p") and cfg.language == "zh" and not cfg.share and cfg.port == 9874
    assert tmp_path.resolve() in cfg.allowed_roots
    with pytest.raises(InvalidInput):
        config_from_args(parser.parse_args(["webui", "--models", str(tmp_path), "--auth", "nopass"]))
    with pytest.raises(InvalidInput):
        config_from_args(parser.parse_args(["webui", "--models", str(tmp_path / "missing")]))


def test_chinese_ui_text_is_complete() -> None:
    from fastsovits.webui.i18n import TEXT, language_choices, split_choices, translator

    assert all(
        en and zh and en != zh or key in ("top_k", "top_p", "temperature")
        for key, (en, zh) in TEXT.items()
        if key not in ("ft_gpt_batch", "ft_sovits_batch")
    )
    assert translator("zh")("tab_synth") == "语音合成"
    assert ("多语种混合", "auto") in language_choices("zh") and ("凑四句一切", "cut1") in split_choices("zh")
    assert [v for _, v in language_choices("en", "v1")] == ["all_zh", "en", "all_ja", "zh", "ja", "auto"]


def test_app_builds_in_chinese(tmp_path) -> None:
    from fastsovits.webui.app import build_app
    from fastsovits.webui.config import WebUIConfig

    (tmp_path / "models").mkdir()
    demo, state, runner = build_app(
        WebUIConfig(models_dir=tmp_path / "models", data_dir=tmp_path / "data", language="zh")
    )
    labels = {getattr(b, "label", None) for b in demo.blocks.values()}
    assert {"语音合成", "批量合成", "音色库", "微调训练", "模型管理"} <= labels
    assert {"/synthesize", "/batch", "/finetune_prepare"} <= {f"/{d.api_name}" for d in demo.fns.values() if d.api_name}
    state.pool.close()


def test_registering_the_command_is_light() -> None:
    """``fastsovits.cli`` imports the WebUI's parser: that must not pull gradio or torch in."""
    import subprocess
    import sys

    code = "import sys, fastsovits.webui.cli; print([m for m in ('gradio', 'torch') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_voice_library_is_the_servers_voice_store(tmp_path) -> None:
    from fastsovits.voices.store import VoiceStore as ServerStore
    from fastsovits.webui.voice_store import SharedVoiceStore

    ui = SharedVoiceStore(tmp_path / "store", tmp_path / "cache")
    wav = write_reference(tmp_path / "ref.wav").read_bytes()
    rec = ui.save("alice", wav, ".wav", "Hello there.", "en")
    assert rec.audio_path.read_bytes() == wav and ui.get("alice").text == "Hello there."
    server = ServerStore.open(tmp_path / "store")  # what `fastsovits serve --data-dir` reads
    assert server.get("alice").audio == wav and server.get("alice").language == "en"
    with pytest.raises(ReferenceAudioError):
        ui.save("bob", b"not audio", ".wav", None, None)
    with pytest.raises(InvalidInput):
        ui.save("../evil", wav, ".wav", None, None)
    assert [v.name for v in ui.list()] == ["alice"]
    ui.delete("alice")
    assert "alice" not in server
    with pytest.raises(MissingResource):
        ui.get("alice")
