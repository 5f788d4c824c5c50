"""What every tab shares: the settings, the model catalog, the engine pool, the voice library."""

from __future__ import annotations

import functools
import logging
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastsovits.errors import FastSovitsError
from fastsovits.webui.catalog import Catalog, scan
from fastsovits.webui.config import WebUIConfig
from fastsovits.webui.engine_access import EnginePool
from fastsovits.webui.i18n import translator
from fastsovits.webui.voice_store import SharedVoiceStore, VoiceStore

log = logging.getLogger(__name__)


class AppState:
    def __init__(self, config: WebUIConfig, voices: VoiceStore | None = None) -> None:
        self.config = config
        for d in (config.data_dir, config.exports_dir, config.experiments_dir, config.jobs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.t = translator(config.language)
        self.pool = EnginePool(config)
        self.voices: VoiceStore = voices or SharedVoiceStore(config.voice_data_dir, config.voices_dir)
        # Files handed to browsers (outputs, previews) live in the system temp folder, which gradio serves.
        self.out_dir = Path(tempfile.mkdtemp(prefix="fastsovits-webui-"))
        self._catalog_lock = threading.Lock()
        self._catalog: Catalog | None = None

    def catalog(self, refresh: bool = False) -> Catalog:
        with self._catalog_lock:
            if self._catalog is None or refresh:
                self._catalog = scan(self.config.model_dirs())
            return self._catalog

    def out_file(self, suffix: str, prefix: str = "out-") -> Path:
        fd, name = tempfile.mkstemp(suffix=suffix, prefix=prefix, dir=self.out_dir)
        import os

        os.close(fd)
        return Path(name)


def error_text(e: BaseException) -> str:
    """A message for the UI: the typed error's own text; anything else without internals."""
    if isinstance(e, FastSovitsError):
        return f"❌ {type(e).__name__}: {e}"
    log.exception("unexpected error in a WebUI handler")
    return f"❌ internal error ({type(e).__name__}); the server log has the details"


def guarded(n_outputs: int, status_index: int) -> Callable:
    """Run a handler; on an error put its message into output ``status_index`` and leave the others unchanged."""
    import gradio as gr

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - every failure becomes a message; the server keeps running
                out: list[Any] = [gr.update() for _ in range(n_outputs)]
                out[status_index] = error_text(e)
                return tuple(out) if n_outputs > 1 else out[0]

        return inner

    return wrap
