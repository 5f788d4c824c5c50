"""What the server's input bounds save: each refusal's time and peak-RSS growth, next to the work refused (prints JSON).

    PYTHONPATH=. python benchmarks/refusals.py [--hours 1] [--aux 2000]

Starts ``fastsovits serve`` on the tiny test models (as ``tests/server``), then sends requests just over
each bound: a FLAC of silence lasting ``--hours`` (a few hundred KB) as a ``/tts`` reference, through
``/set_refer_audio`` and as a ``/v1/voices`` upload; ``--aux`` auxiliary clips in one ``/tts``; a JSON body
nested 5000 deep. The server's peak RSS is reset before each request (``/proc/<pid>/clear_refs``) and read
after it (``VmHWM``). The work refused is measured in this process: decoding the same FLAC in full.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from tests.server.conftest import REF_TEXT, Server, reference_clip, wav_bytes


def peak_mb(pid: int | str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def kind(r: httpx.Response) -> str:
    """The error type, ``untyped`` for an error without one, ``accepted`` for audio."""
    if r.headers.get("content-type") != "application/json":
        return "accepted"
    return r.json().get("error", {}).get("type", "untyped")


def measured(pid: int, call) -> dict:
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    start, t0 = peak_mb(pid), time.perf_counter()
    r = call()
    return {
        "status": r.status_code,
        "type": kind(r),
        "seconds": round(time.perf_counter() - t0, 4),
        "peak_rss_growth_mb": round(peak_mb(pid) - start, 1),
    }


def silence_flac(seconds: int, rate: int = 48000) -> bytes:
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", rate, 1, format="FLAC", subtype="PCM_16") as f:
        for _ in range(seconds // 60):
            f.write(np.zeros(rate * 60, np.float32))
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=int, default=1, help="length of the silent FLAC reference")
    ap.add_argument("--aux", type=int, default=2000, help="auxiliary clips named in one /tts request")
    a = ap.parse_args()
    flac = silence_flac(a.hours * 3600)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "refs").mkdir()
        (d / "refs" / "ref.wav").write_bytes(wav_bytes(reference_clip(), 32000))
        (d / "refs" / "long.flac").write_bytes(flac)
        (d / "voices.yaml").write_text(f"voices:\n  ref: {{audio: refs/ref.wav, text: '{REF_TEXT}', language: en}}\n")
        srv = Server(d, ["--voices", str(d / "voices.yaml"), "--ref-root", str(d / "refs")])
        try:
            srv.wait_ready()
            pid = srv.proc.pid
            with httpx.Client(base_url=srv.url, timeout=300) as c:
                tts = {"text": "Hi.", "text_lang": "en"}
                deep = b'{"model": "tts-1", "input": "Hi.", "voice": ' + b"[" * 5000 + b"]" * 5000 + b"}"
                refusals = {
                    "tts_long_reference": measured(
                        pid, lambda: c.get("/tts", params={**tts, "ref_audio_path": "long.flac"})
                    ),
                    "set_refer_audio_long": measured(
                        pid, lambda: c.get("/set_refer_audio", params={"refer_audio_path": "long.flac"})
                    ),
                    "voice_upload_long": measured(
                        pid,
                        lambda: c.post(
                            "/v1/voices",
                            files={"audio": ("a.flac", flac, "audio/flac")},
                            data={"name": "long", "text": REF_TEXT, "language": "en"},
                        ),
                    ),
                    f"tts_{a.aux}_aux_clips": measured(
                        pid,
                        lambda: c.post(
                            "/tts",
                            json={**tts, "ref_audio_path": "ref.wav", "aux_ref_audio_paths": ["ref.wav"] * a.aux},
                        ),
                    ),
                    "json_nested_5000": measured(
                        pid,
                        lambda: c.post("/v1/audio/speech", content=deep, headers={"content-type": "application/json"}),
                    ),
                }
        finally:
            srv.stop()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    samples, rate = sf.read(io.BytesIO(flac), dtype="float32")
    refused_work = {
        "full_decode_seconds": round(time.perf_counter() - t0, 3),
        "decoded_mb": round(samples.nbytes / 2**20, 1),
        "peak_rss_growth_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before, 1),
    }
    print(
        json.dumps(
            {
                "machine": platform.processor() or platform.machine(),
                "flac_bytes": len(flac),
                "flac_seconds": a.hours * 3600,
                "refusals": refusals,
                "work_refused": refused_work,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
