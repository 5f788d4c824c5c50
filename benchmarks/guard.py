"""The sentence guard's detection rate, false alarms, fixes and cost on tiny models made to fail.

    python benchmarks/guard.py [--sentences 60] [--fail-share 0.3] [--json]

A fixed set of English sentences (each of a distinct phone count) is synthesised with the tiny
official-format test models, whose GPT is steered row by row (tests/misbehave.py): a known share of
the sentences is made to fail (too short, looping or running away, in turn), the others end normally
at about the voice's own tokens per phone. Three runs:
  detection   guard on, no retries: share of the failing sentences flagged (by reason), and share of
              the normal sentences flagged (false alarms)
  fixes       guard on with retries, failures that depend on the sampled first token (a new seed
              usually behaves): share of failing sentences whose kept attempt passes
  cost        wall time of the normal sentences with the guard on vs off (nothing fails; best of two
              alternated runs each)
Prints JSON; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastsovits.api import TTS  # noqa: E402
from fastsovits.checkpoints.gpt import load_gpt  # noqa: E402
from fastsovits.checkpoints.sovits import load_sovits  # noqa: E402
from fastsovits.engine.guard import voice_rate  # noqa: E402
from fastsovits.params import SynthesisParams  # noqa: E402
from fastsovits.text import phonemize  # noqa: E402
from tests.misbehave import Misbehave, Mode, first_token_plan  # noqa: E402
from tests.reference import reference_dir  # noqa: E402

WORDS = (
    "the quick brown fox jumps over a lazy dog while seven small birds sing near an old river "
    "under bright morning light and children walk slowly to school talking about music games "
    "books rain summer trains cities mountains"
).split()
FAILS = (Mode.SHORT, Mode.LOOP, Mode.RUNAWAY)


def sentence_set(n: int, prompt_phones: int) -> list[tuple[str, int]]:
    """n sentences of distinct phone counts -> (text, text_len the engine's cache row will hold)."""
    out, seen, k = [], set(), 0
    while len(out) < n:
        words = [WORDS[(k * 7 + j * 3) % len(WORDS)] for j in range(3 + k % 14)]
        text = " ".join(words).capitalize() + "."
        text_len = prompt_phones + len(phonemize(text, "en", "v2").phone_ids)
        if text_len not in seen:
            seen.add(text_len)
            out.append((text, text_len))
        k += 1
    return out


def run(tts, voice, texts, params) -> tuple[list, float]:
    t0 = time.perf_counter()
    handles = [tts.submit(t, voice, "en", params.with_(seed=1000 + i)) for i, t in enumerate(texts)]
    results = [h.result(timeout=3600) for h in handles]
    return [r.sentences[0] for r in results], time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", type=int, default=60)
    p.add_argument("--fail-share", type=float, default=0.3, help="share of sentences made to fail")
    p.add_argument("--slots", type=int, default=8)
    p.add_argument("--json", action="store_true", help="one JSON line only")
    a = p.parse_args()
    ref = reference_dir()
    t2s, _, _ = load_gpt(ref / "tiny/tiny_s1_v2.ckpt")
    synth, _, _ = load_sovits(ref / "tiny/tiny_s2_v2.pth")
    tts = TTS(t2s, synth, version="v2", hubert_dir=ref / "tiny/tiny_hubert", num_slots=a.slots, max_len=1400)
    wav = np.load(ref / "io/audio_inputs.npz")["wav32k_b"]
    voice = tts.load_reference((wav, 32000), "This is the reference.", "en")
    n_prompt, n_tok = int(voice.prompt_phones.numel()), int(voice.prompt_semantic.numel())
    sents = sentence_set(a.sentences, n_prompt)
    n_fail = round(a.fail_share * len(sents))
    truth = {tl: (FAILS[i % 3] if i < n_fail else Mode.NORMAL) for i, (_, tl) in enumerate(sents)}
    wrapper = Misbehave(tts.t2s, n_prompt, n_tok, voice_rate(n_tok, n_prompt), lambda tl, first: truth[tl])
    texts = [t for t, _ in sents]
    base = SynthesisParams(top_k=15, noise_scale=0.0, text_split_method="cut0", fragment_interval=0.0)

    got, _ = run(tts, voice, texts, base.with_(max_retries=0))
    flagged = {mode.value: 0 for mode in FAILS}
    false_alarms = 0
    for (_, tl), s in zip(sents, got):
        if truth[tl] is Mode.NORMAL:
            false_alarms += s.guard is not None
        elif s.guard is not None:
            flagged[truth[tl].value] += 1
    per_mode = {m.value: sum(1 for _, tl in sents if truth[tl] is m) for m in FAILS}

    failing = [(t, tl) for t, tl in sents if truth[tl] is not Mode.NORMAL]
    wrapper.plan = first_token_plan(Mode.SHORT, 0.5, {tl for _, tl in failing})
    fixed_runs, _ = run(tts, voice, [t for t, _ in failing], base.with_(max_retries=2))
    normal = [t for t, tl in sents if truth[tl] is Mode.NORMAL]
    wrapper.plan = lambda tl, first: Mode.NORMAL
    on_runs, off_runs, retried = [], [], 0
    for _ in range(2):  # alternated, so machine drift hits both
        got_off, t_off = run(tts, voice, normal, base.with_(guard=False))
        got_on, t_on = run(tts, voice, normal, base)
        off_runs.append(t_off)
        on_runs.append(t_on)
        retried += sum(len(s.retries) for s in got_on)
    on_s, off_s = min(on_runs), min(off_runs)
    tts.close()
    out = {
        "sentences": len(sents),
        "failing": len(failing),
        "normal": len(normal),
        "detection": {
            "detected": sum(flagged.values()) / max(1, len(failing)),
            "by_reason": {m: flagged[m] / max(1, per_mode[m]) for m in flagged},
            "false_alarms": false_alarms / max(1, len(normal)),
        },
        "fixes": {
            "first_attempts_failing_share": 0.5,
            "kept_attempt_passes": sum(s.guard is None for s in fixed_runs) / max(1, len(fixed_runs)),
            "mean_attempts": float(np.mean([s.attempts for s in fixed_runs])),
        },
        "cost": {
            "guard_on_s": round(on_s, 2),
            "guard_off_s": round(off_s, 2),
            "retries_on_normal": retried,
            "overhead": round(on_s / off_s - 1, 3) if off_s else None,
        },
    }
    print(json.dumps(out) if a.json else json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
