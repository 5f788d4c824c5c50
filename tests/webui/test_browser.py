"""The WebUI in headless Chromium: synthesize, two sessions sharing batches, a bad upload, batch jobs,
the voice library and the models tab. Screenshots of every tab go to out/webui/."""

from __future__ import annotations

import io
import json
import re
import threading
import zipfile

import httpx
import pytest
import soundfile as sf
from selenium.webdriver.common.by import By

from tests.webui import page as P
from tests.webui.conftest import MAX_NEW_TOKENS, REF_TEXT, synth_args
from tests.webui.conftest import client as _client

pytestmark = pytest.mark.browser
TOKEN_SECONDS = 1280 / 32000  # one 25 Hz semantic token = 1280 samples at 32 kHz
PAUSE_S = 0.3  # the official default pause after each sentence

# Every <audio> on the page, shadow roots included (the waveform player keeps its own element).
AUDIO_ELEMENTS_JS = """
const out = [];
function walk(root) { root.querySelectorAll('*').forEach(el => {
  if (el.tagName === 'AUDIO' && el.src) out.push([el.src, el.readyState, el.duration]);
  if (el.shadowRoot) walk(el.shadowRoot); }); }
walk(document.querySelector(arguments[0]));
return out;"""


def synthesize_once(driver, webui, text: str) -> str:
    P.upload(driver, "ref-audio", webui.ref_wav)
    P.wait_upload(driver, "ref-audio")
    P.type_into(driver, "ref-text", REF_TEXT)
    P.type_into(driver, "target-text", text)
    before = P.text_of(driver, "synth-status")
    P.click(driver, "synthesize-btn")
    return P.wait_status(driver, "synth-status", previous=before)


def details_tokens(driver) -> list[int]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#details tbody tr")
    out = []
    for row in rows:
        cells = [c.text.strip() for c in row.find_elements(By.CSS_SELECTOR, "td")]
        if len(cells) >= 3 and cells[2].isdigit():
            out.append(int(cells[2]))
    return out


def test_synthesize_gives_a_playable_audio_of_the_expected_duration(webui, browser_factory, screenshots) -> None:
    driver = browser_factory()
    P.open_page(driver, webui.url)
    status = synthesize_once(driver, webui, "Hello there. How are you today?")
    assert status.startswith("✅"), status
    tokens = P.wait_for(lambda: details_tokens(driver), "the per-sentence details")
    assert len(tokens) == 1 and 0 < tokens[0] <= MAX_NEW_TOKENS
    expected = tokens[0] * TOKEN_SECONDS + PAUSE_S
    players = P.wait_for(
        lambda: [a for a in driver.execute_script(AUDIO_ELEMENTS_JS, "#audio-out") if a[1] >= 1],
        "a loaded audio element in the output",
    )
    assert abs(players[0][2] - expected) < 0.02, (players, expected)
    href = driver.find_element(By.CSS_SELECTOR, "#audio-out a.download-link").get_attribute("href")
    wav, sr = sf.read(io.BytesIO(httpx.get(href, timeout=30).content))
    assert sr == 32000 and abs(len(wav) / sr - expected) < 0.02
    assert f"{expected:.2f} s of audio" in status
    driver.save_screenshot(str(screenshots / "synthesize.png"))


def _stats(driver) -> tuple[int, int]:
    text = P.text_of(driver, "engine-stats")
    largest = re.search(r"largest batch: (\d+)", text)
    multi = re.search(r"steps with more than one row: (\d+)", text)
    assert largest and multi, text
    return int(largest.group(1)), int(multi.group(1))


def test_two_sessions_share_engine_batches(webui, browser_factory) -> None:
    a, b = browser_factory(), browser_factory()
    text = "Two people are using this page at the same moment."
    for d in (a, b):
        P.open_page(d, webui.url)
    assert synthesize_once(a, webui, text).startswith("✅")  # alone: one row per step
    _, multi_before = _stats(a)
    P.upload(b, "ref-audio", webui.ref_wav)
    P.wait_upload(b, "ref-audio")
    P.type_into(b, "ref-text", REF_TEXT)
    P.type_into(b, "target-text", text)
    results = []
    for _ in range(3):  # two clicks from two browsers; the engine batches whatever overlaps
        go = threading.Barrier(2)
        before = [P.text_of(d, "synth-status") for d in (a, b)]

        def press(d, barrier: threading.Barrier = go) -> None:
            barrier.wait()
            P.click(d, "synthesize-btn")

        threads = [threading.Thread(target=press, args=(d,)) for d in (a, b)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        statuses = [P.wait_status(d, "synth-status", previous=p) for d, p in zip((a, b), before)]
        assert all(s.startswith("✅") for s in statuses), statuses
        results = [_stats(d) for d in (a, b)]
        if max(r[1] for r in results) > multi_before:
            break
    assert max(r[0] for r in results) >= 2, results
    assert max(r[1] for r in results) > multi_before, (results, multi_before)


def test_bad_upload_shows_an_error_and_the_server_keeps_serving(webui, browser_factory) -> None:
    bad = webui.root / "not_audio.wav"
    bad.write_bytes(b"this is not a wave file" * 100)
    driver = browser_factory()
    P.open_page(driver, webui.url)
    P.upload(driver, "ref-audio", bad)
    P.type_into(driver, "ref-text", REF_TEXT)
    P.type_into(driver, "target-text", "This should not work.")
    P.click(driver, "synthesize-btn")
    status = P.wait_status(driver, "synth-status")
    assert status.startswith("❌") and "ReferenceAudioError" in status, status
    assert str(webui.root) not in status  # no server path in the message
    P.type_into(driver, "target-text", "")
    P.click(driver, "synthesize-btn")
    assert "EmptyText" in P.wait_status(driver, "synth-status", previous=status)
    assert webui.proc.poll() is None
    result = _client(webui).predict(*synth_args(webui, "Still serving."), api_name="/synthesize")
    assert result[3].startswith("✅"), result[3]


def test_streaming_toggle_plays_while_generating(webui, browser_factory) -> None:
    driver = browser_factory()
    P.open_page(driver, webui.url)
    P.upload(driver, "ref-audio", webui.ref_wav)
    P.wait_upload(driver, "ref-audio")
    P.type_into(driver, "ref-text", REF_TEXT)
    P.type_into(driver, "target-text", "A streamed sentence. And another one after it.")
    driver.execute_script("document.querySelector('#streaming input').click()")
    P.wait_for(lambda: driver.find_element(By.ID, "synthesize-stream-btn").is_displayed(), "the streaming button")
    assert not [b for b in driver.find_elements(By.ID, "synthesize-btn") if b.is_displayed()]
    before = P.text_of(driver, "synth-status")
    P.click(driver, "synthesize-stream-btn")
    status = P.wait_status(driver, "synth-status", previous=before)
    assert status.startswith("✅"), status
    streamed = P.wait_for(lambda: driver.execute_script(AUDIO_ELEMENTS_JS, "#stream-out"), "the streaming player")
    assert streamed[0][0].startswith("blob:")
    href = driver.find_element(By.CSS_SELECTOR, "#audio-out a.download-link").get_attribute("href")
    wav, sr = sf.read(io.BytesIO(httpx.get(href, timeout=30).content))
    assert f"{len(wav) / sr:.2f} s of audio" in status


def test_batch_tab_delivers_a_zip_whose_manifest_lists_every_line(webui, browser_factory, screenshots) -> None:
    lines = ["The first line of the batch.", "A second line.", "!!!", "And the last one."]
    src = webui.root / "lines.txt"
    src.write_text("\n".join(lines) + "\n", "utf-8")
    driver = browser_factory()
    P.open_page(driver, webui.url)
    P.tab(driver, "Batch")
    P.upload(driver, "batch-file", src)
    P.upload(driver, "batch-ref", webui.ref_wav)
    P.wait_upload(driver, "batch-ref")
    P.type_into(driver, "batch-ref-text", REF_TEXT)
    P.click(driver, "batch-run")
    status = P.wait_status(driver, "batch-status", timeout=240)
    assert status.startswith("✅") and "3 ok, 1 failed" in status, status
    assert "4 / 4" in driver.find_element(By.ID, "batch-progress").text
    href = P.wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#batch-zip a").get_attribute("href"), "the zip")
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(href, timeout=30).content))
    manifest = [json.loads(x) for x in archive.read("manifest.jsonl").decode().splitlines()]
    assert [m["text"] for m in sorted(manifest, key=lambda m: m["id"])] == lines
    by_text = {m["text"]: m for m in manifest}
    assert by_text["!!!"]["status"] == "error" and "EmptyText" in by_text["!!!"]["error"]
    for text in (x for x in lines if x != "!!!"):
        rec = by_text[text]
        assert rec["status"] == "ok" and rec["file"] in archive.namelist()
        wav, sr = sf.read(io.BytesIO(archive.read(rec["file"])))
        assert abs(len(wav) / sr - rec["duration"]) < 0.01
    driver.save_screenshot(str(screenshots / "batch.png"))


def test_voices_tab_saves_a_voice_that_synthesize_can_use(webui, browser_factory, screenshots) -> None:
    driver = browser_factory()
    P.open_page(driver, webui.url)
    P.tab(driver, "Voices")
    P.type_into(driver, "voice-name", "narrator")
    P.upload(driver, "voice-audio", webui.ref_wav)
    P.wait_upload(driver, "voice-audio")
    P.type_into(driver, "voice-text", REF_TEXT)
    P.click(driver, "voice-save")
    assert P.wait_status(driver, "voice-status").startswith("✅")
    assert "narrator" in P.text_of(driver, "voice-table")
    P.wait_for(lambda: driver.execute_script(AUDIO_ELEMENTS_JS, "#voice-preview"), "the voice preview")
    driver.save_screenshot(str(screenshots / "voices.png"))
    result = _client(webui).predict(
        *synth_args(webui, "Speaking with a saved voice.", voice="narrator"), api_name="/synthesize"
    )
    assert result[3].startswith("✅"), result[3]


def test_models_tab_lists_models_and_explains_an_offline_download(webui, browser_factory, screenshots) -> None:
    driver = browser_factory()
    P.open_page(driver, webui.url)
    P.tab(driver, "Models")
    table = P.text_of(driver, "models-table")
    assert "tiny_s1_v2.ckpt" in table and "tiny_s2_v2.pth" in table and "HuBERT" in table
    P.click(driver, "models-download")
    status = P.wait_status(driver, "models-status", timeout=120)
    assert status.startswith("❌") and "cannot be reached" in status, status
    driver.save_screenshot(str(screenshots / "models.png"))
