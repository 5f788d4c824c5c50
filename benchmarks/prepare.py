"""Throughput of ``fastsovits prepare`` (utterances/s) on the espeak-ng corpus with the tiny models.

    python benchmarks/prepare.py [--items 32] [--threads 2] [--workdir DIR]

Builds the synthetic corpus (tests/train/corpus.py, needs espeak-ng), then times one full run
(models loaded beforehand, so model loading is not counted) and one resumed run (everything
already done). Prints JSON: seconds and utterances/s per run, audio seconds per wall second.
With the tiny random-weight HuBERT/SoVITS this measures our pipeline overhead (decode, resample,
G2P, I/O), not full-size model cost. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=32, help="utterances (split over two voices)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", help="keep files here (default: a temporary folder)")
    a = ap.parse_args()

    import soundfile as sf
    import torch

    from fastsovits.checkpoints.sovits import load_sovits
    from fastsovits.models.ssl import SSLExtractor
    from fastsovits.text.frontend import clean_run
    from fastsovits.train.prepare import Models, PrepareConfig, prepare
    from tests.train.corpus import build_corpus

    torch.set_num_threads(a.threads)
    tiny = ROOT / "tests/fixtures/reference/tiny"
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="fastsovits-prepare-bench-"))
    corpus = build_corpus(work / "corpus", n_per_voice=max(1, a.items // 2))
    audio_s = sum(sf.info(str(it.wav_path)).duration for it in corpus.items)
    synth, _, _ = load_sovits(tiny / "tiny_s2_v2.pth")
    models = Models(hubert=SSLExtractor(tiny / "tiny_hubert"), synthesizer=synth)
    for it in corpus.items[:4]:  # load the lazy English G2P parts (POS tagger) before timing
        clean_run(it.text, "en")
    cfg = PrepareConfig(list_path=corpus.list_path, exp_dir=work / "exp", progress=False, redo=True)
    out = {
        "items": len(corpus.items),
        "audio_seconds": round(audio_s, 2),
        "threads": a.threads,
        "models": "tiny (tests/fixtures/reference/tiny)",
    }
    for label, c in (("full", cfg), ("resumed", PrepareConfig(**{**cfg.__dict__, "redo": False}))):
        t0 = time.perf_counter()
        report = prepare(c, models)
        dt = time.perf_counter() - t0
        out[label] = {
            "seconds": round(dt, 3),
            "utterances_per_s": round(report.ok / dt, 2),
            "audio_s_per_s": round(audio_s / dt, 2),
            "ok": report.ok,
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
