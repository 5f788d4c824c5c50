"""The browser UI (gradio) over the public Python API: ``fastsovits webui --models DIR``.

Tabs: Synthesize, Batch, Voices, Fine-tune, Models (docs/webui.md). Every engine call goes through
:mod:`fastsovits.webui.engine_access`.
"""
