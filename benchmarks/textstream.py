"""Text-stream latency: from the first sentence's last delta to its first audio (prints JSON).

    python benchmarks/textstream.py [--runs 10] [--delta-chars 2] [--interval-ms 10] [--token-streaming]
                                    [--gpt F --sovits F --hubert D]

Feeds a text in deltas of ``--delta-chars`` characters, one every ``--interval-ms`` (an LLM's
pace), through ``TTS.stream_text`` and through the WebSocket route ``/v1/audio/speech/stream`` of a
``fastsovits serve`` subprocess, and reports p50/p95 (and min/max) of the time from handing over
the delta that holds the first sentence's end mark to receiving that sentence's first audio. The
splitter closes a sentence when the character after its end mark arrives, so the figure includes
one delta interval. Default models: the tiny random test models (``FASTSOVITS_REFERENCE``); pass
full-size files for real figures. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEXT = "The first sentence is here. And then a second one follows, a little longer. A third one ends it."
FIRST_END = TEXT.index(".")  # the first sentence's end mark
START_TIMEOUT_S = 180


def reference_dir() -> Path:
    return Path(os.environ.get("FASTSOVITS_REFERENCE", ROOT / "tests/fixtures/reference"))


def pieces(size: int) -> list[tuple[int, str]]:
    """(start, text) deltas of ``size`` characters."""
    return [(i, TEXT[i : i + size]) for i in range(0, len(TEXT), size)]


def holds_first_end(start: int, text: str) -> bool:
    return start <= FIRST_END < start + len(text)


def summary(values: list[float]) -> dict:
    arr = np.asarray(values) * 1000
    return {
        "runs": len(values),
        "p50_ms": round(float(np.percentile(arr, 50)), 1),
        "p95_ms": round(float(np.percentile(arr, 95)), 1),
        "min_ms": round(float(arr.min()), 1),
        "max_ms": round(float(arr.max()), 1),
    }


def python_api(a: argparse.Namespace, files: dict[str, Path]) -> dict:
    import torch

    from fastsovits.api import TTS
    from fastsovits.params import SynthesisParams

    torch.set_num_threads(a.threads)
    tts = TTS.from_pretrained(
        gpt=files["gpt"],
        sovits=files["sovits"],
        hubert_dir=files["hubert"],
        device="cpu",
        num_slots=8,
        max_len=a.max_len,
    )
    try:
        wav = np.load(reference_dir() / "io/audio_inputs.npz")["wav32k_b"]
        voice = tts.load_reference((wav, 32000), "This is the reference.", "en")
        out = []
        for run in range(a.runs + 1):  # the first run warms up
            marks: dict[str, float] = {}

            def llm(marks: dict[str, float]) -> Iterator[str]:
                for start, text in pieces(a.delta_chars):
                    time.sleep(a.interval_ms / 1000)
                    if holds_first_end(start, text):
                        marks["last_delta"] = time.perf_counter()
                    yield text

            params = SynthesisParams(
                seed=run, max_new_tokens=a.max_new_tokens, text_split_method="cut5", streaming_mode=a.token_streaming
            )
            for chunk in tts.stream_text(llm(marks), voice, "en", params):
                if chunk.samples.size and "audio" not in marks:
                    marks["audio"] = time.perf_counter()
            if run:
                out.append(marks["audio"] - marks["last_delta"])
        return summary(out)
    finally:
        tts.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def websocket(a: argparse.Namespace, files: dict[str, Path], workdir: Path) -> dict:
    import httpx
    import soundfile as sf

    refs = workdir / "refs"
    refs.mkdir()
    sf.write(refs / "ref.wav", np.load(reference_dir() / "io/audio_inputs.npz")["wav32k_b"], 32000)
    (workdir / "voices.yaml").write_text(
        "voices:\n  ref: {audio: refs/ref.wav, text: 'This is the reference.', language: en}\ndefault_voice: ref\n"
    )
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "fastsovits",
        "serve",
        "--gpt",
        str(files["gpt"]),
        "--sovits",
        str(files["sovits"]),
        "--hubert",
        str(files["hubert"]),
        "--device",
        "cpu",
        "--num-slots",
        "8",
        "--max-len",
        str(a.max_len),
        "--max-new-tokens",
        str(a.max_new_tokens),
        "--threads",
        str(a.threads),
        "--port",
        str(port),
        "--voices",
        str(workdir / "voices.yaml"),
        "--ref-root",
        str(refs),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    with open(workdir / "server.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((workdir / "server.log").read_text()[-3000:])
            time.sleep(0.3)
        return asyncio.run(_ws_runs(a, f"ws://127.0.0.1:{port}/v1/audio/speech/stream"))
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(60)


async def _ws_runs(a: argparse.Namespace, url: str) -> dict:
    import websockets

    out = []
    for run in range(a.runs + 1):
        async with websockets.connect(url) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "session.config",
                        "voice": "ref",
                        "response_format": "pcm",
                        "seed": run,
                        "text_split_method": "cut5",
                        "streaming_mode": a.token_streaming,
                    }
                )
            )
            marks: dict[str, float] = {}

            async def feed(marks: dict[str, float]) -> None:
                for start, text in pieces(a.delta_chars):
                    await asyncio.sleep(a.interval_ms / 1000)
                    await ws.send(json.dumps({"type": "input.text.delta", "delta": text}))
                    if holds_first_end(start, text):
                        marks["last_delta"] = time.perf_counter()
                await ws.send(json.dumps({"type": "input.text.done"}))

            sender = asyncio.create_task(feed(marks))
            async for msg in ws:
                if isinstance(msg, bytes) and "audio" not in marks:
                    marks["audio"] = time.perf_counter()
            await sender
            if run:
                out.append(marks["audio"] - marks["last_delta"])
    return summary(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--delta-chars", type=int, default=2, help="characters per delta")
    ap.add_argument("--interval-ms", type=float, default=10.0, help="pause before each delta")
    ap.add_argument("--max-new-tokens", type=int, default=40)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gpt", type=Path)
    ap.add_argument("--sovits", type=Path)
    ap.add_argument("--hubert", type=Path)
    ap.add_argument("--token-streaming", action="store_true", help="audio chunks inside each sentence")
    ap.add_argument("--skip-ws", action="store_true", help="only the Python API")
    a = ap.parse_args()
    tiny = reference_dir() / "tiny"
    files = {
        "gpt": a.gpt or tiny / "tiny_s1_v2.ckpt",
        "sovits": a.sovits or tiny / "tiny_s2_v2.pth",
        "hubert": a.hubert or tiny / "tiny_hubert",
    }
    result: dict = {
        "metric": "first sentence: last delta -> first audio",
        "delta_chars": a.delta_chars,
        "interval_ms": a.interval_ms,
        "models": {k: str(v) for k, v in files.items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "python_api": python_api(a, files),
    }
    if not a.skip_ws:
        with tempfile.TemporaryDirectory() as d:
            result["websocket"] = websocket(a, files, Path(d))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
