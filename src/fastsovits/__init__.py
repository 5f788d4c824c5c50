"""fastsovits: a batching engine for GPT-SoVITS voice cloning.

Importing this package has no side effects: no model, dictionary or file is loaded.
"""

from fastsovits.errors import (
    Cancelled,
    CapacityError,
    CheckpointError,
    EmptyText,
    FastSovitsError,
    InvalidInput,
    InvalidParameter,
    MissingDependency,
    MissingResource,
    ReferenceAudioError,
    TextTooLong,
    UnsupportedCharacters,
    UnsupportedLanguage,
)

__version__ = "0.1.0"

_LAZY = {
    "TTS": "fastsovits.api",
    "Reference": "fastsovits.api",
    "Audio": "fastsovits.api",
    "AudioChunk": "fastsovits.api",
    "SynthesisParams": "fastsovits.params",
}


def __getattr__(name: str):
    """``TTS``, ``Reference``, ``Audio``, ``AudioChunk``, ``SynthesisParams`` load on first use (no torch at import)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fastsovits' has no attribute {name!r}")


__all__ = [
    "__version__",
    "TTS",
    "Reference",
    "Audio",
    "AudioChunk",
    "SynthesisParams",
    "CapacityError",
    "Cancelled",
    "CheckpointError",
    "EmptyText",
    "FastSovitsError",
    "InvalidInput",
    "InvalidParameter",
    "MissingDependency",
    "MissingResource",
    "ReferenceAudioError",
    "TextTooLong",
    "UnsupportedCharacters",
    "UnsupportedLanguage",
]
