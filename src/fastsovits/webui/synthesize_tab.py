"""Synthesize tab (layout): model pickers, reference (upload, microphone or saved voice), text, parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastsovits.webui.config import MAX_TEXT_CHARS
from fastsovits.webui.i18n import language_choices, split_choices
from fastsovits.webui.state import AppState
from fastsovits.webui.synthesize_handlers import (
    NO_VOICE,
    load_model,
    model_key,
    preview_split,
    refresh_lists,
    synthesize,
    synthesize_streaming,
)

__all__ = ["NO_VOICE", "SynthTab", "build", "model_key"]
# Official WebUI ranges; a lower bound of 0 where the engine needs a positive value starts at 0.05.
TOP_K = (1, 100, 15)
TOP_P = (0.05, 1.0, 1.0)
TEMPERATURE = (0.05, 1.0, 1.0)
REP_PENALTY = (0.05, 2.0, 1.35)
SPEED = (0.6, 1.65, 1.0)
PAUSE = (0.01, 1.0, 0.3)
SAMPLE_STEPS = (4, 8, 16, 32, 64, 128)
DETAIL_COLUMNS = ["#", "sentence", "tokens", "ended by", "seconds", "ready after (s)"]


@dataclass
class SynthTab:
    gpt: Any
    sovits: Any
    voice: Any
    model_status: Any
    refresh: Any


def build(state: AppState) -> SynthTab:
    import gradio as gr

    t, lang = state.t, state.config.language
    cat = state.catalog()
    langs = language_choices(lang)
    with gr.Row():
        gpt = gr.Dropdown(
            allow_custom_value=True,
            choices=cat.gpt_labels(),
            value=(cat.gpt_labels() or [None])[0],
            label=t("gpt_model"),
            elem_id="gpt-model",
            scale=3,
        )
        sovits = gr.Dropdown(
            allow_custom_value=True,
            choices=cat.sovits_labels(),
            value=(cat.sovits_labels() or [None])[0],
            label=t("sovits_model"),
            elem_id="sovits-model",
            scale=3,
        )
        refresh = gr.Button(t("refresh"), scale=1, elem_id="refresh-models")
        load = gr.Button(t("load_model"), scale=1, elem_id="load-model")
    model_status = gr.Markdown(elem_id="model-status")
    with gr.Row():
        with gr.Column():
            voice = gr.Dropdown(
                allow_custom_value=True,
                choices=[NO_VOICE, *[v.name for v in state.voices.list()]],
                value=NO_VOICE,
                label=t("voice"),
                info=t("no_voice"),
                elem_id="voice-pick",
            )
            ref_audio = gr.Audio(
                sources=["upload", "microphone"], type="filepath", label=t("ref_audio"), elem_id="ref-audio"
            )
            ref_text = gr.Textbox(label=t("ref_text"), lines=2, elem_id="ref-text")
            with gr.Row():
                ref_lang = gr.Dropdown(langs, value="en", label=t("ref_lang"), elem_id="ref-lang")
                ref_free = gr.Checkbox(False, label=t("ref_free"), elem_id="ref-free")
            aux = gr.File(file_count="multiple", file_types=["audio"], label=t("aux_refs"), elem_id="aux-refs")
        with gr.Column():
            text = gr.Textbox(label=t("text"), lines=6, max_length=MAX_TEXT_CHARS, elem_id="target-text")
            with gr.Row():
                text_lang = gr.Dropdown(langs, value="en", label=t("text_lang"), elem_id="text-lang")
                split = gr.Dropdown(split_choices(lang), value="cut1", label=t("split"), elem_id="split-method")
            preview = gr.Button(t("preview_split"), size="sm", elem_id="preview-split")
            sentences = gr.Dataframe(
                headers=["#", t("sentences")], label=t("sentences"), elem_id="sentences", interactive=False, wrap=True
            )
            with gr.Accordion(t("sampling"), open=False):
                with gr.Row():
                    top_k = gr.Slider(*TOP_K[:2], value=TOP_K[2], step=1, label=t("top_k"))
                    top_p = gr.Slider(*TOP_P[:2], value=TOP_P[2], step=0.05, label=t("top_p"))
                    temperature = gr.Slider(*TEMPERATURE[:2], value=TEMPERATURE[2], step=0.05, label=t("temperature"))
                with gr.Row():
                    rep = gr.Slider(*REP_PENALTY[:2], value=REP_PENALTY[2], step=0.05, label=t("rep_penalty"))
                    speed = gr.Slider(*SPEED[:2], value=SPEED[2], step=0.05, label=t("speed"))
                    pause = gr.Slider(*PAUSE[:2], value=PAUSE[2], step=0.01, label=t("pause"))
                with gr.Row():
                    seed = gr.Number(-1, precision=0, label=t("seed"), elem_id="seed")
                    random_seed = gr.Checkbox(True, label=t("random_seed"), elem_id="random-seed")
                    steps = gr.Radio(list(SAMPLE_STEPS), value=32, label=t("sample_steps"))
            streaming = gr.Checkbox(False, label=t("streaming"), elem_id="streaming")
            with gr.Row():
                go = gr.Button(t("synthesize"), variant="primary", elem_id="synthesize-btn")
                go_stream = gr.Button(
                    t("synthesize"), variant="primary", visible=False, elem_id="synthesize-stream-btn"
                )
                cancel = gr.Button(t("cancel"), elem_id="synthesize-cancel")
    status = gr.Markdown(elem_id="synth-status")
    with gr.Row():
        stream_out = gr.Audio(
            label=t("stream_output"),
            streaming=True,
            autoplay=True,
            interactive=False,
            visible=False,
            elem_id="stream-out",
        )
        audio_out = gr.Audio(label=t("output"), type="filepath", interactive=False, elem_id="audio-out")
        download = gr.File(label=t("download"), interactive=False, elem_id="download-out")
    details = gr.Dataframe(headers=DETAIL_COLUMNS, label=t("details"), interactive=False, elem_id="details")
    engine = gr.Markdown(elem_id="engine-stats")

    inputs = [
        gpt,
        sovits,
        voice,
        ref_audio,
        ref_text,
        ref_lang,
        ref_free,
        aux,
        text,
        text_lang,
        split,
        top_k,
        top_p,
        temperature,
        rep,
        speed,
        pause,
        seed,
        random_seed,
        steps,
    ]
    outputs = [audio_out, download, details, status, engine, seed]
    plain = go.click(lambda *a: synthesize(state, *a), inputs, outputs, concurrency_limit=None, api_name="synthesize")

    def run_stream(*args):
        yield from synthesize_streaming(state, *args)

    streamed = go_stream.click(
        run_stream, inputs, [stream_out, *outputs], concurrency_limit=None, api_name="synthesize_stream"
    )
    cancel.click(None, None, None, cancels=[plain, streamed], api_name=False)
    streaming.change(
        lambda on: (gr.update(visible=not on), gr.update(visible=on), gr.update(visible=on)),
        [streaming],
        [go, go_stream, stream_out],
        api_name=False,
    )

    def load_fn(g, s):
        yield from load_model(state, g, s)

    load.click(load_fn, [gpt, sovits], [model_status], concurrency_limit=None, api_name="load_model")
    preview.click(preview_split, [text, text_lang, split], [sentences, status], api_name="preview_split")
    refresh.click(lambda: refresh_lists(state), None, [gpt, sovits, voice], api_name="refresh_models")
    return SynthTab(gpt, sovits, voice, model_status, refresh)
