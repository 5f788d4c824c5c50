"""Typed errors raised by fastsovits.

Every error carries a human-readable message naming the offending value. The server maps
these types to HTTP status codes in one place (InvalidInput -> 400, CapacityError -> 503).
"""

from __future__ import annotations


class FastSovitsError(Exception):
    """Base class of every error fastsovits raises on purpose."""


class InvalidInput(FastSovitsError, ValueError):
    """The caller passed something we cannot work with (text, audio, parameters)."""


class EmptyText(InvalidInput):
    """The text is empty, whitespace-only or contains nothing that can be spoken."""


class TextTooLong(InvalidInput):
    """A single sentence longer than the frontend accepts; split the text first (``presegment``)."""


class UnsupportedLanguage(InvalidInput):
    """A language code (or symbol version) that this model version does not support."""


class UnsupportedCharacters(InvalidInput):
    """The text contains characters the language's G2P cannot read."""


class ReferenceAudioError(InvalidInput):
    """Reference audio that is corrupt, too short, too long or otherwise unusable."""


class InvalidParameter(InvalidInput):
    """A synthesis or runtime parameter is out of range."""


class InputTimeout(InvalidInput):
    """Streamed text stopped arriving for longer than the idle timeout, or the session outlived its limit."""


class MissingDependency(FastSovitsError, ImportError):
    """An optional extra (e.g. ``fastsovits[ja]``) is needed for this feature."""

    def __init__(self, feature: str, extra: str, cause: BaseException | None = None) -> None:
        msg = f"{feature} needs the optional dependency group '{extra}': pip install 'fastsovits[{extra}]'"
        if cause is not None:
            msg += f" ({type(cause).__name__}: {cause})"
        super().__init__(msg)
        self.extra = extra


class MissingResource(FastSovitsError, FileNotFoundError):
    """A data file or model folder is not where it should be (e.g. text data not installed)."""


class CheckpointError(FastSovitsError):
    """A checkpoint file is corrupt, truncated, of the wrong kind, or tries to execute code."""


class CapacityError(FastSovitsError):
    """The engine cannot accept more work right now (queue full, out of memory budget)."""


class Cancelled(FastSovitsError):
    """The request was cancelled (client disconnected, shutdown, timeout)."""


__all__ = [
    "FastSovitsError",
    "InvalidInput",
    "EmptyText",
    "TextTooLong",
    "UnsupportedLanguage",
    "UnsupportedCharacters",
    "ReferenceAudioError",
    "InvalidParameter",
    "InputTimeout",
    "MissingDependency",
    "MissingResource",
    "CheckpointError",
    "CapacityError",
    "Cancelled",
]
