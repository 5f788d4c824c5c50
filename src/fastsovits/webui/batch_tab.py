"""Batch tab: a TXT/CSV/JSONL upload -> per-line progress -> a zip of audio files plus the manifest."""

from __future__ import annotations

import html
import json
import shutil
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from fastsovits.errors import InvalidInput
from fastsovits.params import SynthesisParams
from fastsovits.webui import engine_access as ea
from fastsovits.webui.config import MAX_BATCH_LINES, MAX_UPLOAD_BYTES
from fastsovits.webui.i18n import language_choices, split_choices
from fastsovits.webui.paths import resolve_in_roots
from fastsovits.webui.state import AppState, error_text
from fastsovits.webui.synthesize_tab import NO_VOICE, SynthTab, model_key
from fastsovits.webui.voice_store import check_reference_clip

SUFFIXES = (".txt", ".csv", ".jsonl")
FORMATS = ("wav", "flac", "ogg", "mp3")
LINE_COLUMNS = ["id", "text", "status", "file / error"]
POLL_S = 0.3


def _manifest(out: Path) -> dict[str, dict]:
    path = out / "manifest.jsonl"
    if not path.is_file():
        return {}
    recs = {}
    for line in path.read_text("utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        recs[rec["id"]] = rec
    return recs


def _rows(items: list, recs: dict[str, dict]) -> list[list]:
    rows = []
    for it in items:
        rec = recs.get(it.id)
        if rec is None:
            rows.append([it.id, it.text[:80], "…", ""])
        else:
            rows.append([it.id, it.text[:80], rec["status"], rec.get("file") or rec.get("error", "")])
    return rows


def _bar(done: int, total: int) -> str:
    return f'<div id="batch-progress"><progress value="{done}" max="{max(total, 1)}"></progress> {done} / {total}</div>'


def _items(state: AppState, upload: str) -> list:
    src = Path(upload)
    if src.suffix.lower() not in SUFFIXES:
        raise InvalidInput(f"the batch file must be one of {', '.join(SUFFIXES)}; got {html.escape(src.suffix)!r}")
    if src.stat().st_size > MAX_UPLOAD_BYTES:
        raise InvalidInput(f"the batch file is larger than {MAX_UPLOAD_BYTES // 2**20} MB")
    try:
        items = ea.read_batch_items(src)
    except UnicodeDecodeError as e:
        raise InvalidInput("the batch file is not UTF-8 text") from e
    if not items:
        raise InvalidInput("the batch file has no lines to synthesize")
    if len(items) > MAX_BATCH_LINES:
        raise InvalidInput(f"the batch file has {len(items)} lines; at most {MAX_BATCH_LINES}")
    for n, it in enumerate(items, 1):  # per-line references: only files inside the allowed folders
        if it.ref and not it.error:
            try:
                it.ref = str(resolve_in_roots(it.ref, state.config.allowed_roots))
            except InvalidInput as e:
                it.error = f"line {n}: {e}"
    return items


def run(state: AppState, gpt, sovits, upload, voice, ref_audio, ref_text, ref_lang, lang, split, fmt):
    """Generator: (progress html, line table, zip file, status)."""
    import gradio as gr

    keep = gr.update()
    try:
        if not upload:
            raise InvalidInput("upload a .txt, .csv or .jsonl file")
        if fmt not in FORMATS:
            raise InvalidInput(f"format must be one of {FORMATS}")
        items = _items(state, upload)
        if voice:
            rec = state.voices.get(voice)
            ref_src, rtext, rlang = str(rec.audio_path), rec.text, rec.language
        else:
            if not ref_audio:
                raise InvalidInput(state.t("err_no_ref"))
            check_reference_clip(Path(ref_audio).read_bytes())
            ref_src, rtext, rlang = ref_audio, (ref_text or "").strip() or None, ref_lang
        params = SynthesisParams(text_split_method=split, max_new_tokens=state.config.max_new_tokens)
        job = state.config.jobs_dir / f"batch-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        out = job / "audio"
        yield _bar(0, len(items)), _rows(items, {}), keep, "⏳ …"
        with state.pool.use(model_key(gpt, sovits), state.catalog()) as tts:
            ref = ea.load_reference(tts, ref_src, rtext, rlang)
            result: dict[str, Any] = {}

            def work() -> None:
                try:
                    result["stats"] = ea.run_batch(tts, items, out, ref, lang, fmt, params)
                except BaseException as e:  # noqa: BLE001 - reported below
                    result["error"] = e

            worker = threading.Thread(target=work, name="webui-batch", daemon=True)
            worker.start()
            while worker.is_alive():
                worker.join(POLL_S)
                recs = _manifest(out)
                yield _bar(len(recs), len(items)), _rows(items, recs), keep, "⏳ …"
        if "error" in result:
            raise result["error"]
        recs = _manifest(out)
        zip_path = state.out_file(".zip", prefix="batch-")
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(out.iterdir()):
                zf.write(f, f.name)
        shutil.rmtree(job, ignore_errors=True)
        stats = result["stats"]
        status = f"✅ {stats['ok']} ok, {stats['failed']} failed, {stats['audio_seconds']} s of audio"
        yield _bar(len(recs), len(items)), _rows(items, recs), str(zip_path), status
    except Exception as e:  # noqa: BLE001 - shown to the user
        yield keep, keep, keep, error_text(e)


def build(state: AppState, synth: SynthTab) -> None:
    import gradio as gr

    t, lang = state.t, state.config.language
    langs = language_choices(lang)
    with gr.Row():
        with gr.Column():
            upload = gr.File(file_types=list(SUFFIXES), type="filepath", label=t("batch_input"), elem_id="batch-file")
            with gr.Row():
                text_lang = gr.Dropdown(langs, value="en", label=t("text_lang"), elem_id="batch-lang")
                split = gr.Dropdown(split_choices(lang), value="cut1", label=t("split"))
                fmt = gr.Dropdown(list(FORMATS), value="wav", label=t("batch_format"), elem_id="batch-format")
        with gr.Column():
            voice = gr.Dropdown(
                allow_custom_value=True,
                choices=[NO_VOICE, *[v.name for v in state.voices.list()]],
                value=NO_VOICE,
                label=t("voice"),
                elem_id="batch-voice",
            )
            ref_audio = gr.Audio(sources=["upload"], type="filepath", label=t("ref_audio"), elem_id="batch-ref")
            ref_text = gr.Textbox(label=t("ref_text"), elem_id="batch-ref-text")
            ref_lang = gr.Dropdown(langs, value="en", label=t("ref_lang"))
    go = gr.Button(t("batch_run"), variant="primary", elem_id="batch-run")
    status = gr.Markdown(elem_id="batch-status")
    progress = gr.HTML(_bar(0, 0))
    lines = gr.Dataframe(headers=LINE_COLUMNS, label=t("batch_lines"), interactive=False, elem_id="batch-lines")
    zip_out = gr.File(label=t("batch_zip"), interactive=False, elem_id="batch-zip")

    def go_fn(*args):
        yield from run(state, *args)

    go.click(
        go_fn,
        [synth.gpt, synth.sovits, upload, voice, ref_audio, ref_text, ref_lang, text_lang, split, fmt],
        [progress, lines, zip_out, status],
        concurrency_limit=4,
        api_name="batch",
    )
    synth.refresh.click(
        lambda: gr.update(choices=[NO_VOICE, *[v.name for v in state.voices.list()]]), None, [voice], api_name=False
    )
