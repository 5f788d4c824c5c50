"""Synthesize tab: model pickers, reference (upload, microphone or saved voice), text, parameters."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastsovits.errors import EmptyText, InvalidInput, TextTooLong
from fastsovits.params import SynthesisParams
from fastsovits.webui import engine_access as ea
from fastsovits.webui.config import MAX_AUX_REFS, MAX_TEXT_CHARS, MAX_UPLOAD_BYTES
from fastsovits.webui.i18n import language_choices, split_choices
from fastsovits.webui.state import AppState, error_text
from fastsovits.webui.voice_store import check_reference_clip

NO_VOICE = ""
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


def model_key(gpt: str | None, sovits: str | None) -> ea.ModelKey:
    if not gpt or not sovits:
        raise InvalidInput("pick a GPT and a SoVITS model first")
    return ea.ModelKey(gpt, sovits)


def _reference_inputs(
    state: AppState,
    voice: str | None,
    ref_audio: str | None,
    ref_text: str,
    ref_lang: str,
    ref_free: bool,
    aux: list | None,
) -> tuple[Any, str | None, str | None, list[str]]:
    if voice:
        rec = state.voices.get(voice)
        audio, text, lang = str(rec.audio_path), rec.text, rec.language
    else:
        if not ref_audio:
            raise InvalidInput(state.t("err_no_ref"))
        audio, text, lang = ref_audio, (ref_text or "").strip() or None, ref_lang
    aux_paths = [a if isinstance(a, str) else getattr(a, "name", str(a)) for a in (aux or [])]
    if len(aux_paths) > MAX_AUX_REFS:
        raise InvalidInput(f"at most {MAX_AUX_REFS} auxiliary references")
    for path in [audio, *aux_paths]:
        if Path(path).stat().st_size > MAX_UPLOAD_BYTES:
            raise InvalidInput(f"an uploaded file is larger than {MAX_UPLOAD_BYTES // 2**20} MB")
        check_reference_clip(Path(path).read_bytes())
    if ref_free:
        text = None
    return audio, text, lang if text else None, aux_paths


def build_params(
    state: AppState,
    split: str,
    top_k: float,
    top_p: float,
    temperature: float,
    rep: float,
    speed: float,
    pause: float,
    seed: float | None,
    random_seed: bool,
    steps: int,
) -> SynthesisParams:
    chosen = int(seed) if seed is not None and seed >= 0 and not random_seed else random.randrange(2**31)
    return SynthesisParams(
        top_k=int(top_k),
        top_p=float(top_p),
        temperature=float(temperature),
        repetition_penalty=float(rep),
        text_split_method=split,
        speed_factor=float(speed),
        fragment_interval=float(pause),
        seed=chosen,
        sample_steps=int(steps),
        max_new_tokens=state.config.max_new_tokens,
    )


def check_text(text: str) -> str:
    if not text or not text.strip():
        raise EmptyText("type some text to synthesize")
    if len(text) > MAX_TEXT_CHARS:
        raise TextTooLong(f"the text has {len(text)} characters; at most {MAX_TEXT_CHARS}")
    return text


def stats_markdown(stats: ea.EngineStats) -> str:
    return (
        f"decode steps: **{stats.steps}** · largest batch: **{stats.max_rows}** rows · "
        f"steps with more than one row: **{stats.multi_row_steps}** · mean rows per step: {stats.mean_rows}"
    )


def _prepare(
    state: AppState,
    gpt,
    sovits,
    voice,
    ref_audio,
    ref_text,
    ref_lang,
    ref_free,
    aux,
    text,
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
):
    text = check_text(text)
    params = build_params(state, split, top_k, top_p, temperature, rep, speed, pause, seed, random_seed, steps)
    ref_inputs = _reference_inputs(state, voice, ref_audio, ref_text, ref_lang, ref_free, aux)
    return text, params, ref_inputs, model_key(gpt, sovits)


def _finish(state: AppState, samples, sr: int, details: list, params: SynthesisParams, stats: str) -> tuple:
    import gradio as gr

    from fastsovits.audio.io import encode_audio

    out = state.out_file(".wav", prefix="speech-")
    out.write_bytes(encode_audio(samples, sr, "wav"))
    status = f"✅ {len(samples) / sr:.2f} s of audio, {len(details)} sentence(s), seed {params.seed}"
    return str(out), str(out), details, status, stats, params.seed


def synthesize(
    state: AppState,
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
) -> tuple:
    """-> (audio file, download, details, status, engine stats, seed used)."""
    import gradio as gr

    try:
        text, params, (src, rtext, rlang, aux_paths), key = _prepare(
            state,
            gpt,
            sovits,
            voice,
            ref_audio,
            ref_text,
            ref_lang,
            ref_free,
            aux,
            text,
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
        )
        with state.pool.use(key, state.catalog()) as tts:
            ref = ea.load_reference(tts, src, rtext, rlang, aux_paths)
            result = ea.synthesize(tts, text, ref, text_lang, params)
            stats = stats_markdown(ea.engine_stats(tts))
            sr = ea.sample_rate(tts)
        details = [[s.index, s.text, s.tokens, s.stop_reason, s.seconds, s.ready_after_s] for s in result.sentences]
        return _finish(state, result.audio.samples, sr, details, params, stats)
    except Exception as e:  # noqa: BLE001 - shown to the user; the server keeps running
        keep = gr.update()
        return keep, keep, keep, error_text(e), keep, keep


def synthesize_streaming(
    state: AppState,
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
):
    """Generator: (stream chunk, audio file, download, details, status, engine stats, seed used)."""
    import gradio as gr
    import numpy as np

    from fastsovits.audio.io import encode_audio

    keep = gr.update()
    try:
        text, params, (src, rtext, rlang, aux_paths), key = _prepare(
            state,
            gpt,
            sovits,
            voice,
            ref_audio,
            ref_text,
            ref_lang,
            ref_free,
            aux,
            text,
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
        )
        with state.pool.use(key, state.catalog()) as tts:
            ref = ea.load_reference(tts, src, rtext, rlang, aux_paths)
            sr = ea.sample_rate(tts)
            pieces, seconds = [], {}
            stream = ea.stream(tts, text, ref, text_lang, params)
            try:
                for chunk in stream:
                    pieces.append(chunk.samples)
                    seconds[chunk.index] = seconds.get(chunk.index, 0.0) + chunk.duration
                    yield encode_audio(chunk.samples, sr, "wav"), keep, keep, keep, "⏳ …", keep, keep
            finally:
                stream.close()
            tokens = ea.stream_tokens(stream)
            stats = stats_markdown(ea.engine_stats(tts))
        details = [[i, "", tokens.get(i, 0), "", round(s, 3), ""] for i, s in sorted(seconds.items())]
        samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        yield None, *_finish(state, samples, sr, details, params, stats)
    except Exception as e:  # noqa: BLE001 - shown to the user; the server keeps running
        yield None, keep, keep, keep, error_text(e), keep, keep


def load_model(state: AppState, gpt: str, sovits: str):
    try:
        key = model_key(gpt, sovits)
        yield f"⏳ loading {gpt} + {sovits} …"
        with state.pool.use(key, state.catalog()) as tts:
            yield f"✅ loaded: {ea.model_version(tts)}, {ea.sample_rate(tts)} Hz"
    except Exception as e:  # noqa: BLE001
        yield error_text(e)


def preview_split(text: str, lang: str, split: str) -> tuple[Any, str]:
    try:
        pieces = ea.presegment(check_text(text), lang, split)
        return [[i, p] for i, p in enumerate(pieces)], ""
    except Exception as e:  # noqa: BLE001
        import gradio as gr

        return gr.update(), error_text(e)


def refresh_lists(state: AppState) -> tuple[Any, Any, Any]:
    import gradio as gr

    cat = state.catalog(refresh=True)
    voices = [NO_VOICE, *[v.name for v in state.voices.list()]]
    return (gr.update(choices=cat.gpt_labels()), gr.update(choices=cat.sovits_labels()), gr.update(choices=voices))


def build(state: AppState) -> SynthTab:
    import gradio as gr

    t, lang = state.t, state.config.language
    cat = state.catalog()
    langs = language_choices(lang)
    with gr.Row():
        gpt = gr.Dropdown(
            cat.gpt_labels(), value=(cat.gpt_labels() or [None])[0], label=t("gpt_model"), elem_id="gpt-model", scale=3
        )
        sovits = gr.Dropdown(
            cat.sovits_labels(),
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
                [NO_VOICE, *[v.name for v in state.voices.list()]],
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
                    steps = gr.Radio(list(SAMPLE_STEPS), value=32, label=t("sample_steps"), interactive=False)
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
    cancel.click(None, None, None, cancels=[plain, streamed])
    streaming.change(
        lambda on: (gr.update(visible=not on), gr.update(visible=on), gr.update(visible=on)),
        [streaming],
        [go, go_stream, stream_out],
    )

    def load_fn(g, s):
        yield from load_model(state, g, s)

    load.click(load_fn, [gpt, sovits], [model_status], concurrency_limit=None, api_name="load_model")
    preview.click(preview_split, [text, text_lang, split], [sentences, status], api_name="preview_split")
    refresh.click(lambda: refresh_lists(state), None, [gpt, sovits, voice], api_name="refresh_models")
    return SynthTab(gpt, sovits, voice, model_status, refresh)
