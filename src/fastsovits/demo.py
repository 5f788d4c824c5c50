"""What ``make demo`` runs: the text frontend on five languages, then the batching engine.

There are no trained weights in the repository yet, so the synthesis part loads the tiny
random-weight official-format models of the test fixtures: the pipeline and the batching are real,
the audio is noise, not speech (the demo says so).
"""

from __future__ import annotations

import time

DEMO_TEXTS = [
    ("zh", "v2", "今天是2024年3月15日，气温-3.5度，我们一起去银行。"),
    ("en", "v2", "Dr. Smith paid $12.50 for 3 books at 10:30 a.m."),
    ("ja", "v2", "今日はとても良い天気ですね。"),
    ("ko", "v2", "안녕하세요, 반갑습니다."),
    ("yue", "v2", "我哋今日去飲茶，好唔好？"),
    ("auto", "v2", "我在学习English，日本語も勉強しています。"),
    ("zh", "v1", "你好，世界！"),
]
DEMO_PARAGRAPH = "第一句话。第二句话！第三句话？第四句话。第五句话，第六句话。"


def run_demo() -> int:
    from fastsovits.errors import FastSovitsError
    from fastsovits.text import phonemize, presegment

    print("fastsovits demo: the text frontend (text -> phones -> ids, as the official models read them)\n")
    failures = 0
    for lang, version, text in DEMO_TEXTS:
        t0 = time.perf_counter()
        try:
            ph = phonemize(text, lang, version)
        except FastSovitsError as e:
            failures += 1
            print(f"[{version} {lang}] {text}\n  error: {type(e).__name__}: {e}\n")
            continue
        dt = time.perf_counter() - t0
        print(f"[{version} {lang}] {text}")
        print(f"  norm_text: {ph.norm_text}")
        for seg in ph.segments:
            print(f"  {seg.lang:>3}: {' '.join(seg.phones)}")
        print(f"  {len(ph.phone_ids)} phone ids ({dt * 1000:.0f} ms, first call includes loading)\n")
    print("sentence splitting (cut5):")
    for piece in presegment(DEMO_PARAGRAPH, "zh", "cut5"):
        print(f"  {piece}")
    return (1 if failures else 0) or run_synthesis_demo()


def run_synthesis_demo(out_dir: str = "out/demo") -> int:
    from pathlib import Path

    import numpy as np

    from fastsovits.api import TTS
    from fastsovits.params import SynthesisParams

    fixtures = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "reference"
    if not (fixtures / "tiny").is_dir():
        print("\n(synthesis demo skipped: run it from a source checkout, which has the tiny test models)")
        return 0
    print("\nsynthesis with the batching engine (tiny RANDOM-weight models: the audio is noise, not speech)")
    t0 = time.perf_counter()
    tts = TTS.from_pretrained(gpt=fixtures / "tiny/tiny_s1_v2.ckpt", sovits=fixtures / "tiny/tiny_s2_v2.pth",
                              hubert_dir=fixtures / "tiny/tiny_hubert", device="cpu", num_slots=4, max_len=512)
    wav = np.load(fixtures / "io/audio_inputs.npz")["wav32k_b"]
    voice = tts.load_reference((wav, 32000), "This is the reference voice.", "en")
    print(f"  models + reference ready in {time.perf_counter() - t0:.2f} s")
    requests = [
        ("Good morning. The engine batches sentences of several requests together.", "en"),
        ("今日はとても良い天気ですね。散歩に行きましょう。", "ja"),
        ("안녕하세요. 반갑습니다.", "ko"),
    ]
    params = SynthesisParams(seed=7, max_new_tokens=60, text_split_method="cut5")
    t1 = time.perf_counter()
    audios = tts.synthesize_batch([(text, voice, lang, params) for text, lang in requests])
    dt = time.perf_counter() - t1
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for i, ((text, lang), audio) in enumerate(zip(requests, audios)):
        path = Path(out_dir) / f"request{i}_{lang}.wav"
        audio.save(path)
        print(f"  [{lang}] {text[:40]!r} -> {path} ({audio.duration:.2f} s)")
    sizes = tts.engine.batch_sizes
    print(f"  3 concurrent requests in {dt:.2f} s; T2S rows per decode step: max {max(sizes)}, "
          f"mean {sum(sizes) / len(sizes):.2f} over {len(sizes)} steps")
    tts.close()
    return 0
