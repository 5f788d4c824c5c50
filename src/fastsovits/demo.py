"""What ``make demo`` runs: the text frontend on five languages, then the batching engine.

With official pretrained weights present (``$FASTSOVITS_MODELS``, ``./pretrained_models`` or the
folder ``fastsovits download`` fills, ``~/.cache/fastsovits/pretrained_models``) it synthesizes a
real sample with them (reference: ``$FASTSOVITS_DEMO_REF`` + ``$FASTSOVITS_DEMO_REF_TEXT``, else a
clip spoken by espeak-ng). Without them it says in one message how to get them, then runs the
batching engine on the tiny random-weight official-format models of the test fixtures: the pipeline
and the batching are real, the audio is noise, not speech (the demo says so).
"""

from __future__ import annotations

import time

# Sentences that show what the frontend reads well: numbers, dates, money, mixed languages. (The official
# quirks it keeps for parity, such as "Dr." read as "drive", are listed in docs/text_frontend.md.)
DEMO_TEXTS = [
    ("zh", "v2", "今天是2024年3月15日，气温25度，我们一起去银行。"),
    ("en", "v2", "Anna bought 3 apples for $2.50 on May 5th, 2024."),
    ("ja", "v2", "今日はとても良い天気ですね。"),
    ("ko", "v2", "안녕하세요, 반갑습니다."),
    ("yue", "v2", "我哋今日去飲茶，好唔好？"),
    ("auto", "v2", "今天天气很好，我们去公园散步吧。Let's take a walk in the park."),
    ("zh", "v1", "你好，欢迎使用。"),
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
    if failures:
        return 1
    models = find_pretrained()
    if models is None:
        print(
            "\nNo pretrained GPT-SoVITS weights found, so no real speech in this demo. To get them:\n"
            "  fastsovits download v2ProPlus    # official weights via huggingface_hub into "
            "~/.cache/fastsovits/pretrained_models\n"
            "(or point FASTSOVITS_MODELS at an official pretrained_models/ folder), then run 'make demo' again."
        )
        return run_synthesis_demo()
    return run_pretrained_demo(*models)


def find_pretrained():
    """(folder, version) of the first complete official model set found, else None."""
    import os
    from pathlib import Path

    from fastsovits.checkpoints.discovery import available_versions
    from fastsovits.text.assets import cache_root

    candidates = [os.environ.get("FASTSOVITS_MODELS"), "pretrained_models", cache_root() / "pretrained_models"]
    for folder in candidates:
        if folder and Path(folder).is_dir():
            versions = available_versions(folder)
            if versions:
                return Path(folder), versions[-1]
    return None


def _demo_reference(out: str) -> tuple[str, str] | None:
    import os
    import shutil
    import subprocess

    ref, text = os.environ.get("FASTSOVITS_DEMO_REF"), os.environ.get("FASTSOVITS_DEMO_REF_TEXT")
    if ref and text:
        return ref, text
    if shutil.which("espeak-ng"):
        text = "This short clip is the reference voice for the fastsovits demonstration."
        subprocess.run(["espeak-ng", "-v", "en+f3", "-s", "140", "-w", out, text], check=True, capture_output=True)
        return out, text
    return None


def run_pretrained_demo(folder, version: str, out_dir: str = "out/demo") -> int:
    from pathlib import Path

    from fastsovits.api import TTS
    from fastsovits.params import SynthesisParams

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    ref = _demo_reference(str(Path(out_dir) / "reference.wav"))
    if ref is None:
        print(
            "\nPretrained weights found, but no reference voice: set FASTSOVITS_DEMO_REF (a 3-10 s wav) and "
            "FASTSOVITS_DEMO_REF_TEXT (what it says), or install espeak-ng."
        )
        return 1
    print(f"\nsynthesis with the official {version} weights in {folder}")
    t0 = time.perf_counter()
    with TTS.from_pretrained(folder, version=version) as tts:
        voice = tts.load_reference(ref[0], ref[1], "en")
        text = "Hello! This is fastsovits speaking. Sentences of many requests share one batch."
        audio = tts.synthesize(text, voice, "en", SynthesisParams(seed=1, text_split_method="cut5"))
        path = Path(out_dir) / "sample.wav"
        audio.save(path)
    print(f"  {text!r} -> {path} ({audio.duration:.2f} s of audio in {time.perf_counter() - t0:.1f} s)")
    return 0


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
    tts = TTS.from_pretrained(
        gpt=fixtures / "tiny/tiny_s1_v2.ckpt",
        sovits=fixtures / "tiny/tiny_s2_v2.pth",
        hubert_dir=fixtures / "tiny/tiny_hubert",
        device="cpu",
        num_slots=4,
        max_len=512,
    )
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
    stats = tts.stats()
    print(
        f"  3 concurrent requests in {dt:.2f} s; T2S rows per decode step: max {stats.max_batch_rows}, "
        f"mean {stats.mean_batch_rows:.2f} over {stats.steps} steps"
    )
    tts.close()
    return 0
