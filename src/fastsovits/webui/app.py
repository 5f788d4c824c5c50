"""The WebUI's page: five tabs over one shared :class:`~fastsovits.webui.state.AppState`."""

from __future__ import annotations

import logging

from fastsovits.webui.config import MAX_UPLOAD_BYTES, WebUIConfig
from fastsovits.webui.state import AppState

log = logging.getLogger(__name__)
QUEUE_SIZE = 64  # events waiting in gradio's queue before new ones are refused


def build_app(config: WebUIConfig, state: AppState | None = None):
    """-> (gradio Blocks, AppState, fine-tuning StepRunner)."""
    import gradio as gr

    from fastsovits.webui import batch_tab, finetune_tab, models_tab, synthesize_tab, voices_tab

    state = state or AppState(config)
    t = state.t
    with gr.Blocks(title="fastsovits", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as demo:
        gr.Markdown(f"## {t('title')}")
        with gr.Tabs(selected="synth") as tabs:
            with gr.Tab(t("tab_synth"), id="synth", elem_id="tab-synth"):
                synth = synthesize_tab.build(state)
            with gr.Tab(t("tab_batch"), id="batch", elem_id="tab-batch"):
                batch_tab.build(state, synth)
            with gr.Tab(t("tab_voices"), id="voices", elem_id="tab-voices"):
                voices_tab.build(state, synth)
            with gr.Tab(t("tab_finetune"), id="finetune", elem_id="tab-finetune"):
                runner = finetune_tab.build(state, synth, tabs)
            with gr.Tab(t("tab_models"), id="models", elem_id="tab-models"):
                models_tab.build(state, synth)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=4)
    return demo, state, runner


def launch(config: WebUIConfig) -> None:
    demo, state, runner = build_app(config)
    try:
        demo.launch(
            server_name=config.host,
            server_port=config.port,
            share=config.share,
            auth=config.auth,
            inbrowser=False,
            show_error=True,
            max_file_size=MAX_UPLOAD_BYTES,
            prevent_thread_lock=False,
            show_api=True,
        )
    finally:
        runner.close()
        state.pool.close()
