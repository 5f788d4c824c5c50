"""What ``make demo`` runs: the text frontend on a multilingual paragraph.

Later stages (engine, server) extend this demo; today it shows the frontend the models read.
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
    return 1 if failures else 0
