"""A tiny experiment folder in the official ``logs/<exp>/`` layout, written directly (no models).

Random but fixed data: phones from the v2 table, semantic codes, 32 kHz tones as audio, random
HuBERT features, optional SV vectors. Used by the training tests that do not need the prepare step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from fastsovits.text.symbols import symbols

PHONES = [p for p in symbols("v2") if p[:1].isupper() and p[-1:].isdigit()][:20] + [",", "."]


def make_layout(root: Path, n: int = 6, seed: int = 0, sv: bool = False, seconds=(1.0, 1.6)) -> Path:
    """Write ``n`` utterances under ``root`` (created) and return it."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for d in ("4-cnhubert", "5-wav32k") + (("7-sv_cn",) if sv else ()):
        (root / d).mkdir(exist_ok=True)
    texts, sem = [], ["item_name\tsemantic_audio"]
    for i in range(n):
        name = f"utt{i:03d}.wav"
        sec = float(rng.uniform(*seconds))
        samples = int(sec * 32000) // 640 * 640
        t = np.arange(samples) / 32000
        wav = 0.3 * np.sin(2 * np.pi * (180 + 40 * i) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
        sf.write(root / "5-wav32k" / name, wav.astype(np.float32), 32000, subtype="PCM_16")
        frames = samples // 640
        torch.save(
            torch.randn(1, 768, frames, generator=torch.Generator().manual_seed(seed * 100 + i)),
            root / "4-cnhubert" / f"{name}.pt",
        )
        if sv:
            torch.save(torch.randn(1, 20480) * 0.1, root / "7-sv_cn" / f"{name}.pt")
        n_codes = frames // 2
        n_phones = max(4, int(n_codes / 25 * 10))
        phones = [PHONES[k] for k in rng.integers(0, len(PHONES), n_phones)]
        texts.append(f"{name}\t{' '.join(phones)}\tNone\tutterance {i}")
        sem.append(f"{name}\t{' '.join(str(c) for c in rng.integers(0, 1024, n_codes))}")
    (root / "2-name2text.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    (root / "6-name2semantic.tsv").write_text("\n".join(sem) + "\n", encoding="utf-8")
    return root
