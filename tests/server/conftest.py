"""A real ``fastsovits serve`` subprocess on a free loopback port, with the tiny random models.

Session-scoped: started once (poll /healthz then /readyz), killed by its pid at teardown.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

import fastsovits
from tests.reference import reference_dir

REF = reference_dir()
REF_TEXT = "This is the reference."
QUEUE_LIMIT = 32
START_TIMEOUT_S = 120


def wav_bytes(samples: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def reference_clip() -> np.ndarray:
    return np.load(REF / "io/audio_inputs.npz")["wav32k_b"]  # 3.1 s at 32 kHz


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(
        self, tmp: Path, extra: list[str], data_dir: Path | None = None, model: list[str] | None = None
    ) -> None:
        """``model``: the model options (default: the tiny v2 GPT, SoVITS and HuBERT files)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp / "server.log", "w+b")  # noqa: SIM115 - closed in stop()
        if model is None:
            model = ["--gpt", str(REF / "tiny/tiny_s1_v2.ckpt"), "--sovits", str(REF / "tiny/tiny_s2_v2.pth")]
            model += ["--hubert", str(REF / "tiny/tiny_hubert")]
        cmd = [
            sys.executable,
            "-m",
            "fastsovits",
            "serve",
            *model,
            "--device",
            "cpu",
            "--num-slots",
            "8",
            "--max-len",
            "256",
            "--max-new-tokens",
            "40",
            "--threads",
            "1",
            "--port",
            str(self.port),
            *extra,
        ]
        # The server runs the same fastsovits as the tests (this checkout's, also when the venv's editable
        # install points at another one); its voice store is never the user's own.
        paths = [str(Path(fastsovits.__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2])]
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(paths),
            "FASTSOVITS_DATA_DIR": str(data_dir or tmp / "data"),
        }
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        for path in ("/healthz", "/readyz"):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
                try:
                    if httpx.get(self.url + path, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not {path} after {START_TIMEOUT_S} s:\n{self.output()}")
                time.sleep(0.2)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="session")
def server_files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("server")
    refs = d / "refs"
    refs.mkdir()
    (refs / "ref.wav").write_bytes(wav_bytes(reference_clip(), 32000))
    (d / "secret.txt").write_text("not for clients")
    (d / "voices.yaml").write_text(
        f"voices:\n  ref: {{audio: refs/ref.wav, text: '{REF_TEXT}', language: en}}\ndefault_voice: ref\n"
    )
    return d


@pytest.fixture(scope="session")
def server(server_files):
    srv = Server(
        server_files,
        [
            "--voices",
            str(server_files / "voices.yaml"),
            "--ref-root",
            str(server_files / "refs"),
            "--queue-limit",
            str(QUEUE_LIMIT),
            "--max-audio-seconds",
            "20",
            "--weights-root",
            str(REF / "tiny"),
            "--max-body-mb",
            "2",
            "--max-text-chars",
            "2000",
        ],
    )
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


def metric(text: str, name: str, **labels) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, value = line.rsplit(" ", 1)
        metric_name = head.split("{", 1)[0]
        if metric_name != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total
