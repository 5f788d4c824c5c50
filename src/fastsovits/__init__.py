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

__all__ = [
    "__version__",
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
