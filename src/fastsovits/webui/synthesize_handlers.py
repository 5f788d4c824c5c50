"""What the Synthesize tab's buttons do (no layout): inputs checked once, engine calls via engine_access."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastsovits.errors import EmptyText, InvalidInput, TextTooLong
from fastsovits.params import SynthesisParams
from fastsovits.webui import engine_access as ea
from fastsovits.webui.config import MAX_AUX_REFS, MAX_TEXT_CHARS, MAX_UPLOAD_BYTES
from fastsovits.webui.state import AppState, error_text
from fastsovits.webui.voice_store import check_reference_clip

NO_VOICE = ""


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


@dataclass(frozen=True)
class SynthesisForm:
    """The Synthesize tab's inputs, in the order the tab lists them (gradio passes them positionally)."""

    gpt: Any
    sovits: Any
    voice: Any
    ref_audio: Any
    ref_text: Any
    ref_lang: Any
    ref_free: Any
    aux: Any
    text: Any
    text_lang: Any
    split: Any
    top_k: Any
    top_p: Any
    temperature: Any
    rep: Any
    speed: Any
    pause: Any
    seed: Any
    random_seed: Any
    steps: Any


def _prepare(state: AppState, f: SynthesisForm):
    text = check_text(f.text)
    params = build_params(
        state, f.split, f.top_k, f.top_p, f.temperature, f.rep, f.speed, f.pause, f.seed, f.random_seed, f.steps
    )
    ref_inputs = _reference_inputs(state, f.voice, f.ref_audio, f.ref_text, f.ref_lang, f.ref_free, f.aux)
    return text, params, ref_inputs, model_key(f.gpt, f.sovits)


def _finish(state: AppState, samples, sr: int, details: list, params: SynthesisParams, stats: str) -> tuple:

    from fastsovits.audio.io import encode_audio

    out = state.out_file(".wav", prefix="speech-")
    out.write_bytes(encode_audio(samples, sr, "wav"))
    status = f"✅ {len(samples) / sr:.2f} s of audio, {len(details)} sentence(s), seed {params.seed}"
    return str(out), str(out), details, status, stats, params.seed


def synthesize(state: AppState, *values: Any) -> tuple:
    """-> (audio file, download, details, status, engine stats, seed used)."""
    import gradio as gr

    try:
        form = SynthesisForm(*values)
        text, params, (src, rtext, rlang, aux_paths), key = _prepare(state, form)
        with state.pool.use(key, state.catalog()) as tts:
            ref = ea.load_reference(tts, src, rtext, rlang, aux_paths)
            result = ea.synthesize(tts, text, ref, form.text_lang, params)
            stats = stats_markdown(ea.engine_stats(tts))
            sr = ea.sample_rate(tts)
        details = [[s.index, s.text, s.tokens, s.stop_reason, s.seconds, s.ready_after_s] for s in result.sentences]
        return _finish(state, result.audio.samples, sr, details, params, stats)
    except Exception as e:  # noqa: BLE001 - shown to the user; the server keeps running
        keep = gr.update()
        return keep, keep, keep, error_text(e), keep, keep


def synthesize_streaming(state: AppState, *values: Any):
    """Generator: (stream chunk, audio file, download, details, status, engine stats, seed used)."""
    import gradio as gr
    import numpy as np

    from fastsovits.audio.io import encode_audio

    keep = gr.update()
    try:
        form = SynthesisForm(*values)
        text, params, (src, rtext, rlang, aux_paths), key = _prepare(state, form)
        with state.pool.use(key, state.catalog()) as tts:
            ref = ea.load_reference(tts, src, rtext, rlang, aux_paths)
            sr = ea.sample_rate(tts)
            pieces, chunks = [], []
            stream = ea.stream(tts, text, ref, form.text_lang, params)
            try:
                for chunk in stream:
                    pieces.append(chunk.samples)
                    chunks.append(chunk)
                    yield encode_audio(chunk.samples, sr, "wav"), keep, keep, keep, "⏳ …", keep, keep
            finally:
                stream.close()
            stats = stats_markdown(ea.engine_stats(tts))
        details = [[s.index, s.text, s.tokens, s.stop_reason, s.seconds, ""] for s in ea.sentence_details(chunks)]
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
