"""The WebUI's API surface, headless, through gradio_client (what scripts and other UIs call)."""

from __future__ import annotations

import soundfile as sf

from tests.webui.conftest import MAX_NEW_TOKENS, client, synth_args

TOKEN_SECONDS = 1280 / 32000


def test_synthesize_through_gradio_client(webui) -> None:
    c = client(webui)
    names = set(c.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/synthesize", "/synthesize_stream", "/batch", "/load_model", "/preview_split"} <= names
    text = "One sentence here. And a second one follows it."
    audio, download, details, status, stats, seed = c.predict(*synth_args(webui, text, seed=11), api_name="/synthesize")
    assert status.startswith("✅") and seed == 11, status
    rows = details["data"]
    assert [r[0] for r in rows] == [0]  # cut1 keeps two sentences in one piece
    wav, sr = sf.read(audio)
    assert sr == 32000
    tokens = sum(r[2] for r in rows)
    assert 0 < tokens <= MAX_NEW_TOKENS * len(rows)
    assert abs(len(wav) / sr - (tokens * TOKEN_SECONDS + 0.3 * len(rows))) < 0.02
    again = c.predict(*synth_args(webui, text, seed=11), api_name="/synthesize")
    assert (sf.read(again[0])[0] == wav).all()  # a fixed seed reproduces the audio


def test_split_preview_and_errors_through_gradio_client(webui) -> None:
    c = client(webui)
    table, status = c.predict("First. Second! Third?", "en", "cut5", api_name="/preview_split")
    assert [row[1].strip() for row in table["data"]] == ["First.", "Second!", "Third?"]
    out = c.predict(*synth_args(webui, "   "), api_name="/synthesize")
    assert out[3].startswith("❌") and "EmptyText" in out[3]
    out = c.predict(*synth_args(webui, "x" * 6000), api_name="/synthesize")
    assert out[3].startswith("❌") and "TextTooLong" in out[3]
