"""Models tab: what is installed (kind, version, size), info, download of official weights, conversion."""

from __future__ import annotations

import json
from typing import Any

from fastsovits.errors import InvalidInput
from fastsovits.webui.catalog import CONVERTED
from fastsovits.webui.paths import safe_name
from fastsovits.webui.state import AppState, error_text
from fastsovits.webui.synthesize_tab import SynthTab

COLUMNS = ["kind", "model", "size (MB)"]
DOWNLOAD_VERSIONS = ("v1", "v2", "v2Pro", "v2ProPlus")


def table(state: AppState, refresh: bool = False) -> list[list]:
    cat = state.catalog(refresh=refresh)
    seen, rows = set(), []
    for m in (*cat.gpt, *cat.sovits):
        if m.label in seen:
            continue
        seen.add(m.label)
        rows.append(
            [
                {"gpt": "GPT", "sovits": "SoVITS", CONVERTED: "converted"}[m.kind],
                m.label,
                round(m.size_bytes / 2**20, 1),
            ]
        )
    comps = cat.components
    for kind, found in (("HuBERT", comps.hubert_dir), ("BERT", comps.bert_dir), ("speaker (SV)", comps.sv)):
        rows.append([kind, "found" if found else "missing", ""])
    return rows


def labels(state: AppState) -> list[str]:
    cat = state.catalog()
    return list(dict.fromkeys([*cat.gpt_labels(), *cat.sovits_labels()]))


def info(state: AppState, label: str | None) -> str:
    from fastsovits.checkpoints.info import describe

    try:
        if not label:
            raise InvalidInput("pick a model")
        cat = state.catalog()
        entry = next((m for m in (*cat.gpt, *cat.sovits) if m.label == label), None)
        if entry is None:
            raise InvalidInput(f"no model named {label!r}; press refresh")
        desc = describe(entry.path)
        desc["path"] = entry.label  # the folder layout of the server stays private
        return "```json\n" + json.dumps(desc, indent=2, ensure_ascii=False, default=str) + "\n```"
    except Exception as e:  # noqa: BLE001
        return error_text(e)


def download(state: AppState, version: str):
    from fastsovits.checkpoints.download import download as fetch

    try:
        if version not in DOWNLOAD_VERSIONS:
            raise InvalidInput(f"version must be one of {DOWNLOAD_VERSIONS}")
        yield f"⏳ downloading {version} from the Hugging Face hub …"
        try:
            fetch(version, state.config.exports_dir / "pretrained_models")
        except Exception as e:  # noqa: BLE001 - offline machines land here
            yield (
                f"❌ could not download {version}: the model hub cannot be reached from this machine or does not "
                f"have the files ({type(e).__name__}). Copy an official pretrained_models folder into the models "
                "folder instead, then press refresh."
            )
            return
        state.catalog(refresh=True)
        yield f"✅ {version} downloaded; press refresh"
    except Exception as e:  # noqa: BLE001
        yield error_text(e)


def convert(state: AppState, gpt: str, sovits: str, name: str) -> tuple[Any, str]:
    import gradio as gr

    from fastsovits.checkpoints.convert import convert as do_convert

    try:
        name = safe_name(name, "folder name")
        cat = state.catalog()
        g, s = cat.find(gpt, "gpt"), cat.find(sovits, "sovits")
        if g.kind != "gpt" or s.kind != "sovits":
            raise InvalidInput("conversion takes an official GPT .ckpt and SoVITS .pth, not a converted folder")
        out = state.config.exports_dir / name
        if out.exists():
            raise InvalidInput(f"a model folder named {name!r} exists already")
        comps = cat.components
        do_convert(
            out_dir=out, gpt=g.path, sovits=s.path, hubert_dir=comps.hubert_dir, bert_dir=comps.bert_dir, sv=comps.sv
        )
        return table(state, refresh=True), f"✅ converted into {name}/; press refresh in Synthesize"
    except Exception as e:  # noqa: BLE001
        return gr.update(), error_text(e)


def build(state: AppState, synth: SynthTab) -> None:
    import gradio as gr

    t = state.t
    with gr.Row():
        with gr.Column(scale=3):
            listing = gr.Dataframe(
                table(state), headers=COLUMNS, label=t("models_installed"), interactive=False, elem_id="models-table"
            )
            refresh = gr.Button(t("refresh"), elem_id="models-refresh")
        with gr.Column(scale=2):
            pick = gr.Dropdown(
                allow_custom_value=True, choices=labels(state), label=t("models_info"), elem_id="models-pick"
            )
            details = gr.Markdown(elem_id="models-info")
    with gr.Row():
        with gr.Column():
            version = gr.Dropdown(list(DOWNLOAD_VERSIONS), value="v2ProPlus", label=t("models_version"))
            dl = gr.Button(t("models_download"), elem_id="models-download")
        with gr.Column():
            name = gr.Textbox(label=t("models_convert_name"), elem_id="convert-name")
            conv = gr.Button(t("models_convert"), elem_id="models-convert")
    status = gr.Markdown(elem_id="models-status")

    def do_refresh() -> tuple[Any, Any]:
        return table(state, refresh=True), gr.update(choices=labels(state))

    refresh.click(do_refresh, None, [listing, pick], api_name=False)
    pick.change(lambda label: info(state, label), [pick], [details], api_name="model_info")

    def dl_fn(v):
        yield from download(state, v)

    dl.click(dl_fn, [version], [status], concurrency_limit=1, api_name="download")
    conv.click(
        lambda g, s, n: convert(state, g, s, n),
        [synth.gpt, synth.sovits, name],
        [listing, status],
        concurrency_limit=1,
        api_name="convert",
    )
