"""Fine-tune tab: recordings -> slice -> transcripts -> prepare -> train GPT and SoVITS -> export -> use.

Each step runs as its own process (:mod:`fastsovits.webui.jobs`); the page follows its progress and
log tail, can cancel it, and running a step again resumes it.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from fastsovits.errors import InvalidInput
from fastsovits.webui import finetune_steps as fs
from fastsovits.webui.config import MAX_EPOCHS
from fastsovits.webui.jobs import StepRunner, StepStatus
from fastsovits.webui.paths import resolve_in_roots
from fastsovits.webui.state import AppState, error_text
from fastsovits.webui.synthesize_tab import SynthTab

POLL_S = 0.5
TRAIN_KIND = {"train_gpt": "s1", "train_sovits": "s2"}


def _device(state: AppState) -> str:
    if state.config.train_device != "auto":
        return state.config.train_device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _progress_html(st: StepStatus, extra: str = "") -> str:
    total = max(st.total, 1)
    return (
        f'<div id="ft-progress-box" data-state="{st.state}" data-done="{st.done}" data-total="{st.total}">'
        f"<b>{html.escape(st.step)}</b>: {html.escape(st.state)} "
        f'<progress value="{st.done}" max="{total}"></progress> {st.done} / {st.total} '
        f"{html.escape(st.message)} {html.escape(extra)}</div>"
    )


def _train_extra(exp: fs.Experiment, step: str) -> str:
    kind = TRAIN_KIND.get(step)
    if kind is None:
        return ""
    rec = fs.train_progress(exp, kind)
    if not rec:
        return ""
    losses = ", ".join(f"{k} {v:.4f}" for k, v in rec.items() if k.startswith("loss") and isinstance(v, float))
    return f"· epoch {rec.get('epoch')} step {rec.get('step')} · {losses}"


def follow(state: AppState, runner: StepRunner, exp: fs.Experiment, step: str):
    """Yield (progress html, log, status) until the step's process ends."""
    while True:
        st = runner.status(exp.name, step)
        extra = _train_extra(exp, step)
        if st.state == "running":
            yield _progress_html(st, extra), st.log_tail, f"⏳ {step} …"
            time.sleep(POLL_S)
            continue
        runner.reap(exp.name, step)
        if st.state == "done":
            status = f"✅ {step} finished"
        elif st.state == "cancelled":
            status = f"⏹ {step} cancelled; run it again to resume"
        else:
            status = f"❌ {step} failed: {st.error or 'see the log'}"
        yield _progress_html(st, extra), st.log_tail, status
        return


def _check_yaml(text: str, kind: str) -> dict:
    import yaml

    from fastsovits.train.config import GPTTrainConfig, SovitsTrainConfig, with_overrides

    if not text or not text.strip():
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InvalidInput(f"the overrides are not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise InvalidInput("the overrides must be a mapping of config fields (field: value)")
    with_overrides(GPTTrainConfig() if kind == "gpt" else SovitsTrainConfig(), data)  # validates
    return data


def step_spec(state: AppState, exp: fs.Experiment, step: str, args: dict) -> dict:
    cat = state.catalog()
    comps = cat.components
    if step == "slice":
        uploads = [u if isinstance(u, str) else u.name for u in (args.get("uploads") or [])]
        if uploads:
            src = fs.store_uploads(exp, uploads)
        elif (args.get("folder") or "").strip():
            src = resolve_in_roots(args["folder"], state.config.allowed_roots)
        else:
            raise InvalidInput("upload recordings or type a folder path first")
        slicer = {
            "threshold_db": float(args["threshold"]),
            "min_length_ms": int(args["min_length"]),
            "min_interval_ms": int(args["min_interval"]),
            "hop_ms": int(args["hop"]),
            "max_sil_kept_ms": int(args["max_sil"]),
        }
        from fastsovits.train.slicer import SlicerConfig

        SlicerConfig(**slicer)  # validates before the process starts
        return {"input": str(src), "clips": str(exp.clips), "slicer": slicer, "copy_only": bool(args["copy_only"])}
    if step == "transcribe":
        if state.config.whisper_dir is None:
            raise InvalidInput("no faster-whisper model folder was given to this WebUI (--whisper); upload a .list")
        return {
            "clips": str(exp.clips),
            "model": str(state.config.whisper_dir),
            "list": str(exp.list_path),
            "speaker": exp.name,
            "device": _device(state),
        }
    if step == "prepare":
        if not exp.list_path.is_file():
            raise InvalidInput("save the transcripts first")
        base = cat.find(args["base_sovits"], "sovits")
        if comps.hubert_dir is None:
            raise InvalidInput("the models folder has no chinese-hubert-base folder")
        return {
            "list": str(exp.list_path),
            "exp_dir": str(exp.exp_dir),
            "sovits": str(base.path),
            "hubert": str(comps.hubert_dir),
            "bert": str(comps.bert_dir) if comps.bert_dir else None,
            "sv": str(comps.sv) if comps.sv else None,
            "device": _device(state),
        }
    if not (exp.exp_dir / "6-name2semantic.tsv").is_file():
        raise InvalidInput("run the prepare step first")
    kind = "gpt" if step == "train_gpt" else "sovits"
    base = cat.find(args[f"base_{kind}"], kind)
    if base.kind != kind:
        raise InvalidInput("fine-tuning starts from official weights (.ckpt / .pth), not a converted folder")
    epochs = int(args[f"{kind}_epochs"])
    if not 1 <= epochs <= MAX_EPOCHS:
        raise InvalidInput(f"epochs must be in [1, {MAX_EPOCHS}]")
    settings = {
        "epochs": epochs,
        "batch_size": int(args[f"{kind}_batch"]),
        "lr": float(args[f"{kind}_lr"]),
        "device": _device(state),
    }
    if kind == "sovits":
        settings["text_low_lr_rate"] = float(args["text_low_lr"])
    spec = {
        "exp_dir": str(exp.exp_dir),
        "pretrained": str(base.path),
        "weights_dir": str(exp.weights),
        "name": exp.name,
        "settings": settings,
        "overrides": _check_yaml(args.get(f"{kind}_yaml", ""), kind),
    }
    if kind == "sovits":
        disc = base.path.with_name(base.path.name.replace("s2G", "s2D"))
        spec["pretrained_d"] = str(disc) if disc != base.path and disc.is_file() else None
    return spec


STEP_ARGS = [
    "uploads",
    "folder",
    "threshold",
    "min_length",
    "min_interval",
    "hop",
    "max_sil",
    "copy_only",
    "base_gpt",
    "base_sovits",
    "gpt_epochs",
    "gpt_batch",
    "gpt_lr",
    "sovits_epochs",
    "sovits_batch",
    "sovits_lr",
    "text_low_lr",
    "gpt_yaml",
    "sovits_yaml",
]


def run_step(state: AppState, runner: StepRunner, step: str, name: str, *values: Any):
    """Generator: (progress, log, status, table)."""
    import gradio as gr

    keep = gr.update()
    try:
        exp = fs.experiment(state.config.experiments_dir, name)
        spec = step_spec(state, exp, step, dict(zip(STEP_ARGS, values)))
        runner.start(exp.name, step, spec)
        for progress, log, status in follow(state, runner, exp, step):
            yield progress, log, status, keep
        if step in ("slice", "transcribe"):
            yield keep, keep, keep, fs.table_from_clips(exp)
    except Exception as e:  # noqa: BLE001
        yield keep, keep, error_text(e), keep


def build(state: AppState, synth: SynthTab, tabs: Any) -> StepRunner:
    import gradio as gr

    t = state.t
    runner = StepRunner(state.config.jobs_dir)
    cat = state.catalog()
    base_gpts = [m.label for m in cat.gpt if m.kind == "gpt"]
    base_sovits = [m.label for m in cat.sovits if m.kind == "sovits"]
    name = gr.Textbox("myvoice", label=t("ft_exp"), elem_id="ft-exp")
    with gr.Accordion(t("ft_step1"), open=True):
        with gr.Row():
            uploads = gr.File(file_count="multiple", file_types=["audio"], label=t("ft_upload"), elem_id="ft-upload")
            folder = gr.Textbox(label=t("ft_folder"), elem_id="ft-folder")
        with gr.Row():
            threshold = gr.Number(-34, label=t("ft_threshold"))
            min_length = gr.Number(4000, precision=0, label=t("ft_min_length"))
            min_interval = gr.Number(300, precision=0, label=t("ft_min_interval"))
            hop = gr.Number(10, precision=0, label=t("ft_hop"))
            max_sil = gr.Number(500, precision=0, label=t("ft_max_sil"))
        copy_only = gr.Checkbox(False, label=t("ft_skip_slice"))
        slice_btn = gr.Button(t("ft_slice"), elem_id="ft-slice")
    with gr.Accordion(t("ft_step2"), open=True):
        with gr.Row():
            transcribe_btn = gr.Button(
                t("ft_transcribe"), interactive=state.config.whisper_dir is not None, elem_id="ft-transcribe"
            )
            list_file = gr.File(file_types=[".list", ".txt"], type="filepath", label=t("ft_list"), elem_id="ft-list")
            use_list = gr.Button(t("ft_use_list"), elem_id="ft-use-list")
        table = gr.Dataframe(
            headers=fs.TABLE_COLUMNS,
            datatype=["bool", "str", "str", "str", "str"],
            type="array",
            interactive=True,
            label=t("ft_table"),
            elem_id="ft-table",
            wrap=True,
        )
        with gr.Row():
            save_table = gr.Button(t("ft_save_table"), elem_id="ft-save-table")
            clip_no = gr.Number(0, precision=0, label=t("ft_clip_index"))
            play = gr.Button(t("ft_play"))
            clip_audio = gr.Audio(type="filepath", interactive=False, label=t("ft_play"))
    with gr.Accordion(t("ft_step3"), open=True):
        with gr.Row():
            base_gpt = gr.Dropdown(
                allow_custom_value=True,
                choices=base_gpts,
                value=(base_gpts or [None])[0],
                label=t("ft_base_gpt"),
                elem_id="ft-base-gpt",
            )
            base_sv = gr.Dropdown(
                allow_custom_value=True,
                choices=base_sovits,
                value=(base_sovits or [None])[0],
                label=t("ft_base_sovits"),
                elem_id="ft-base-sovits",
            )
        prepare_btn = gr.Button(t("ft_prepare"), elem_id="ft-prepare")
    with gr.Accordion(t("ft_step4"), open=True):
        with gr.Row():
            gpt_epochs = gr.Slider(1, 50, value=15, step=1, label=t("ft_gpt_epochs"), elem_id="ft-gpt-epochs")
            gpt_batch = gr.Slider(1, 40, value=8, step=1, label=t("ft_gpt_batch"))
            gpt_lr = gr.Number(0.002, label=t("ft_gpt_lr"))
        gpt_yaml = gr.Textbox(label=t("ft_advanced"), lines=2, elem_id="ft-gpt-yaml")
        train_gpt = gr.Button(t("ft_train_gpt"), elem_id="ft-train-gpt")
        with gr.Row():
            sovits_epochs = gr.Slider(1, 25, value=8, step=1, label=t("ft_sovits_epochs"), elem_id="ft-sovits-epochs")
            sovits_batch = gr.Slider(1, 40, value=8, step=1, label=t("ft_sovits_batch"))
            sovits_lr = gr.Number(1e-4, label=t("ft_sovits_lr"))
            text_low_lr = gr.Slider(0.2, 0.6, value=0.4, step=0.05, label=t("ft_text_low_lr"))
        sovits_yaml = gr.Textbox(label=t("ft_advanced"), lines=2, elem_id="ft-sovits-yaml")
        train_sovits = gr.Button(t("ft_train_sovits"), elem_id="ft-train-sovits")
    with gr.Accordion(t("ft_step5"), open=True):
        with gr.Row():
            export_btn = gr.Button(t("ft_export"), elem_id="ft-export")
            use_btn = gr.Button(t("ft_use"), variant="primary", elem_id="ft-use")
    progress = gr.HTML(elem_id="ft-progress")
    status = gr.Markdown(elem_id="ft-status")
    with gr.Row():
        cancel = gr.Button(t("cancel"), elem_id="ft-cancel")
    log = gr.Textbox(label=t("ft_log"), lines=8, max_lines=12, interactive=False, elem_id="ft-log")

    values = [
        uploads,
        folder,
        threshold,
        min_length,
        min_interval,
        hop,
        max_sil,
        copy_only,
        base_gpt,
        base_sv,
        gpt_epochs,
        gpt_batch,
        gpt_lr,
        sovits_epochs,
        sovits_batch,
        sovits_lr,
        text_low_lr,
        gpt_yaml,
        sovits_yaml,
    ]
    for btn, step in (
        (slice_btn, "slice"),
        (transcribe_btn, "transcribe"),
        (prepare_btn, "prepare"),
        (train_gpt, "train_gpt"),
        (train_sovits, "train_sovits"),
    ):

        def handler(n, *v, _step=step):
            yield from run_step(state, runner, _step, n, *v)

        btn.click(
            handler,
            [name, *values],
            [progress, log, status, table],
            concurrency_limit=None,
            api_name=f"finetune_{step}",
        )

    def use_list_fn(n: str, path: str | None) -> tuple[Any, str]:
        try:
            if not path:
                raise InvalidInput("upload a .list file first")
            exp = fs.experiment(state.config.experiments_dir, n)
            rows, unmatched = fs.table_from_list(exp, Path(path).read_text("utf-8", errors="replace"))
            if not rows:
                raise InvalidInput("no line of the .list matches a clip of this experiment (slice first)")
            note = f"; {unmatched} line(s) matched no clip" if unmatched else ""
            return rows, f"✅ {len(rows)} transcripts loaded{note}; check them and press save"
        except Exception as e:  # noqa: BLE001
            return gr.update(), error_text(e)

    def save_fn(n: str, rows: list) -> str:
        try:
            kept = fs.save_table(fs.experiment(state.config.experiments_dir, n), rows or [])
            return f"✅ {kept} transcripts saved"
        except Exception as e:  # noqa: BLE001
            return error_text(e)

    def play_fn(n: str, idx: float) -> tuple[Any, str]:
        try:
            exp = fs.experiment(state.config.experiments_dir, n)
            clips = fs.clip_names(exp)
            if not 0 <= int(idx) < len(clips):
                raise InvalidInput(f"clip number must be in [0, {len(clips) - 1}]")
            import shutil

            copy = state.out_file(".wav", prefix="clip-")
            shutil.copyfile(exp.clips / clips[int(idx)], copy)
            return str(copy), ""
        except Exception as e:  # noqa: BLE001
            return gr.update(), error_text(e)

    def cancel_fn(n: str) -> str:
        try:
            step = runner.cancel(fs.experiment(state.config.experiments_dir, n).name)
            return f"⏹ cancelled {step}" if step else "nothing is running"
        except Exception as e:  # noqa: BLE001
            return error_text(e)

    def export_fn(n: str) -> str:
        try:
            exp = fs.experiment(state.config.experiments_dir, n)
            gpt, sovits = fs.export(exp, state.config.exports_dir)
            state.catalog(refresh=True)
            return f"✅ exported {exp.name}: {gpt.name}, {sovits.name}"
        except Exception as e:  # noqa: BLE001
            return error_text(e)

    def use_fn(n: str) -> tuple[Any, ...]:
        try:
            exp = fs.experiment(state.config.experiments_dir, n)
            cat = state.catalog(refresh=True)
            gpt = next(m.label for m in cat.gpt if m.path.parent == state.config.exports_dir / exp.name)
            sovits = next(m.label for m in cat.sovits if m.path.parent == state.config.exports_dir / exp.name)
            return (
                gr.update(choices=cat.gpt_labels(), value=gpt),
                gr.update(choices=cat.sovits_labels(), value=sovits),
                gr.Tabs(selected="synth"),
                f"✅ using {exp.name}",
            )
        except StopIteration:
            return gr.update(), gr.update(), gr.update(), "❌ export the model first"
        except Exception as e:  # noqa: BLE001
            return gr.update(), gr.update(), gr.update(), error_text(e)

    use_list.click(use_list_fn, [name, list_file], [table, status], api_name=False)
    save_table.click(save_fn, [name, table], [status], api_name=False)
    play.click(play_fn, [name, clip_no], [clip_audio, status], api_name=False)
    cancel.click(cancel_fn, [name], [status], api_name="finetune_cancel")
    export_btn.click(export_fn, [name], [status], api_name="finetune_export")
    use_btn.click(use_fn, [name], [synth.gpt, synth.sovits, tabs, status], api_name=False)
    return runner
