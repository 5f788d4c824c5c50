"""Time and RSS of refused voice uploads (each just over one bound) next to an accepted one.

    PYTHONPATH=. python benchmarks/voice_uploads.py [--out voice_uploads.json]

An in-process server (tiny random models from the reference fixtures, a temporary voice store)
receives, for each bound of a new voice, an upload just over it, then one accepted upload; for
the compressed hour of silence it also decodes that clip directly, the work the header check
avoids. A prompt too long for the cache is known only once the voice is encoded, so that refusal
costs one encoding. Prints JSON: seconds per request and the growth of this process's peak RSS (VmHWM, MB)
during it. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import soundfile as sf
from fastapi.testclient import TestClient

from fastsovits.server.app import create_app
from fastsovits.server.config import ModelSpec, ServerConfig
from fastsovits.server.models import ModelRegistry
from fastsovits.voices.validate import VoiceLimits
from tests.server.conftest import REF, REF_TEXT, reference_clip, wav_bytes
from tests.voices.conftest import audio_bytes


def peak_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(fn) -> dict:
    base, t0 = peak_mb(), time.perf_counter()
    out = fn()
    return {
        "seconds": round(time.perf_counter() - t0, 4),
        "peak_rss_growth_mb": round(peak_mb() - base, 1),
        **({"status": out.status_code} if hasattr(out, "status_code") else {}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    lim = VoiceLimits()
    ref = wav_bytes(reference_clip(), 32000)
    hour = audio_bytes(3600, 16000, "FLAC", silent=True)
    one = audio_bytes(1.0, 16000, "FLAC")

    def up(c, name, clip=ref, aux=(), text=REF_TEXT):
        files = [("audio", ("r.wav", clip))] + [("aux", (f"a{i}", a)) for i, a in enumerate(aux)]
        return lambda: c.post("/v1/audio/voices", files=files, data={"name": name, "text": text, "language": "en"})

    spec = ModelSpec(
        "default",
        gpt=str(REF / "tiny/tiny_s1_v2.ckpt"),
        sovits=str(REF / "tiny/tiny_s2_v2.pth"),
        hubert_dir=str(REF / "tiny/tiny_hubert"),
    )
    with tempfile.TemporaryDirectory() as d:
        cfg = ServerConfig(device="cpu", num_slots=2, max_len=256, max_new_tokens=30, data_dir=Path(d))
        with TestClient(create_app(ModelRegistry(spec, cfg), cfg)) as c:
            up(c, "warm-up")()  # the first encoding also loads the G2P tables: not part of any figure
            cases = {
                "aux_count_over": up(c, "a", aux=(one,) * (lim.max_aux_clips + 1)),
                "aux_clip_hour_of_flac_silence": up(c, "b", aux=(hour,)),
                "aux_total_over": up(c, "c", aux=(audio_bytes(lim.max_aux_seconds / 4 + 0.05, 16000, "FLAC"),) * 4),
                "reference_over_10s": up(c, "d", clip=audio_bytes(10.05)),
                "text_over": up(c, "e", text="x" * (lim.max_text_chars + 1)),
                "prompt_over_cache": up(c, "f", text="word " * 99),
                "accepted": up(c, "g"),
            }
            result = {name: measure(fn) for name, fn in cases.items()}
    result["decoding_the_hour_directly"] = measure(lambda: sf.read(io.BytesIO(hour), dtype="float32"))
    result["hour_flac_bytes"] = len(hour)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
