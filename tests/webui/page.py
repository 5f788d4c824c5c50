"""Driving the gradio page with selenium: tabs, uploads, text fields, waiting for a status line."""

from __future__ import annotations

import re
import time
from pathlib import Path

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

WAIT_S = 120


def open_page(driver, url: str) -> None:
    driver.get(url)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#synthesize-btn"), "the page to load", 60)


def wait_for(fn, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except (StaleElementReferenceException, WebDriverException) as e:
            last = e
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last})")


def tab(driver, label: str) -> None:
    buttons = [b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text.strip() == label]
    assert buttons, f"no tab {label!r}"
    buttons[0].click()
    time.sleep(0.5)


def upload(driver, elem_id: str, path: Path | list[Path]) -> None:
    paths = path if isinstance(path, list) else [path]
    field = wait_for(
        lambda: driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} input[type=file]"), f"the file input of #{elem_id}"
    )[0]
    field.send_keys("\n".join(str(p) for p in paths))


def type_into(driver, elem_id: str, text: str) -> None:
    el = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} textarea, #{elem_id} input:not([type=file])")
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(Keys.DELETE)
    el.send_keys(text)
    driver.execute_script("arguments[0].blur();", el)  # gradio commits a textbox's value on blur


def set_number(driver, elem_id: str, value: float) -> None:
    el = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=number]")
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(str(value))
    driver.execute_script("arguments[0].blur();", el)


def click(driver, elem_id: str) -> None:
    btn = driver.find_element(By.ID, elem_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", btn)


OVERLAY = re.compile(r"^\s*(processing\b.*|queue:.*|[\d.]+(/[\d.]+)?s)\s*$")  # gradio's progress overlay lines


def _lines(driver, elem_id: str) -> list[str]:
    els = driver.find_elements(By.ID, elem_id)
    return els[0].text.splitlines() if els else []


def text_of(driver, elem_id: str) -> str:
    """The element's text without the lines of gradio's progress overlay ("processing | 1.2/3.4s")."""
    return "\n".join(line for line in _lines(driver, elem_id) if not OVERLAY.match(line))


def pending(driver, elem_id: str) -> bool:
    """An output whose event is still running shows gradio's progress overlay."""
    if driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} .wrap:not(.hide)"):
        return True
    return any(OVERLAY.match(line) for line in _lines(driver, elem_id))


def wait_status(driver, elem_id: str, timeout: float = WAIT_S, contains: str = "", previous: str | None = None) -> str:
    """Wait until #elem_id shows a final line (✅, ❌ or ⏹) other than ``previous`` and return it."""

    def done() -> str:
        if pending(driver, elem_id):
            return ""
        text = text_of(driver, elem_id).strip()
        final = ("✅" in text or "❌" in text or "⏹" in text) and contains in text
        return text if final and text != previous else ""

    return wait_for(done, f"a result in #{elem_id}", timeout)


def wait_upload(driver, elem_id: str) -> None:
    """An uploaded audio shows a player (or a file row) inside its component."""
    wait_for(
        lambda: driver.find_elements(
            By.CSS_SELECTOR, f"#{elem_id} audio, #{elem_id} .file-preview, #{elem_id} button[aria-label='Clear']"
        ),
        f"the upload into #{elem_id}",
        60,
    )
