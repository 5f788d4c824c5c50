"""Load test of ``fastsovits serve`` on loopback with the full-size random models (prints JSON).

    python benchmarks/load.py [--models DIR] [--levels 1,4,16,64] [--per-level 32] [--soak 500] [--dtype bf16]

Starts the real server as a subprocess (full-size random official-format files from
``benchmarks/fullsize.py``; the zeroed EOS row makes every sentence exactly ``--tokens`` tokens),
then for each concurrency level runs a bounded number of streamed OpenAI requests (``pcm``)
and reports p50/p95 time to first audio and aggregate audio seconds per wall second. The soak
phase sends ``--soak`` requests at ``--soak-clients`` and compares the server's RSS after the
first 50 with the RSS at the end. Every phase is bounded by ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PCM_RATE = 24000  # OpenAI pcm


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(a: argparse.Namespace, files, port: int, workdir: Path) -> subprocess.Popen:
    voices = workdir / "voices.yaml"
    voices.write_text(f"voices:\n  bench: {{audio: {files.ref}, text: {json.dumps(files.ref_text)}, language: en}}\n")
    cmd = [
        sys.executable,
        "-m",
        "fastsovits",
        "serve",
        "--gpt",
        files.gpt,
        "--sovits",
        files.sovits,
        "--hubert",
        files.hubert,
        "--sv",
        files.sv,
        "--device",
        a.device,
        "--voices",
        str(voices),
        "--port",
        str(port),
        "--queue-limit",
        str(max(a.levels) * 2),
        "--max-new-tokens",
        str(a.tokens),
        "--num-slots",
        str(a.num_slots),
        "--max-len",
        "1024",
    ]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    cmd += ["--dtype", a.dtype]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(cmd, stdout=open(workdir / "server.log", "wb"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 600
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {(workdir / 'server.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("server not ready after 600 s")
        time.sleep(0.5)


TOKEN_STREAM = {"on": False}  # --token-stream: pieces inside a sentence (streaming_mode) instead of whole sentences


async def one(c: httpx.AsyncClient, text: str, seed: int) -> tuple[float | None, float, str | None]:
    t0 = time.perf_counter()
    body = {
        "model": "tts-1",
        "input": text,
        "voice": "bench",
        "response_format": "pcm",
        "seed": seed,
        "text_split_method": "cut0",
        "streaming_mode": TOKEN_STREAM["on"],
    }
    first, nbytes = None, 0
    try:
        async with c.stream("POST", "/v1/audio/speech", json=body) as r:
            if r.status_code != 200:
                return None, 0.0, f"HTTP {r.status_code}"
            async for chunk in r.aiter_bytes():
                if first is None and chunk:
                    first = time.perf_counter() - t0
                nbytes += len(chunk)
    except httpx.HTTPError as e:
        return None, 0.0, type(e).__name__
    return first, nbytes / 2 / PCM_RATE, None


async def phase(url: str, clients: int, count: int, texts: list[str], max_s: float, on_done=None) -> dict:
    results: list = []
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    deadline = time.perf_counter() + max_s
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(c: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            results.append(await one(c, texts[i % len(texts)], i))
            if on_done is not None:
                on_done(len(results))

    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as c:
        await asyncio.gather(*(worker(c) for _ in range(clients)))
    wall = time.perf_counter() - t0
    ttfa = [r[0] for r in results if r[0] is not None]
    audio = sum(r[1] for r in results)
    return {
        "clients": clients,
        "requests": len(results),
        "errors": sum(r[2] is not None for r in results),
        "error_kinds": sorted({r[2] for r in results if r[2]}),
        "wall_s": round(wall, 2),
        "ttfa_p50_s": round(float(np.percentile(ttfa, 50)), 3) if ttfa else None,
        "ttfa_p95_s": round(float(np.percentile(ttfa, 95)), 3) if ttfa else None,
        "audio_s": round(audio, 2),
        "audio_s_per_wall_s": round(audio / wall, 3),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--models",
        default=os.path.join(tempfile.gettempdir(), "fullsize"),
        help="folder for the full-size random files (written once by benchmarks/fullsize.py)",
    )
    p.add_argument("--levels", default="1,4,16,64")
    p.add_argument("--per-level", type=int, default=32, help="requests per concurrency level (at least the level)")
    p.add_argument("--soak", type=int, default=500, help="requests of the RSS soak phase (0: skip)")
    p.add_argument("--soak-clients", type=int, default=16)
    p.add_argument("--tokens", type=int, default=50, help="semantic tokens per sentence (50 = 2 s of audio)")
    p.add_argument("--max-seconds", type=float, default=600, help="bound on each phase")
    p.add_argument("--num-slots", type=int, default=64)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto", help="the server's --dtype (auto, fp32, bf16, t2s=bf16,sovits=bf16)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token-stream", action="store_true", help="token-chunk streaming (streaming_mode) requests")
    a = p.parse_args()
    TOKEN_STREAM["on"] = a.token_stream
    a.levels = [int(x) for x in a.levels.split(",")]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fullsize import SENTENCES, write_models

    files = write_models(a.models)
    port = a.port or _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_server(a, files, port, Path(tmp))
        try:
            asyncio.run(phase(url, 1, 2, SENTENCES, a.max_seconds))  # warm-up (frontend, first reference)
            levels = []
            for c in a.levels:
                busy0 = _busy(httpx.get(url + "/metrics").text)
                levels.append(asyncio.run(phase(url, c, max(a.per_level, c), SENTENCES, a.max_seconds)))
                busy1 = _busy(httpx.get(url + "/metrics").text)
                levels[-1]["busy_s"] = {k: round(busy1[k] - busy0.get(k, 0.0), 2) for k in busy1}
            out = {
                "benchmark": "load",
                "device": a.device,
                "dtype": a.dtype,
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
                "tokens_per_sentence": a.tokens,
                "token_stream": a.token_stream,
                "levels": levels,
            }
            by = {lv["clients"]: lv["audio_s_per_wall_s"] for lv in levels}
            if 1 in by and 16 in by and by[1]:
                out["speedup_16_vs_1"] = round(by[16] / by[1], 2)
            one = next((lv for lv in levels if lv["clients"] == 1), None)
            if one and one["busy_s"].get("decode") is not None and "prefill" in one["busy_s"]:
                # Prefill and vocoder are compute-bound: batching does not make them cheaper per request.
                # Even if batched T2S steps cost nothing, N clients cannot beat 1 by more than this.
                busy = one["busy_s"]
                fixed = busy["prefill"] + busy["decode"]
                if fixed > 0:
                    out["speedup_bound_if_steps_were_free"] = round((busy["t2s"] + busy["decode"]) / fixed, 2)
            if a.soak:
                marks: dict = {}

                def mark(n: int) -> None:
                    if n == 50:
                        marks["rss_after_50_mb"] = rss_mb(proc.pid)

                soak = asyncio.run(phase(url, a.soak_clients, a.soak, SENTENCES, a.max_seconds, mark))
                soak["rss_after_50_mb"] = round(marks.get("rss_after_50_mb", float("nan")), 1)
                soak["rss_end_mb"] = round(rss_mb(proc.pid), 1)
                soak["rss_growth_pct"] = round(100 * (soak["rss_end_mb"] / soak["rss_after_50_mb"] - 1), 2)
                out["soak"] = soak
            out["server_metrics_batch_size"] = _batch_mean(httpx.get(url + "/metrics").text)
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(120)
    print(json.dumps(out, indent=2))
    return 0


def _busy(text: str) -> dict[str, float]:
    """Engine busy seconds per stage (summed over resident models) from /metrics."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("fastsovits_stage_busy_seconds_total{"):
            stage = line.split('stage="', 1)[1].split('"', 1)[0]
            out[stage] = out.get(stage, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def _batch_mean(text: str) -> float | None:
    vals = {}
    for line in text.splitlines():
        for name in ("fastsovits_batch_size_sum", "fastsovits_batch_size_count"):
            if line.startswith(name + " "):
                vals[name] = float(line.split()[1])
    n = vals.get("fastsovits_batch_size_count")
    return round(vals["fastsovits_batch_size_sum"] / n, 2) if n else None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    raise SystemExit(main())
