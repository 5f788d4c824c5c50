"""The fine-tuning wizard in the browser on a tiny espeak-ng corpus: slice -> .list -> prepare ->
one epoch of GPT and of SoVITS -> export -> the model appears in the Synthesize picker and speaks."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.train.corpus import build_corpus
from tests.webui import page as P

pytestmark = pytest.mark.browser
STEP_TIMEOUT_S = 400
GPT_YAML = "min_items: 0\nbatch_size: 4"
SOVITS_YAML = (
    "min_items: 0\nbatch_size: 4\nsegment_frames: 8\ndisc_channels: [4, 8, 16, 16, 16]\n"
    "disc_scale_channels: [4, 8, 16, 16, 16, 16]"
)


def run_step(driver, button: str, expect: str) -> str:
    before = P.text_of(driver, "ft-status")
    P.click(driver, button)
    status = P.wait_status(driver, "ft-status", timeout=STEP_TIMEOUT_S, previous=before)
    assert status.startswith("✅") and expect in status, (status, P.text_of(driver, "ft-log"))
    return status


def progress_box(driver) -> dict:
    box = driver.find_element(By.ID, "ft-progress-box")
    return {k: box.get_attribute(f"data-{k}") for k in ("state", "done", "total")}


def test_finetune_wizard_end_to_end(webui, browser_factory, screenshots) -> None:
    corpus = build_corpus(webui.roots / "corpus", n_per_voice=4)
    driver = browser_factory()
    P.open_page(driver, webui.url)
    P.tab(driver, "Fine-tune")
    P.type_into(driver, "ft-exp", "tinyvoice")

    P.type_into(driver, "ft-folder", "/etc")  # outside the allowed folders: refused, nothing read
    before = P.text_of(driver, "ft-status")
    P.click(driver, "ft-slice")
    refused = P.wait_status(driver, "ft-status", previous=before)
    assert refused.startswith("❌") and "PathNotAllowed" in refused, refused

    P.type_into(driver, "ft-folder", str(corpus.wav_dir))
    run_step(driver, "ft-slice", "slice finished")
    assert progress_box(driver) == {"state": "done", "done": "8", "total": "8"}

    P.upload(driver, "ft-list", corpus.list_path)
    P.wait_upload(driver, "ft-list")
    run_step(driver, "ft-use-list", "8 transcripts loaded")
    table = P.text_of(driver, "ft-table")
    assert corpus.items[0].text in table
    run_step(driver, "ft-save-table", "8 transcripts saved")

    run_step(driver, "ft-prepare", "prepare finished")
    assert progress_box(driver)["state"] == "done"

    P.set_number(driver, "ft-gpt-epochs", 1)
    P.type_into(driver, "ft-gpt-yaml", GPT_YAML)
    run_step(driver, "ft-train-gpt", "train_gpt finished")
    box = progress_box(driver)
    assert box["state"] == "done" and box["done"] == box["total"] == "1", box
    assert "epoch 1" in driver.find_element(By.ID, "ft-progress-box").text

    P.set_number(driver, "ft-sovits-epochs", 1)
    P.type_into(driver, "ft-sovits-yaml", SOVITS_YAML)
    run_step(driver, "ft-train-sovits", "train_sovits finished")
    box = progress_box(driver)
    assert box["state"] == "done" and box["done"] == box["total"] == "1", box

    run_step(driver, "ft-export", "exported tinyvoice")
    driver.save_screenshot(str(screenshots / "finetune.png"))
    P.click(driver, "ft-use")
    P.wait_for(
        lambda: "tinyvoice" in driver.find_element(By.CSS_SELECTOR, "#gpt-model input").get_attribute("value"),
        "the exported GPT in the Synthesize picker",
    )
    assert "tinyvoice" in driver.find_element(By.CSS_SELECTOR, "#sovits-model input").get_attribute("value")
    assert driver.find_element(By.ID, "synthesize-btn").is_displayed()  # the Synthesize tab is open

    P.upload(driver, "ref-audio", webui.ref_wav)
    P.wait_upload(driver, "ref-audio")
    P.type_into(driver, "ref-text", "This is the reference.")
    P.type_into(driver, "target-text", "Hello from the fine-tuned voice.")
    before = P.text_of(driver, "synth-status")
    P.click(driver, "synthesize-btn")
    status = P.wait_status(driver, "synth-status", previous=before)
    assert status.startswith("✅") and "s of audio" in status, status
