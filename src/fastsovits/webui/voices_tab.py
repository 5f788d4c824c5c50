"""Voices tab: the library of saved references (name, clip, text, language) with a preview."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fastsovits.errors import InvalidInput
from fastsovits.webui.config import MAX_UPLOAD_BYTES
from fastsovits.webui.i18n import language_choices
from fastsovits.webui.state import AppState, error_text
from fastsovits.webui.synthesize_tab import NO_VOICE, SynthTab

COLUMNS = ["name", "text", "language"]


def table(state: AppState) -> list[list]:
    return [[v.name, v.text or "", v.language or ""] for v in state.voices.list()]


def names(state: AppState) -> list[str]:
    return [v.name for v in state.voices.list()]


def save(state: AppState, name: str, audio: str | None, text: str, language: str) -> tuple[Any, ...]:
    import gradio as gr

    try:
        if not audio:
            raise InvalidInput(state.t("err_no_ref"))
        path = Path(audio)
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            raise InvalidInput(f"the clip is larger than {MAX_UPLOAD_BYTES // 2**20} MB")
        rec = state.voices.save(name, path.read_bytes(), path.suffix, (text or "").strip() or None, language)
        choices = names(state)
        return (
            table(state),
            gr.update(choices=choices, value=rec.name),
            gr.update(choices=[NO_VOICE, *choices]),
            f"✅ saved {rec.name}",
        )
    except Exception as e:  # noqa: BLE001
        return gr.update(), gr.update(), gr.update(), error_text(e)


def preview(state: AppState, name: str | None) -> tuple[Any, str]:
    if not name:
        return None, ""
    try:
        rec = state.voices.get(name)
        copy = state.out_file(rec.audio_path.suffix, prefix=f"voice-{rec.name}-")
        shutil.copyfile(rec.audio_path, copy)
        return str(copy), f"**{rec.name}** · {rec.language or '-'} · {rec.text or '(reference-free)'}"
    except Exception as e:  # noqa: BLE001
        return None, error_text(e)


def delete(state: AppState, name: str | None) -> tuple[Any, ...]:
    import gradio as gr

    try:
        if not name:
            raise InvalidInput("pick a voice to delete")
        state.voices.delete(name)
        choices = names(state)
        return (
            table(state),
            gr.update(choices=choices, value=None),
            gr.update(choices=[NO_VOICE, *choices]),
            f"✅ deleted {name}",
        )
    except Exception as e:  # noqa: BLE001
        return gr.update(), gr.update(), gr.update(), error_text(e)


def build(state: AppState, synth: SynthTab) -> None:
    import gradio as gr

    t = state.t
    langs = language_choices(state.config.language)
    with gr.Row():
        with gr.Column():
            name = gr.Textbox(label=t("voice_name"), elem_id="voice-name")
            audio = gr.Audio(
                sources=["upload", "microphone"], type="filepath", label=t("ref_audio"), elem_id="voice-audio"
            )
            text = gr.Textbox(label=t("ref_text"), elem_id="voice-text")
            language = gr.Dropdown(langs, value="en", label=t("ref_lang"), elem_id="voice-lang")
            save_btn = gr.Button(t("save_voice"), variant="primary", elem_id="voice-save")
        with gr.Column():
            listing = gr.Dataframe(
                table(state), headers=COLUMNS, label=t("voice_list"), interactive=False, elem_id="voice-table"
            )
            pick = gr.Dropdown(
                allow_custom_value=True, choices=names(state), label=t("preview"), elem_id="voice-preview-pick"
            )
            info = gr.Markdown()
            player = gr.Audio(type="filepath", interactive=False, label=t("preview"), elem_id="voice-preview")
            delete_btn = gr.Button(t("delete_voice"), variant="stop", elem_id="voice-delete")
    status = gr.Markdown(elem_id="voice-status")
    save_btn.click(
        lambda *a: save(state, *a),
        [name, audio, text, language],
        [listing, pick, synth.voice, status],
        api_name="save_voice",
    )
    pick.change(lambda n: preview(state, n), [pick], [player, info], api_name=False)
    delete_btn.click(lambda n: delete(state, n), [pick], [listing, pick, synth.voice, status], api_name=False)
