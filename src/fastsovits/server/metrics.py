"""Prometheus metrics (names prefixed ``fastsovits_``) on a registry of the app's own (none global).

Engine-side figures (queue depth, active rows, tokens, how sentences ended) are read from
``TTS.stats()`` at scrape time; ``fastsovits_batch_size`` is observed by a step listener (rows per step).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from fastsovits.engine.stats import EngineStats

if TYPE_CHECKING:
    from fastsovits.server.models import ModelRegistry

BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256)
TIME_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30, 60, 120)
RATE_WINDOW_S = 10


class _EngineCollector:
    def __init__(self, metrics: ServerMetrics) -> None:
        self.m = metrics

    def collect(self):
        stats = self.m.models.stats() if self.m.models is not None else {}
        gauges: dict[str, tuple[Callable[[EngineStats], int], str]] = {
            "queue_depth": (lambda s: s.waiting_rows, "sentences waiting for a KV-cache slot"),
            "active_rows": (lambda s: s.running_rows, "sentences decoding now"),
            "cache_slots": (lambda s: s.num_slots, "KV-cache slots"),
        }
        for metric, (value, doc) in gauges.items():
            g = GaugeMetricFamily(f"fastsovits_{metric}", doc, labels=["model"])
            for name, s in stats.items():
                g.add_metric([name], value(s))
            yield g
        counters: dict[str, tuple[Callable[[EngineStats], int], str]] = {
            "tokens": (lambda s: s.tokens, "semantic tokens generated"),
            "sentences": (lambda s: s.sentences, "sentences decoded to audio"),
            "decode_steps": (lambda s: s.steps, "T2S decode steps"),
        }
        for metric, (value, doc) in counters.items():
            c = CounterMetricFamily(f"fastsovits_{metric}", doc, labels=["model"])
            for name, s in stats.items():
                c.add_metric([name], value(s))
            yield c
        c = CounterMetricFamily(
            "fastsovits_sentences_by_stop_reason",
            "sentences by how generation ended (max_tokens: ran to the token cap)",
            labels=["model", "reason"],
        )
        for name, s in stats.items():
            for reason in ("eos", "max_tokens", "aborted"):
                c.add_metric([name, reason], s.stop_reasons.get(reason, 0))
        yield c
        for metric, doc, pick in (
            ("guard_flags", "sentence attempts the guard found wrong, by reason", lambda s: s.guard_flags),
            ("guard_retries", "sentence attempts the guard generated again, by reason", lambda s: s.guard_retries),
        ):
            c = CounterMetricFamily(f"fastsovits_{metric}", doc, labels=["model", "reason"])
            for name, s in stats.items():
                for reason in ("too_short", "too_long", "loop"):
                    c.add_metric([name, reason], pick(s).get(reason, 0))
            yield c
        c = CounterMetricFamily(
            "fastsovits_stage_busy_seconds",
            "seconds the engine spent in each model stage (t2s: prefill and steps; prefill: the "
            "prefill part of t2s; decode: SoVITS)",
            labels=["model", "stage"],
        )
        for name, s in stats.items():
            for stage in ("t2s", "prefill", "decode"):
                c.add_metric([name, stage], s.stage_seconds[stage])
        yield c
        g = GaugeMetricFamily("fastsovits_tokens_per_second", f"tokens per second over the last {RATE_WINDOW_S} s")
        g.add_metric([], self.m.tokens_per_second())
        yield g
        g = GaugeMetricFamily("fastsovits_models_resident", "models loaded now")
        g.add_metric([], len(stats))
        yield g


class ServerMetrics:
    def __init__(self) -> None:
        self.models: ModelRegistry | None = None  # set by the app
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.batch_size = Histogram(
            "fastsovits_batch_size", "rows per T2S decode step", buckets=BATCH_BUCKETS, registry=r
        )
        self.ttfa = Histogram(
            "fastsovits_time_to_first_audio_seconds",
            "request start to first audio chunk",
            ["route"],
            buckets=TIME_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "fastsovits_request_duration_seconds",
            "request start to last byte",
            ["route"],
            buckets=TIME_BUCKETS,
            registry=r,
        )
        self.requests = Counter("fastsovits_requests", "finished requests", ["route", "status"], registry=r)
        self.errors = Counter("fastsovits_errors", "failed requests by error type", ["type"], registry=r)
        self.cancelled = Counter(
            "fastsovits_requests_cancelled", "requests aborted (client gone, timeout)", ["reason"], registry=r
        )
        self.rejected = Counter(
            "fastsovits_requests_rejected", "requests refused by admission control (503)", registry=r
        )
        self.audio_seconds = Counter("fastsovits_audio_seconds", "seconds of audio sent", registry=r)
        self.voice_features = Counter(
            "fastsovits_voice_features",
            "references of stored voices, by source: read from the store or computed",
            ["source"],
            registry=r,
        )
        self.in_flight = Gauge("fastsovits_requests_in_flight", "requests admitted and not finished", registry=r)
        self._steps: deque[tuple[int, int]] = deque()  # (second, tokens) buckets of the rate window
        self._lock = threading.Lock()
        r.register(_EngineCollector(self))

    def observe_step(self, rows: int) -> None:
        """Engine step listener (engine thread): one decode step of ``rows`` rows."""
        self.batch_size.observe(rows)
        now = int(time.monotonic())
        with self._lock:
            if self._steps and self._steps[-1][0] == now:
                self._steps[-1] = (now, self._steps[-1][1] + rows)
            else:
                self._steps.append((now, rows))
            while self._steps and self._steps[0][0] <= now - RATE_WINDOW_S:
                self._steps.popleft()

    def tokens_per_second(self) -> float:
        now = int(time.monotonic())
        with self._lock:
            return sum(n for s, n in self._steps if s > now - RATE_WINDOW_S) / RATE_WINDOW_S

    def attach(self, tts) -> None:
        tts.add_step_listener(self.observe_step)

    def render(self) -> bytes:
        return generate_latest(self.registry)
