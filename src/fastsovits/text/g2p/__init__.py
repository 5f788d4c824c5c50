"""Per-language G2P modules. Each exposes ``load(version)`` returning an object with
``normalize(text)`` and ``g2p(norm_text)`` (see ``fastsovits.text.types.LanguageFrontend``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# CJK punctuation -> the model's marks, shared by the official Chinese, Japanese and Korean rules.
CJK_MARKS = {"：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ","}

_lock = threading.Lock()
_instances: dict[tuple[str, str], object] = {}


def shared_instance(language: str, version: str, factory: Callable[[], T]) -> T:
    """One frontend object per (language, symbol version), created once under a lock."""
    key = (language, version)
    with _lock:
        obj = _instances.get(key)
        if obj is None:
            obj = _instances[key] = factory()
        return obj  # type: ignore[return-value]
