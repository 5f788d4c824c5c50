"""Result types of the text frontend (plain data, no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Segment:
    """One language run: the text handed to one language's normaliser and G2P."""

    lang: str  # one of zh en ja ko yue
    text: str  # the run's raw text
    norm_text: str  # the normaliser's output
    phones: list[str]  # phones after unknown -> "UNK"
    word2ph: list[int] | None  # phones per character of norm_text (zh/yue only)


@dataclass(frozen=True)
class Phonemes:
    """Output of :func:`fastsovits.text.phonemize` for one sentence."""

    norm_text: str
    phones: list[str]
    phone_ids: list[int]
    word2ph: list[int] | None  # concatenated only when every run has one (pure zh/yue)
    segments: list[Segment] = field(default_factory=list)
    version: str = "v2"
    retried_with_dot_prefix: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LanguageFrontend(Protocol):
    """What every per-language module provides (see ``fastsovits.text.g2p``)."""

    def normalize(self, text: str) -> str:
        """Text normalisation (numbers, punctuation, ...) as the official ``text_normalize``."""
        ...

    def g2p(self, norm_text: str) -> tuple[list[str], list[int] | None]:
        """Phones (and word2ph for zh/yue, else None) of normalised text, as the official ``g2p``."""
        ...
