"""Engine throughput vs one-request-at-a-time, and bf16 vs fp32 on CPU. Prints JSON (nothing asserted).

    python benchmarks/throughput.py [--full] [--requests 8] [--sentences 2] [--tokens 60] [--slots 8]

Random weights (``--full``: full-size v2 models, the 24-layer d512 T2S and the official SoVITS v2;
default: the tiny fixture models). Each request has ``--sentences`` sentences of random phones and
generates exactly ``--tokens`` semantic tokens per sentence (EOS disabled by a fixed token budget), so
both modes do the same work. "sequential" submits the next request when the previous one finished
(the official server's behaviour); "engine" submits all at once.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from fastsovits.engine.engine import Engine, SentenceJob, SynthesisJob
from fastsovits.engine.sampling import RowSampling, T2SRow


def build(full: bool):
    from fastsovits.models.sovits import SovitsConfig, Synthesizer
    from fastsovits.models.t2s import T2SConfig, Text2Semantic

    torch.manual_seed(0)
    if full:
        t2s = Text2Semantic(T2SConfig(phoneme_vocab_size=732))
        synth = Synthesizer(SovitsConfig(version="v2"), with_posterior=False)
    else:
        from fastsovits.checkpoints.gpt import load_gpt
        from fastsovits.checkpoints.sovits import load_sovits
        from tests.reference import reference_dir

        t2s = load_gpt(reference_dir() / "tiny/tiny_s1_v2.ckpt")[0]
        synth = load_sovits(reference_dir() / "tiny/tiny_s2_v2.pth")[0]
    return t2s.eval(), synth.eval()


def jobs(n_req: int, n_sent: int, tokens: int, ge, vocab: int) -> list[SynthesisJob]:
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n_req):
        sentences = []
        for _ in range(n_sent):
            n = int(torch.randint(20, 60, (1,), generator=g))
            phones = torch.randint(0, vocab, (n,), generator=g)
            row = T2SRow(phones, torch.randn(1024, n, generator=g), torch.randint(0, 1024, (75,), generator=g))
            sentences.append(SentenceJob(row, phones[:n // 2], ge, RowSampling(top_k=15, seed=5), tokens, 0.5))
        out.append(SynthesisJob(sentences))
    return out


def run(t2s, synth, all_jobs, slots: int, sequential: bool) -> dict:
    with Engine(t2s, synth, num_slots=slots, max_len=400) as engine:
        t0 = time.perf_counter()
        if sequential:
            audios = [engine.submit(j).result() for j in all_jobs]
        else:
            handles = [engine.submit(j) for j in all_jobs]
            audios = [h.result() for h in handles]
        dt = time.perf_counter() - t0
    sr = synth.config.sampling_rate
    audio_s = sum(len(a) for req in audios for a in req) / sr
    tokens = sum(engine.batch_sizes)  # one token per running row per step
    t2s_s, dec_s = engine.stage_seconds["t2s"], engine.stage_seconds["decode"]
    return {"seconds": round(dt, 3), "semantic_tokens_per_s": round(tokens / dt, 1),
            "t2s_stage_tokens_per_s": round(tokens / t2s_s, 1) if t2s_s else None,
            "stage_seconds": {"t2s": round(t2s_s, 3), "decode": round(dec_s, 3)},
            "rtf": round(dt / audio_s, 3) if audio_s else None,
            "audio_seconds_per_s": round(audio_s / dt, 3), "mean_rows_per_step": round(tokens / len(engine.batch_sizes), 2)}


@torch.no_grad()
def bf16_check(t2s, synth, ge) -> dict:
    from fastsovits.engine.kv_cache import StaticKVCache
    from fastsovits.engine.sampling import pad_rows

    g = torch.Generator().manual_seed(2)
    rows = [T2SRow(torch.randint(0, 700, (40,), generator=g), torch.randn(1024, 40, generator=g),
                   torch.randint(0, 1024, (75,), generator=g)) for _ in range(8)]
    out = {}
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        m = t2s.to(dtype)
        phones, pl, bert, prompts, prl = pad_rows(rows, 1024, "cpu")
        cache = StaticKVCache.for_model(m, 8, 400)
        logits, pos = m.prefill(phones, pl, bert.to(dtype), prompts, prl, cache)
        tok = logits.argmax(-1).view(-1, 1)
        t0 = time.perf_counter()
        for _ in range(20):
            step_logits = m.decode_step(tok, pos, cache)
            pos = pos + 1
        results[str(dtype)] = (time.perf_counter() - t0) / 20, logits.float()
        codes = torch.randint(0, 1024, (2, 1, 100), generator=torch.Generator().manual_seed(3))
        s = synth.to(dtype)
        t0 = time.perf_counter()
        wav = s.decode_with_style(codes, torch.randint(1, 700, (2, 30)), ge.to(dtype).expand(2, -1, -1), 0.0)
        results[str(dtype) + "_sovits"] = time.perf_counter() - t0, wav.float()
        del step_logits
    t2s.float(), synth.float()
    f32, b16 = results["torch.float32"], results["torch.bfloat16"]
    sf32, sb16 = results["torch.float32_sovits"], results["torch.bfloat16_sovits"]
    out["t2s_decode_step_ms"] = {"fp32": round(f32[0] * 1000, 2), "bf16": round(b16[0] * 1000, 2)}
    out["t2s_prefill_logits_max_abs_diff"] = round(float((f32[1] - b16[1]).abs().max()), 4)
    out["t2s_prefill_argmax_agree"] = float((f32[1].argmax(-1) == b16[1].argmax(-1)).float().mean())
    out["sovits_decode_s"] = {"fp32": round(sf32[0], 3), "bf16": round(sb16[0], 3)}
    out["sovits_wav_max_abs_diff"] = round(float((sf32[1] - sb16[1]).abs().max()), 4)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="full-size random v2 models")
    p.add_argument("--requests", type=int, default=8)
    p.add_argument("--sentences", type=int, default=2)
    p.add_argument("--tokens", type=int, default=60)
    p.add_argument("--slots", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    t2s, synth = build(a.full)
    with torch.no_grad():
        ge = synth.style([torch.rand(1, synth.config.spec_channels, 100)])
    work = jobs(a.requests, a.sentences, a.tokens, ge, t2s.config.phoneme_vocab_size)
    result = {"benchmark": "throughput", "models": "full-size random v2" if a.full else "tiny fixture models",
              "machine": platform.processor() or platform.machine(), "threads": a.threads,
              "requests": a.requests, "sentences_per_request": a.sentences, "tokens_per_sentence": a.tokens,
              "sequential": run(t2s, synth, work, a.slots, sequential=True),
              "engine": run(t2s, synth, work, a.slots, sequential=False)}
    result["speedup"] = round(result["sequential"]["seconds"] / result["engine"]["seconds"], 2)
    result["bf16_vs_fp32"] = bf16_check(t2s, synth, ge)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
