"""Resident models: one ``TTS`` (and so one engine) per model, loaded on first use, LRU-evicted.

Requests that use the same model share its engine, so they batch together. A model is evicted
only while no request holds it, when more than ``max_models`` are resident or their estimated
memory (weights + KV cache) passes ``max_model_bytes``. Loading and closing run in threads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from anyio import to_thread

from fastsovits.engine.stats import EngineStats
from fastsovits.server.config import ModelSpec, ServerConfig
from fastsovits.server.errors import NotFound

if TYPE_CHECKING:
    from fastsovits.api import TTS

log = logging.getLogger("fastsovits.server")


@dataclass
class Resident:
    spec: ModelSpec
    tts: TTS
    nbytes: int
    leases: int = 0
    last_used: float = field(default_factory=time.monotonic)
    ref_lock: threading.Lock = field(default_factory=threading.Lock)  # reference encoding, one at a time per model


class ModelRegistry:
    def __init__(
        self, default: ModelSpec, config: ServerConfig, on_load: Callable[[object], None] | None = None
    ) -> None:
        self.config = config
        self.specs: dict[str, ModelSpec] = {default.name: default}
        self.default_name = default.name
        self.resident: dict[str, Resident] = {}
        self.on_load = on_load
        self._locks: dict[str, asyncio.Lock] = {}
        self._retired: list[Resident] = []  # stale models still leased by requests; closed once idle

    # ----------------------------------------------------------------------------- specs
    def declare(self, spec: ModelSpec) -> None:
        self.specs[spec.name] = spec

    def spec(self, name: str | None) -> ModelSpec:
        name = name or self.default_name
        if name not in self.specs:
            raise NotFound(f"model {name!r} is not declared (GET /v1/models lists them)")
        return self.specs[name]

    # ----------------------------------------------------------------------------- leases
    async def acquire(self, name: str | None = None) -> Resident:
        """The resident model ``name`` (default: the server's default), loaded if needed; ``release`` it after."""
        spec = self.spec(name)
        lock = self._locks.setdefault(spec.name, asyncio.Lock())
        async with lock:
            res = self.resident.get(spec.name)
            if res is not None and res.spec != spec:
                # The name now stands for other files (or version): the resident model is stale, never reused.
                del self.resident[spec.name]
                self._retired.append(res)
                res = None
            if res is None:
                res = await to_thread.run_sync(self._load, spec)
                self.resident[spec.name] = res
            res.leases += 1
        try:
            await self._evict(keep=spec.name)
        except BaseException:
            self.release(res)
            raise
        return res

    def release(self, res: Resident) -> None:
        res.leases -= 1
        res.last_used = time.monotonic()

    @asynccontextmanager
    async def lease(self, name: str | None = None):
        res = await self.acquire(name)
        try:
            yield res
        finally:
            self.release(res)

    def _load(self, spec: ModelSpec) -> Resident:
        from fastsovits.api import TTS

        t0 = time.perf_counter()
        options: dict[str, Any] = {
            k: v for k, v in (("num_slots", self.config.num_slots), ("max_len", self.config.max_len)) if v is not None
        }
        tts = TTS.from_pretrained(
            spec.path,
            gpt=spec.gpt,
            sovits=spec.sovits,
            hubert_dir=spec.hubert_dir,
            bert_dir=spec.bert_dir,
            sv=spec.sv,
            version=spec.version,
            vocoder=spec.vocoder,
            base=spec.base,
            device=self.config.device,
            dtype=self.config.dtype,
            cuda_graphs=self.config.cuda_graphs,
            **options,
        )
        if self.on_load is not None:
            self.on_load(tts)
        nbytes = tts.memory().total
        log.info("model %s loaded in %.1f s (%.0f MiB)", spec.name, time.perf_counter() - t0, nbytes / 2**20)
        return Resident(spec, tts, nbytes)

    async def _evict(self, keep: str) -> None:
        cfg = self.config
        for res in [r for r in self._retired if r.leases == 0]:
            self._retired.remove(res)
            log.info("model %s closed (its files changed)", res.spec.name)
            await to_thread.run_sync(res.tts.close)
        while True:
            over_count = len(self.resident) > cfg.max_models
            over_bytes = (
                cfg.max_model_bytes is not None and sum(r.nbytes for r in self.resident.values()) > cfg.max_model_bytes
            )
            idle = [r for n, r in self.resident.items() if r.leases == 0 and n != keep]
            if not (over_count or over_bytes) or not idle:
                return
            victim = min(idle, key=lambda r: r.last_used)
            del self.resident[victim.spec.name]
            log.info("model %s evicted (LRU)", victim.spec.name)
            await to_thread.run_sync(victim.tts.close)

    # ----------------------------------------------------------------------------- stats
    def stats(self) -> dict[str, EngineStats]:
        return {name: res.tts.stats() for name, res in list(self.resident.items())}

    async def close(self) -> None:
        while self._retired:
            await to_thread.run_sync(self._retired.pop().tts.close)
        for name in list(self.resident):
            res = self.resident.pop(name)
            await to_thread.run_sync(res.tts.close)
