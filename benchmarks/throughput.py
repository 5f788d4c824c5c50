"""End-to-end throughput of the batching engine by batch size. Prints figures (nothing asserted).

    python benchmarks/throughput.py [--gpt FILE --sovits FILE --hubert DIR] [--sv FILE] [--bert DIR]
        [--ref WAV --ref-text TEXT --ref-lang L] [--sentences FILE] [--lang en]
        [--batch-sizes 1,4,8,16,32] [--tokens 100] [--json]
        [--version v3|v4 [--sample-steps 32] [--vocoder FILE_OR_DIR]]

Without --gpt/--sovits/--hubert it writes full-size random official-format files (see
benchmarks/fullsize.py: a v2 GPT whose EOS row is zeroed, so every sentence runs exactly
--tokens tokens; a v2ProPlus SoVITS; full-size HuBERT and speaker model) into --workdir.
With --version v3 or v4 the SoVITS is the full-size random v3/v4 model with its vocoder (v3: BigVGAN
24 kHz, v4: the 48 kHz generator; ``fullsize.py --v3v4``), and the decode stage is split further into
encoder features / CFM / vocoder (``decode.encode``, ``decode.cfm``, ``decode.vocoder``).

Each batch size runs in a fresh process (so peak RSS is its own): the TTS is built with
``num_slots = batch size``, the reference is loaded once, then max(batch size, --min-sentences)
sentences (the lines of --sentences, cycled) are submitted at once as separate requests, each
generating at most --tokens semantic tokens. Per batch size:
  tokens_per_s     semantic tokens per second of T2S-stage time (engine thread, prefill + steps)
  audio_s_per_s    audio seconds per wall second, end to end (frontend + T2S + decode)
  rtf              wall seconds per audio second (1 / audio_s_per_s)
  stage_seconds    t2s (its prefill part separately) / decode / frontend split; reference load separately
  peak_rss_mb      VmHWM of the process
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from fastsovits.runtime import OPENMP_DEFAULTS  # noqa: E402  (imports no torch)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def child(a: argparse.Namespace) -> dict:
    import torch

    from fastsovits import SynthesisParams
    from fastsovits.api import TTS

    torch.set_num_threads(a.threads)
    b = a.child
    t0 = time.perf_counter()
    tts = TTS.from_pretrained(
        gpt=a.gpt,
        sovits=a.sovits,
        version=a.version,
        vocoder=a.vocoder,
        hubert_dir=a.hubert,
        bert_dir=a.bert,
        sv=a.sv,
        device=a.device,
        num_slots=b,
        max_len=a.max_len,
        dtype=a.dtype,
        t2s_threads=a.t2s_threads,
        decode_threads=a.decode_threads,
        cuda_graphs={"auto": None, "on": True, "off": False}[a.cuda_graphs],
    )
    load_s = time.perf_counter() - t0
    ref = tts.load_reference(a.ref, a.ref_text, a.ref_lang)
    lines = [ln.strip() for ln in Path(a.sentences).read_text(encoding="utf-8").splitlines() if ln.strip()]
    n = max(b, a.min_sentences)
    texts = [lines[i % len(lines)] for i in range(n)]
    params = [
        SynthesisParams(
            top_k=15,
            seed=i,
            max_new_tokens=a.tokens,
            text_split_method="cut0",
            fragment_interval=0.0,
            sample_steps=a.sample_steps,
        )
        for i in range(n)
    ]
    tts.synthesize_batch([(texts[0], ref, a.lang, params[0].with_(max_new_tokens=12))])  # warm-up
    before = tts.stats()
    t0 = time.perf_counter()
    audios = tts.synthesize_batch([(t, ref, a.lang, p) for t, p in zip(texts, params)])
    wall = time.perf_counter() - t0
    after = tts.stats()
    tokens = after.tokens - before.tokens
    stage = {k: after.stage_seconds[k] - before.stage_seconds.get(k, 0.0) for k in after.stage_seconds}
    t2s_s, dec_s, pre_s, fe_s = stage["t2s"], stage["decode"], stage["prefill"], stage["frontend"]
    step_count = after.steps - before.steps
    step_rows = sum(k * v for k, v in after.steps_by_rows.items()) - sum(k * v for k, v in before.steps_by_rows.items())
    audio_s = sum(x.duration for x in audios)
    tts.close()
    return {
        "batch_size": b,
        "sentences": n,
        "tokens": tokens,
        "wall_s": round(wall, 3),
        "tokens_per_s": round(tokens / t2s_s, 1) if t2s_s else None,
        "tokens_per_wall_s": round(tokens / wall, 1),
        "audio_s": round(audio_s, 2),
        "audio_s_per_s": round(audio_s / wall, 3),
        "rtf": round(wall / audio_s, 3) if audio_s else None,
        "mean_rows_per_step": round(step_rows / step_count, 2) if step_count else 0,
        "cuda_graphs": after.cuda_graphs,
        "stage_seconds": {
            "t2s": round(t2s_s, 2),
            "prefill": round(pre_s, 2),
            "decode": round(dec_s, 2),
            "frontend": round(fe_s, 2),
            **{k: round(v, 2) for k, v in stage.items() if k.startswith("decode.")},
            "reference_load": round(after.stage_seconds["reference"], 2),
            "model_load": round(load_s, 2),
        },
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpt"), p.add_argument("--sovits"), p.add_argument("--hubert")
    p.add_argument("--sv", help="ERes2NetV2 checkpoint (v2Pro/v2ProPlus models)")
    p.add_argument("--bert", help="chinese-roberta-wwm-ext-large folder (Chinese text)")
    p.add_argument("--ref"), p.add_argument("--ref-text"), p.add_argument("--ref-lang", default="en")
    p.add_argument("--sentences", help="a text file, one sentence per line")
    p.add_argument("--lang", default="en", help="language of the sentences")
    p.add_argument("--batch-sizes", default="1,4,8,16,32")
    p.add_argument("--tokens", type=int, default=100, help="semantic tokens per sentence (at most)")
    p.add_argument("--min-sentences", type=int, default=8, help="sentences per run at least")
    p.add_argument("--max-len", type=int, default=512, help="KV-cache positions per row")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--dtype",
        default="auto",
        help="auto (fp32 on CPU, fp16 on CUDA), fp32, bf16, fp16, "
        "int8 (CPU: weight-only int8 T2S), or per stage: t2s=int8,sovits=bf16",
    )
    p.add_argument(
        "--cuda-graphs",
        choices=("auto", "on", "off"),
        default="auto",
        help="T2S step from captured CUDA graphs (auto: on for CUDA)",
    )
    p.add_argument("--t2s-threads", type=int, help="intra-op threads of the T2S (engine) thread")
    p.add_argument("--decode-threads", type=int, help="intra-op threads of the decode thread")
    p.add_argument("--workdir", help="where the random full-size files are written (kept; default: a temp dir)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--version", choices=["v3", "v4"], help="a v3/v4 SoVITS (default: the v1-v2ProPlus file's own)")
    p.add_argument("--vocoder", help="v3/v4 with --sovits: v4 vocoder.pth or the v3 BigVGAN folder")
    p.add_argument("--sample-steps", type=int, default=32, help="v3/v4: CFM steps (official 4, 8, 16, 32)")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child is not None:
        print("RESULT " + json.dumps(child(a)))
        return 0
    tmp = None
    if not (a.gpt and a.sovits and a.hubert):
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from fullsize import write_models

        if a.workdir is None:
            tmp = tempfile.TemporaryDirectory()
        files = write_models(a.workdir or tmp.name)
        a.gpt, a.sovits, a.hubert, a.sv = files.gpt, files.sovits, files.hubert, files.sv
        if a.version is not None:
            from fullsize import write_v3v4_models

            v34 = write_v3v4_models(a.workdir or tmp.name)
            a.sovits = v34.sovits_v3 if a.version == "v3" else v34.sovits_v4
            a.vocoder = v34.bigvgan_v3 if a.version == "v3" else v34.vocoder_v4
            a.sv = None
        a.ref, a.ref_text, a.ref_lang = a.ref or files.ref, a.ref_text or files.ref_text, a.ref_lang
        a.sentences = a.sentences or files.sentences
    if not (a.ref and a.ref_text and a.sentences):
        p.error("with your own models pass --ref, --ref-text and --sentences")
    results = []
    for b in [int(x) for x in a.batch_sizes.split(",")]:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            str(b),
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
            "--sentences",
            a.sentences,
            "--lang",
            a.lang,
            "--tokens",
            str(a.tokens),
            "--min-sentences",
            str(a.min_sentences),
            "--max-len",
            str(a.max_len),
            "--threads",
            str(a.threads),
            "--device",
            a.device,
            "--dtype",
            a.dtype,
        ]
        cmd += ["--cuda-graphs", a.cuda_graphs]
        cmd += ["--t2s-threads", str(a.t2s_threads)] if a.t2s_threads else []
        cmd += ["--decode-threads", str(a.decode_threads)] if a.decode_threads else []
        cmd += ["--sv", a.sv] if a.sv else []
        cmd += ["--version", a.version, "--vocoder", a.vocoder] if a.version else []
        cmd += ["--sample-steps", str(a.sample_steps)]
        cmd += ["--bert", a.bert] if a.bert else []
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
        for name, value in OPENMP_DEFAULTS.items():  # as the CLI sets them
            env.setdefault(name, value)
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode != 0 or not line:
            results.append({"batch_size": b, "error": out.stderr.strip().splitlines()[-1:] or ["no output"]})
        else:
            results.append(json.loads(line[-1][len("RESULT ") :]))
        if not a.json:
            r = results[-1]
            print(
                f"batch {b:>3}: "
                + (
                    f"T2S {r['tokens_per_s']} tok/s, {r['audio_s_per_s']} audio-s/s, RTF {r['rtf']}, "
                    f"split {r['stage_seconds']}, peak {r['peak_rss_mb']} MB"
                    if "error" not in r
                    else f"error {r['error']}"
                ),
                flush=True,
            )
    doc = {
        "benchmark": "throughput",
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": a.threads,
        "device": a.device,
        "tokens_per_sentence": a.tokens,
        "version": a.version or "file's own",
        "sample_steps": a.sample_steps if a.version else None,
        "models": {"gpt": a.gpt, "sovits": a.sovits, "hubert": a.hubert, "sv": a.sv, "vocoder": a.vocoder},
        "results": results,
    }
    ok = {r["batch_size"]: r for r in results if "error" not in r}
    if 1 in ok and len(ok) > 1:
        doc["t2s_speedup_vs_batch_1"] = {b: round(r["tokens_per_s"] / ok[1]["tokens_per_s"], 2) for b, r in ok.items()}
        doc["end_to_end_speedup_vs_batch_1"] = {
            b: round(r["audio_s_per_s"] / ok[1]["audio_s_per_s"], 2) for b, r in ok.items()
        }
    if a.json:
        print(json.dumps(doc, indent=2))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
