"""Every call the WebUI makes into the engine, in one place.

The tabs never touch ``TTS`` directly: they call the functions here, which use its public API only
(``submit`` handles whose chunks carry each sentence's ``SentenceResult``, and ``stats``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastsovits.errors import InvalidInput
from fastsovits.params import SynthesisParams
from fastsovits.webui.catalog import CONVERTED, Catalog
from fastsovits.webui.config import WebUIConfig

log = logging.getLogger(__name__)
TOKENS_PER_SECOND = 25  # semantic tokens per second of speech


@dataclass(frozen=True)
class ModelKey:
    gpt: str  # catalog labels, never paths from a browser
    sovits: str


@dataclass(frozen=True)
class SentenceInfo:
    index: int
    text: str
    tokens: int
    stop_reason: str  # "eos" | "max_tokens" | "aborted", with the sentence guard's retries
    seconds: float  # audio length
    ready_after_s: float  # wall time from submission until this sentence was ready


@dataclass(frozen=True)
class SynthesisResult:
    audio: object  # fastsovits.api.Audio
    sentences: list[SentenceInfo]
    seconds: float


@dataclass(frozen=True)
class EngineStats:
    steps: int  # decode steps
    max_rows: int  # largest batch among them
    multi_row_steps: int  # steps that carried more than one row
    mean_rows: float


class _Loaded:
    def __init__(self) -> None:
        self.tts = None
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self.users = 0


class EnginePool:
    """One ``TTS`` per (GPT, SoVITS) pair, shared by every browser session; LRU over idle models.

    Loading happens once per pair (other sessions asking for it wait for the same load); models
    other sessions use keep serving meanwhile.
    """

    def __init__(self, config: WebUIConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._models: OrderedDict[ModelKey, _Loaded] = OrderedDict()

    def state(self, key: ModelKey) -> str:
        with self._lock:
            slot = self._models.get(key)
        if slot is None:
            return "not loaded"
        if not slot.ready.is_set():
            return "loading"
        return "failed" if slot.error else "loaded"

    def loaded_keys(self) -> list[ModelKey]:
        with self._lock:
            return [k for k, s in self._models.items() if s.ready.is_set() and s.tts is not None]

    def _load(self, key: ModelKey, catalog: Catalog):
        from fastsovits.api import TTS

        gpt, sovits = catalog.find(key.gpt, "gpt"), catalog.find(key.sovits, "sovits")
        comps = catalog.components
        options = dict(
            device=self.config.device,
            dtype=self.config.dtype,
            num_slots=self.config.num_slots,
            max_len=self.config.max_len,
        )
        if gpt.kind == CONVERTED or sovits.kind == CONVERTED:
            if gpt.path != sovits.path:
                raise InvalidInput("a converted folder holds both models: pick the same folder in both pickers")
            return TTS.from_pretrained(
                gpt.path, hubert_dir=comps.hubert_dir, bert_dir=comps.bert_dir, sv=comps.sv, **options
            )
        return TTS.from_pretrained(
            gpt=gpt.path,
            sovits=sovits.path,
            hubert_dir=comps.hubert_dir,
            bert_dir=comps.bert_dir,
            sv=comps.sv,
            **options,
        )

    def _evict(self) -> None:
        """Close idle models beyond ``max_models`` (called with the lock held)."""
        idle = [k for k, s in self._models.items() if s.ready.is_set() and s.users == 0]
        while len(self._models) > self.config.max_models and idle:
            key = idle.pop(0)
            slot = self._models.pop(key)
            if slot.tts is not None:
                threading.Thread(target=slot.tts.close, daemon=True).start()

    @contextmanager
    def use(self, key: ModelKey, catalog: Catalog) -> Iterator[object]:
        """The loaded ``TTS`` of ``key`` (loading it first), held for the duration of the block."""
        with self._lock:
            slot = self._models.get(key)
            owner = slot is None or (slot.ready.is_set() and slot.error is not None)
            if owner:
                slot = _Loaded()
                self._models[key] = slot
            self._models.move_to_end(key)
            slot.users += 1
        try:
            if owner:
                try:
                    slot.tts = self._load(key, catalog)
                except BaseException as e:
                    slot.error = e
                    raise
                finally:
                    slot.ready.set()
                    with self._lock:
                        self._evict()
            slot.ready.wait()
            if slot.error is not None:
                raise slot.error
            yield slot.tts
        finally:
            with self._lock:
                slot.users -= 1
                if slot.error is not None and self._models.get(key) is slot:
                    del self._models[key]

    def close(self) -> None:
        with self._lock:
            slots = list(self._models.values())
            self._models.clear()
        for slot in slots:
            if slot.tts is not None:
                slot.tts.close()


def model_version(tts) -> str:
    return tts.version


def sample_rate(tts) -> int:
    return tts.sample_rate


def load_reference(tts, audio: str | Path | bytes | tuple, text: str | None, language: str | None, aux: Sequence = ()):
    return tts.load_reference(audio, text or None, language if text else None, aux=aux)


def presegment(text: str, language: str, method: str) -> list[str]:
    from fastsovits.text import presegment as _presegment

    return _presegment(text, language.replace("all_", ""), method)


def synthesize(tts, text: str, reference, language: str, params: SynthesisParams) -> SynthesisResult:
    """The whole text, with per-sentence details (how each sentence ended), through the batching engine."""
    import numpy as np

    from fastsovits.api import Audio

    t0 = time.perf_counter()
    handle = tts.submit(text, reference, language, params.with_(streaming_mode=False), stream=False)
    pieces, infos = [], []
    for chunk in handle:
        pieces.append(chunk.samples)
        if chunk.sentence is not None:
            infos.append(_info(chunk.sentence, time.perf_counter() - t0))
    audio = Audio(np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32), tts.sample_rate)
    return SynthesisResult(audio, infos, time.perf_counter() - t0)


def _info(sentence, ready_after_s: float) -> SentenceInfo:
    """A row of the details table from the engine's ``SentenceResult``."""
    reason = sentence.stop_reason.value + (f" (retries: {', '.join(sentence.retries)})" if sentence.retries else "")
    return SentenceInfo(
        sentence.index,
        sentence.text,
        sentence.tokens,
        reason,
        round(sentence.audio_seconds, 3),
        round(ready_after_s, 3),
    )


def stream(tts, text: str, reference, language: str, params: SynthesisParams):
    """Audio pieces as they are decoded (token streaming inside sentences); ``.cancel()`` stops it.
    Each sentence's last piece carries its ``SentenceResult`` (``chunk.sentence``)."""
    return tts.submit(text, reference, language, params.with_(streaming_mode=True), stream=True)


def sentence_details(chunks: Sequence) -> list[SentenceInfo]:
    """Per-sentence details of streamed chunks (from each sentence's last chunk)."""
    return [_info(c.sentence, 0.0) for c in chunks if getattr(c, "sentence", None) is not None]


def run_batch(tts, items: list, out_dir: Path, reference, language: str, fmt: str, params: SynthesisParams) -> dict:
    from fastsovits.batch import run_batch as _run_batch

    return _run_batch(tts, items, out_dir, default_ref=reference, lang=language, fmt=fmt, params=params, progress=False)


def read_batch_items(path: Path) -> list:
    from fastsovits.batch import read_items

    return read_items(path)


def engine_stats(tts) -> EngineStats:
    """Decode-step batch sizes since the model was loaded (``TTS.stats``'s histogram)."""
    hist = tts.stats().steps_by_rows
    steps = sum(hist.values())
    if not steps:
        return EngineStats(0, 0, 0, 0.0)
    multi = sum(n for rows, n in hist.items() if rows > 1)
    return EngineStats(steps, max(hist), multi, round(sum(r * n for r, n in hist.items()) / steps, 2))
