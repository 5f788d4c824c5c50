"""Plain ``serve`` against ``serve --ray`` (1 and 2 engine replicas) with one request mix (prints JSON).

    python benchmarks/cluster.py [--clients 16] [--requests 96] [--voices 16] [--hop 30] [--ray-cpus 2]

Every configuration runs as a real server subprocess on loopback with the same models (default:
the tiny random models of the test fixtures; ``--gpt/--sovits/--hubert`` for others) and the same
voices. ``ray_hop``: a plain server and a one-replica Ray server run side by side and one client
alternates between them, so the first-audio latency the Ray path adds is a paired difference under
the same machine noise. ``load``: ``--clients`` concurrent clients over ``--voices`` voices, one
configuration at a time (throughput, p50/p95 first audio). For the Ray configurations the ingress's
``fastsovits_cluster_requests`` gives the voice-cache hit rate of the load phase and the reference
encodes since start; two replicas run once with the affinity router and once with ``--router pow2``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
PCM_RATE = 24000  # OpenAI pcm
TEXTS = (
    "Hello there, how are you today?",
    "The weather is lovely this morning.",
    "Please call me back when you can.",
    "This is a short test of the system.",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_voices(d: Path, ref: Path, n: int) -> Path:
    clip = np.load(ref / "io/audio_inputs.npz")["wav32k_b"]
    lines = ["voices:"]
    for i in range(n):
        sf.write(d / f"v{i}.wav", clip * (1.0 - 0.1 * i), 32000, subtype="PCM_16")  # distinct content per voice
        lines.append(f"  v{i}: {{audio: v{i}.wav, text: 'This is the reference.', language: en}}")
    (d / "voices.yaml").write_text("\n".join(lines) + "\n")
    return d / "voices.yaml"


def start(a: argparse.Namespace, voices: Path, extra: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    module = "fastsovits.cluster" if "--ray" in extra else "fastsovits"
    cmd = [
        sys.executable,
        "-m",
        module,
        "serve",
        "--gpt",
        a.gpt,
        "--sovits",
        a.sovits,
        "--hubert",
        a.hubert,
        "--device",
        "cpu",
        "--num-slots",
        "16",
        "--max-len",
        "256",
        "--max-new-tokens",
        str(a.tokens),
        "--threads",
        "1",
        "--port",
        str(port),
        "--voices",
        str(voices),
        "--queue-limit",
        "128",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise SystemExit("server not ready after 600 s")
        time.sleep(0.5)
    if "--ray" in extra:  # every engine replica up and reporting
        want = int(extra[extra.index("--replicas") + 1])
        while len(httpx.get(url + "/cluster", timeout=5).json()["replicas"]) < want:
            time.sleep(0.5)
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


async def one(c: httpx.AsyncClient, voice: str, text: str) -> tuple[float | None, float]:
    t0 = time.perf_counter()
    first, nbytes = None, 0
    async with c.stream(
        "POST",
        "/v1/audio/speech",
        json={"model": "tts-1", "input": text, "voice": voice, "response_format": "pcm", "seed": 1},
    ) as r:
        if r.status_code != 200:
            return None, 0.0
        async for chunk in r.aiter_bytes():
            if chunk and first is None:
                first = time.perf_counter() - t0
            nbytes += len(chunk)
    return first, nbytes / 2 / PCM_RATE


async def phase(url: str, clients: int, requests: int, voices: int, seed: int) -> dict:
    rng = random.Random(seed)
    jobs = [(f"v{rng.randrange(voices)}", rng.choice(TEXTS)) for _ in range(requests)]
    queue: asyncio.Queue = asyncio.Queue()
    for j in jobs:
        queue.put_nowait(j)
    firsts, audio, errors = [], 0.0, 0

    async def worker(c: httpx.AsyncClient) -> None:
        nonlocal audio, errors
        while not queue.empty():
            voice, text = queue.get_nowait()
            f, secs = await one(c, voice, text)
            if f is None:
                errors += 1
            else:
                firsts.append(f)
                audio += secs

    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_connections=clients)) as c:
        await asyncio.gather(*(worker(c) for _ in range(clients)))
    wall = time.perf_counter() - t0
    ms = np.array(firsts) * 1000 if firsts else np.array([np.nan])
    return {
        "clients": clients,
        "requests": requests,
        "errors": errors,
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(firsts) / wall, 2),
        "audio_s_per_s": round(audio / wall, 2),
        "first_audio_ms": {
            "p50": round(float(np.percentile(ms, 50)), 1),
            "p95": round(float(np.percentile(ms, 95)), 1),
        },
    }


def cache_counts(url: str) -> tuple[float, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    hit = miss = 0.0
    for line in text.splitlines():
        if line.startswith("fastsovits_cluster_requests_total{"):
            value = float(line.rsplit(" ", 1)[1])
            if 'cache="hit"' in line:
                hit += value
            else:
                miss += value
    return hit, miss


def run_config(a: argparse.Namespace, name: str, voices: Path, extra: list[str], workdir: Path) -> dict:
    proc, url = start(a, voices, extra, workdir / f"{name}.log")
    try:
        asyncio.run(phase(url, 2, 8, a.voices, seed=0))  # warm-up
        before = cache_counts(url) if "--ray" in extra else None
        load = asyncio.run(phase(url, a.clients, a.requests, a.voices, seed=2))
        out = {"config": name, "args": extra, "load": load}
        if before is not None:
            after = cache_counts(url)
            hit, miss = (x - y for x, y in zip(after, before))
            out["voice_cache_hit_rate_load"] = round(hit / max(hit + miss, 1), 3)
            out["reference_encodes_since_start"] = int(after[1])  # misses, registration included
        return out
    finally:
        stop(proc)


async def alternate(urls: list[str], n: int) -> list[list[float]]:
    """``n`` rounds of one request to each server in turn (same voice and text): paired, equally noisy."""
    out: list[list[float]] = [[] for _ in urls]
    clients = [httpx.AsyncClient(base_url=u, timeout=300) for u in urls]
    try:
        for i in range(n):
            for k, c in enumerate(clients):
                first, _ = await one(c, "v0", TEXTS[i % len(TEXTS)])
                out[k].append(first * 1000 if first is not None else float("nan"))
    finally:
        for c in clients:
            await c.aclose()
    return out


def hop(a: argparse.Namespace, voices: Path, plain: list[str], ray: list[str], workdir: Path) -> dict:
    """Plain and one-replica Ray servers side by side, one client alternating: the first-audio latency the
    Ray path (Serve proxy, ingress, router, replica hop) adds, as paired differences."""
    p1, u1 = start(a, voices, plain, workdir / "hop-plain.log")
    try:
        p2, u2 = start(a, voices, ray, workdir / "hop-ray.log")
        try:
            asyncio.run(alternate([u1, u2], 4))  # warm-up
            t_plain, t_ray = asyncio.run(alternate([u1, u2], a.hop))
        finally:
            stop(p2)
    finally:
        stop(p1)
    diff = np.array(t_ray) - np.array(t_plain)
    return {
        "rounds": a.hop,
        "plain_first_audio_ms_p50": round(float(np.nanmedian(t_plain)), 1),
        "ray_first_audio_ms_p50": round(float(np.nanmedian(t_ray)), 1),
        "added_ms": {
            "p50": round(float(np.nanpercentile(diff, 50)), 1),
            "p95": round(float(np.nanpercentile(diff, 95)), 1),
        },
    }


def main() -> None:
    ref = Path(os.environ.get("FASTSOVITS_REFERENCE", ROOT / "tests/fixtures/reference"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpt", default=str(ref / "tiny/tiny_s1_v2.ckpt"))
    p.add_argument("--sovits", default=str(ref / "tiny/tiny_s2_v2.pth"))
    p.add_argument("--hubert", default=str(ref / "tiny/tiny_hubert"))
    p.add_argument("--tokens", type=int, default=40, help="--max-new-tokens of every server")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=96)
    p.add_argument("--hop", type=int, default=30, help="alternating rounds of the hop measurement")
    p.add_argument("--voices", type=int, default=16)
    p.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray instance")
    p.add_argument("--cpus-per-replica", type=float, default=0.5)
    p.add_argument("--only", help="comma-separated subset of: plain,ray1,ray2,ray2-pow2 (none: the hop only)")
    a = p.parse_args()
    ray = [
        "--ray",
        "--ray-cpus",
        str(a.ray_cpus),
        "--cpus-per-replica",
        str(a.cpus_per_replica),
        "--ray-object-store-mb",
        "200",
        "--replica-queue",
        "16",
    ]
    configs = {
        "plain": [],
        "ray1": [*ray, "--replicas", "1"],
        "ray2": [*ray, "--replicas", "2"],
        "ray2-pow2": [*ray, "--replicas", "2", "--router", "pow2"],
    }
    chosen = [n for n in a.only.split(",") if n in configs] if a.only else list(configs)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        voices = write_voices(d, ref, a.voices)
        hop_result = hop(a, voices, configs["plain"], configs["ray1"], d) if a.hop else None
        results = [run_config(a, name, voices, configs[name], d) for name in chosen]
    by = {r["config"]: r for r in results}
    summary: dict = {"ray_hop": hop_result}
    if "ray2" in by and "ray2-pow2" in by:
        summary["affinity_vs_pow2"] = {
            "hit_rate_load": [by["ray2"]["voice_cache_hit_rate_load"], by["ray2-pow2"]["voice_cache_hit_rate_load"]],
            "reference_encodes": [
                by["ray2"]["reference_encodes_since_start"],
                by["ray2-pow2"]["reference_encodes_since_start"],
            ],
        }
    print(
        json.dumps(
            {
                "benchmark": "cluster",
                "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "results": results,
                "summary": summary,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
