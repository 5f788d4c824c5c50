"""A real ``python -m fastsovits.webui`` process on a free loopback port with the tiny models, and
headless Debian Chromium (selenium + /usr/bin/chromedriver) to drive it.

Nothing here downloads a browser: a missing /usr/bin/chromium or /usr/bin/chromedriver fails the
tests with the command that installs them (``make setup`` does, where apt is usable).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.reference import reference_dir

REF = reference_dir()
TINY = REF / "tiny"
REF_TEXT = "This is the reference."
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
START_TIMEOUT_S = 120
SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "webui"
MAX_NEW_TOKENS = 60  # the tiny random models rarely stop early: each sentence runs to this cap


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_reference(path: Path) -> Path:
    wav = np.load(REF / "io/audio_inputs.npz")["wav32k_b"]  # 3.1 s at 32 kHz
    sf.write(str(path), wav, 32000, subtype="PCM_16")
    return path


class WebUI:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.models, self.data, self.roots = root / "models", root / "data", root / "roots"
        for d in (self.models, self.data, self.roots):
            d.mkdir(parents=True, exist_ok=True)
        for name in ("tiny_s1_v2.ckpt", "tiny_s2_v2.pth"):
            shutil.copyfile(TINY / name, self.models / name)
        shutil.copytree(TINY / "tiny_hubert", self.models / "tiny_hubert")
        self.ref_wav = write_reference(self.roots / "ref.wav")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(root / "webui.log", "w+b")  # noqa: SIM115 - closed in stop()
        cmd = [
            sys.executable,
            "-m",
            "fastsovits.webui",
            "--models",
            str(self.models),
            "--data",
            str(self.data),
            "--roots",
            str(self.roots),
            "--port",
            str(self.port),
            "--device",
            "cpu",
            "--train-device",
            "cpu",
            "--num-slots",
            "8",
            "--max-len",
            "256",
            "--max-new-tokens",
            str(MAX_NEW_TOKENS),
        ]
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "FASTSOVITS_DATA_DIR": str(root / "voice-store"),
            "GRADIO_TEMP_DIR": str(root / "gradio-tmp"),
            "TMPDIR": str(root / "tmp"),
        }
        (root / "tmp").mkdir()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"webui exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"webui not up after {START_TIMEOUT_S} s:\n{self.output()}")
            time.sleep(0.3)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="session")
def webui(tmp_path_factory):
    ui = WebUI(tmp_path_factory.mktemp("webui"))
    try:
        ui.wait_ready()
        yield ui
    finally:
        ui.stop()


def _chrome():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for exe in (CHROMIUM, CHROMEDRIVER):
        if not exe.is_file():
            raise RuntimeError(f"{exe} is missing: apt-get install chromium chromium-driver (make setup does it)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="fastsovits-chromium-")
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={profile}",
        "--window-size=1400,1800",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.implicitly_wait(0)
    return driver, profile


@pytest.fixture()
def browser_factory():
    """Call it to open a headless Chromium; every one opened is closed at teardown."""
    opened = []

    def make():
        driver, profile = _chrome()
        opened.append((driver, profile))
        return driver

    yield make
    for driver, profile in opened:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def client(webui: WebUI):
    from gradio_client import Client

    return Client(webui.url, verbose=False, download_files=str(webui.root / "client-downloads"))


def synth_args(
    webui: WebUI,
    text: str,
    voice: str = "",
    seed: int = 7,
    gpt: str = "tiny_s1_v2.ckpt",
    sovits: str = "tiny_s2_v2.pth",
) -> list:
    """The /synthesize endpoint's inputs in order (the Synthesize tab's fields)."""
    from gradio_client import handle_file

    ref = None if voice else handle_file(str(webui.ref_wav))
    return [
        gpt,
        sovits,
        voice,
        ref,
        "" if voice else REF_TEXT,
        "en",
        False,
        [],
        text,
        "en",
        "cut1",
        15,
        1.0,
        1.0,
        1.35,
        1.0,
        0.3,
        seed,
        False,
        32,
    ]
