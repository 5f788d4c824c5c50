"""Time to the first audio of one request (batch 1), by streaming mode, through the Python API and the server.

    python benchmarks/latency.py [--workdir DIR] [--dtype auto|fp32|bf16|int8|t2s=int8,sovits=bf16]
        [--runs 20] [--modes 0,1,2,3] [--tokens 60] [--threads 2] [--no-api] [--no-server] [--port 9893]

Without --gpt/--sovits/--hubert it uses full-size random official-format files (benchmarks/fullsize.py: the
GPT's EOS row is zeroed, so every sentence runs exactly --tokens tokens). One request of two English sentences
(split at punctuation, api_v2's cut5), one at a time, with the api_v2 streaming modes:
  0  no streaming: the whole answer (first audio = the end)
  1  one chunk per sentence (official return_fragment)
  2  token chunks cut at silences, 3  token chunks of a fixed length (min_chunk_length, default 16 tokens)
Per mode, after one warm-up request, --runs requests; p50/p95 of
  first_audio_s   submit -> first audio samples (API) / request sent -> first body bytes after the headers (server)
  total_s         submit -> the whole answer
API only, where the time goes (busy seconds of the whole request, p50): frontend (G2P of both sentences),
prefill (both sentences), decode (SoVITS, all chunks), step_ms (one T2S step); mode 3 also gives the tokens
before the first cut (first_chunk_tokens): first audio ~ frontend of sentence 1 + its prefill +
first_chunk_tokens steps + the decode of that chunk.
API: in-process TTS (num_slots 1), through ``TTS.stream`` (modes 1-3) and ``TTS.synthesize`` (mode 0), in a
child process with the CLI's OpenMP settings. Server: a ``fastsovits serve`` subprocess, POST /tts with
``ref_audio_path`` under --ref-root and ``media_type=raw`` (PCM bytes as they are made). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from fastsovits.runtime import OPENMP_DEFAULTS  # noqa: E402  (imports no torch)

TEXT = (
    "The quick brown fox jumps over the lazy dog near the river bank. "
    "Batching many sentences together keeps every core of the machine busy."
)
MODE_NAMES = {0: "none", 1: "per_sentence", 2: "token_chunks", 3: "fixed_chunks"}


def percentiles(values: list[float]) -> dict:
    s = sorted(values)

    def pick(q: float) -> float:
        return round(s[min(len(s) - 1, int(round(q * (len(s) - 1))))], 3)

    return {"p50": pick(0.5), "p95": pick(0.95), "min": round(s[0], 3), "n": len(s)}


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def api_child(a: argparse.Namespace) -> dict:
    import torch

    from fastsovits import SynthesisParams
    from fastsovits.api import TTS
    from fastsovits.engine.stream_decode import StreamSpec
    from fastsovits.server.schemas import streaming_params

    torch.set_num_threads(a.threads)
    tts = TTS.from_pretrained(
        gpt=a.gpt,
        sovits=a.sovits,
        hubert_dir=a.hubert,
        sv=a.sv,
        device="cpu",
        dtype=a.dtype,
        num_slots=1,
        max_len=a.max_len,
    )
    ref = tts.load_reference(a.ref, a.ref_text, a.ref_lang)
    out = {}
    for mode in [int(m) for m in a.modes.split(",")]:
        params = SynthesisParams(
            top_k=15, seed=1, max_new_tokens=a.tokens, text_split_method="cut5", **streaming_params(mode)
        )
        first, total, stages = [], [], []
        for run in range(a.runs + 1):
            before = tts.stats()
            t0 = time.perf_counter()
            if mode == 0:
                tts.synthesize(TEXT, ref, "en", params)
                t_first = t_end = time.perf_counter() - t0
            else:
                t_first = None
                for chunk in tts.stream(TEXT, ref, "en", params):
                    if t_first is None and len(chunk.samples):
                        t_first = time.perf_counter() - t0
                t_end = time.perf_counter() - t0
            after = tts.stats()
            if run:  # run 0 warms up
                first.append(t_first if t_first is not None else t_end)
                total.append(t_end)
                st = {
                    k: after.stage_seconds[k] - before.stage_seconds[k]
                    for k in ("frontend", "prefill", "t2s", "decode")
                }
                st["step"] = (st["t2s"] - st["prefill"]) / max(1, after.tokens - before.tokens)
                stages.append(st)
        out[MODE_NAMES[mode]] = {
            "first_audio_s": percentiles(first),
            "total_s": percentiles(total),
            # whole-request busy seconds (both sentences), p50 over the runs
            **{f"{k}_s_p50": percentiles([s[k] for s in stages])["p50"] for k in ("frontend", "prefill", "decode")},
            "step_ms_p50": round(1000 * percentiles([s["step"] for s in stages])["p50"], 1),
        }
        if mode == 3:  # tokens before the first chunk is cut: the planner's first cut
            out[MODE_NAMES[mode]]["first_chunk_tokens"] = StreamSpec(params.min_chunk_length, True).first_cut
    tts.close()
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post_timed(port: int, body: dict) -> tuple[float, float]:
    """POST /tts; -> (seconds to the first body bytes, seconds to the end)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    data = json.dumps(body).encode()
    t0 = time.perf_counter()
    conn.request("POST", "/tts", body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"/tts answered {resp.status}: {resp.read()[:300]!r}")
    first = None
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            break
        if first is None:
            first = time.perf_counter() - t0
    end = time.perf_counter() - t0
    conn.close()
    return (first if first is not None else end), end


def server_run(a: argparse.Namespace, env: dict) -> dict:
    ref_root = Path(tempfile.mkdtemp(prefix="latency-ref-"))
    shutil.copy(a.ref, ref_root / "ref.wav")
    port = a.port or _free_port()
    cmd = [
        sys.executable,
        "-m",
        "fastsovits",
        "serve",
        "--gpt",
        a.gpt,
        "--sovits",
        a.sovits,
        "--hubert",
        a.hubert,
        "--device",
        "cpu",
        "--dtype",
        a.dtype,
        "--num-slots",
        "1",
        "--max-len",
        str(a.max_len),
        "--threads",
        str(a.threads),
        "--ref-root",
        str(ref_root),
        "--port",
        str(port),
    ]
    cmd += ["--sv", a.sv] if a.sv else []
    log = open(ref_root / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    out: dict = {}
    try:
        deadline = time.monotonic() + 900
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(ref_root / 'server.log').read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready after 900 s")
            time.sleep(1.0)
        for mode in [int(m) for m in a.modes.split(",")]:
            body = {
                "text": TEXT,
                "text_lang": "en",
                "ref_audio_path": "ref.wav",
                "prompt_text": a.ref_text,
                "prompt_lang": a.ref_lang,
                "top_k": 15,
                "seed": 1,
                "max_new_tokens": a.tokens,
                "text_split_method": "cut5",
                "media_type": "raw" if mode else "wav",
                "streaming_mode": mode,
            }
            firsts, totals = [], []
            for run in range(a.runs + 1):
                f, t = _post_timed(port, body)
                if run:
                    firsts.append(f)
                    totals.append(t)
            out[MODE_NAMES[mode]] = {"first_audio_s": percentiles(firsts), "total_s": percentiles(totals)}
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(ref_root, ignore_errors=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpt"), p.add_argument("--sovits"), p.add_argument("--hubert"), p.add_argument("--sv")
    p.add_argument("--ref"), p.add_argument("--ref-text"), p.add_argument("--ref-lang", default="en")
    p.add_argument("--workdir", help="where the random full-size files are written (kept; default: a temp dir)")
    p.add_argument(
        "--dtype",
        default="auto",
        help="as TTS.from_pretrained / --dtype: auto, fp32, bf16, int8, or per stage, e.g. t2s=int8,sovits=bf16",
    )
    p.add_argument("--runs", type=int, default=20, help="timed requests per mode (after one warm-up)")
    p.add_argument("--modes", default="0,1,2,3", help="api_v2 streaming modes to measure")
    p.add_argument("--tokens", type=int, default=60, help="semantic tokens per sentence (exactly, random GPT)")
    p.add_argument("--max-len", type=int, default=512, help="KV-cache positions of the one slot")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--port", type=int, help="server port (default: a free one)")
    p.add_argument("--no-api", action="store_true", help="skip the in-process measurement")
    p.add_argument("--no-server", action="store_true", help="skip the server measurement")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print("RESULT " + json.dumps(api_child(a)))
        return 0
    tmp = None
    if not (a.gpt and a.sovits and a.hubert):
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from fullsize import write_models

        if a.workdir is None:
            tmp = tempfile.TemporaryDirectory()
        files = write_models(a.workdir or tmp.name)
        a.gpt, a.sovits, a.hubert, a.sv = files.gpt, files.sovits, files.hubert, files.sv
        a.ref, a.ref_text = a.ref or files.ref, a.ref_text or files.ref_text
    if not (a.ref and a.ref_text):
        p.error("with your own models pass --ref and --ref-text")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    for name, value in OPENMP_DEFAULTS.items():  # as the CLI sets them
        env.setdefault(name, value)
    doc: dict = {
        "benchmark": "latency",
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": a.threads,
        "dtype": a.dtype,
        "tokens_per_sentence": a.tokens,
        "sentences": 2,
        "runs": a.runs,
    }
    if not a.no_api:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--gpt",
            a.gpt,
            "--sovits",
            a.sovits,
            "--hubert",
            a.hubert,
            "--ref",
            a.ref,
            "--ref-text",
            a.ref_text,
            "--ref-lang",
            a.ref_lang,
            "--dtype",
            a.dtype,
            "--runs",
            str(a.runs),
            "--modes",
            a.modes,
            "--tokens",
            str(a.tokens),
            "--max-len",
            str(a.max_len),
            "--threads",
            str(a.threads),
        ] + (["--sv", a.sv] if a.sv else [])
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
        doc["api"] = json.loads(line[-1][7:]) if line else {"error": res.stderr.strip().splitlines()[-3:]}
    if not a.no_server:
        try:
            doc["server"] = server_run(a, env)
        except RuntimeError as e:
            doc["server"] = {"error": str(e)[-1500:]}
    print(json.dumps(doc, indent=2))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
