"""A tiny synthetic English corpus made with espeak-ng: two voices, a few dozen short utterances.

``build_corpus(dest)`` writes ``dest/wavs/<voice>_<i>.wav`` (espeak's native 22.05 kHz, so the
prepare step really resamples) and ``dest/corpus.list`` in the official annotation format
``wav_path|speaker|language|text`` (absolute paths). It is idempotent: an existing complete
corpus is reused. The ``corpus`` pytest fixture builds it once per test session::

    from tests.train.corpus import corpus  # noqa: F401  (the fixture)

    def test_x(corpus): ...  # corpus.list_path, corpus.wav_dir, corpus.items

Tests that need espeak-ng skip cleanly (with the reason) where it is not installed; the setup
script installs it in CI.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

VOICES = {"m3": "speaker_m", "f2": "speaker_f"}  # espeak variant -> speaker name in the .list
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
    "A cup of tea would be lovely right now.",
    "We walked along the river until sunset.",
    "Please close the window before you leave.",
    "The train to the city leaves at nine.",
    "My favourite colour has always been green.",
    "Rain is expected later this afternoon.",
    "He plays the piano every single evening.",
    "Could you pass me the salt, please?",
    "The museum opens early on Sunday morning.",
    "Birds were singing in the old oak tree.",
    "This little test checks the whole pipeline.",
    "Reading a good book is time well spent.",
    "The children built a castle made of sand.",
    "Turn left at the second traffic light.",
    "Fresh bread smells wonderful in the morning.",
    "Our team finished the project on time.",
    "The moon was bright above the quiet town.",
    "Water boils at one hundred degrees.",
]


@dataclass(frozen=True)
class CorpusItem:
    wav_path: Path
    speaker: str
    language: str
    text: str

    def to_line(self) -> str:
        return f"{self.wav_path}|{self.speaker}|{self.language}|{self.text}"


@dataclass(frozen=True)
class Corpus:
    root: Path
    list_path: Path
    wav_dir: Path
    items: list[CorpusItem]


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def build_corpus(dest: str | Path, n_per_voice: int = 16) -> Corpus:
    """Write (or reuse) ``2 * n_per_voice`` utterances under ``dest``."""
    if not espeak_available():
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    dest = Path(dest)
    wav_dir = dest / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for voice, speaker in VOICES.items():
        for i in range(n_per_voice):
            text = SENTENCES[(i + (3 if voice == "f2" else 0)) % len(SENTENCES)]
            path = wav_dir / f"{voice}_{i:03d}.wav"
            if not path.is_file():
                tmp = path.with_name(path.name + ".tmp.wav")
                subprocess.run(
                    ["espeak-ng", "-v", f"en+{voice}", "-s", "165", "-w", str(tmp), text],
                    check=True,
                    capture_output=True,
                    timeout=60,
                )
                tmp.replace(path)
            items.append(CorpusItem(path.resolve(), speaker, "en", text))
    list_path = dest / "corpus.list"
    list_path.write_text("".join(it.to_line() + "\n" for it in items), encoding="utf-8")
    return Corpus(dest, list_path, wav_dir, items)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Corpus:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    return build_corpus(tmp_path_factory.getbasetemp() / "espeak_corpus")
