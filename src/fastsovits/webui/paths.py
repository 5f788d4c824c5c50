"""Paths typed into the UI: resolved, then accepted only inside the configured roots."""

from __future__ import annotations

from pathlib import Path

from fastsovits.errors import InvalidInput


class PathNotAllowed(InvalidInput):
    """A path outside the folders the operator allowed (``--roots``, the models and data folders)."""


def resolve_in_roots(text: str, roots: tuple[Path, ...], *, must_exist: bool = True) -> Path:
    """``text`` as an absolute, symlink-free path inside one of ``roots``; else :class:`PathNotAllowed`.

    The message names the typed text only, never where the roots are.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("type a path")
    if "\x00" in text:
        raise PathNotAllowed("the path contains a NUL character")
    path = Path(text.strip()).expanduser()
    resolved = path.resolve() if path.is_absolute() else None
    candidates = [resolved] if resolved is not None else [(root / path).resolve() for root in roots]
    for cand in candidates:
        if any(cand == root or root in cand.parents for root in roots):
            if must_exist and not cand.exists():
                continue
            return cand
    # One message for "outside" and "missing": the UI does not tell which paths exist elsewhere.
    raise PathNotAllowed(f"{text.strip()!r} is not an existing path inside the folders this WebUI may read")


def safe_name(text: str, what: str = "name") -> str:
    """A file-system-safe name (letters, digits, '_', '-', '.'), 1-64 characters, not starting with '.'."""
    import re

    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", text.strip()):
        raise InvalidInput(f"{what} {text!r} must be 1-64 letters, digits, '_', '-' or '.' (not starting with '.')")
    return text.strip()
