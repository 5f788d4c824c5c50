"""Multilingual text frontend with parity to the official GPT-SoVITS frontend.

Public API (lazy: importing this package loads no dictionary)::

    phonemize(text, language, version="v2") -> Phonemes
    split_text(text, method) -> str                 # raw cut0..cut5 result
    presegment(text, language, method) -> list[str] # official pre-segmentation
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastsovits.text.frontend import phonemize
    from fastsovits.text.split import presegment, split_text
    from fastsovits.text.types import Phonemes, Segment

_LAZY = {
    "phonemize": ("fastsovits.text.frontend", "phonemize"),
    "clean_run": ("fastsovits.text.frontend", "clean_run"),
    "split_languages": ("fastsovits.text.frontend", "split_languages"),
    "MODES": ("fastsovits.text.frontend", "MODES"),
    "split_text": ("fastsovits.text.split", "split_text"),
    "presegment": ("fastsovits.text.split", "presegment"),
    "Phonemes": ("fastsovits.text.types", "Phonemes"),
    "Segment": ("fastsovits.text.types", "Segment"),
}

__all__ = ["phonemize", "clean_run", "split_languages", "MODES", "split_text", "presegment", "Phonemes", "Segment"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'fastsovits.text' has no attribute {name!r}")
