"""The ingress deployment: the plain server's FastAPI app (``create_app``) with its speech service
swapped for ``RemoteSpeechService``, a header middleware, cluster metrics and ``GET /cluster``.

Every speech response carries ``X-Fastsovits-Replica`` (the engine replica that ran it) and
``X-Fastsovits-Cache`` (``hit`` when that replica already held the voice's reference features).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from fastsovits.cluster.messages import RouteInfo
from fastsovits.cluster.remote import CURRENT_ROUTE, RemoteSpeechService, unwrap
from fastsovits.cluster.routing_state import ROUTERS, ROUTING
from fastsovits.server.config import ModelSpec, ServerConfig
from fastsovits.server.errors import NotFound

log = logging.getLogger("fastsovits.cluster")
REPLICA_HEADER, CACHE_HEADER = "X-Fastsovits-Replica", "X-Fastsovits-Cache"


class ClusterModels:
    """The model catalogue as the ingress sees it (the registry interface the routes use); replicas load."""

    def __init__(self, default: ModelSpec, handle, cluster: ClusterMetrics | None) -> None:
        self.specs: dict[str, ModelSpec] = {default.name: default}
        self.default_name = default.name
        self.handle, self.cluster = handle, cluster
        self.on_load = None

    def declare(self, spec: ModelSpec) -> None:
        self.specs[spec.name] = spec

    def spec(self, name: str | None) -> ModelSpec:
        name = name or self.default_name
        if name not in self.specs:
            raise NotFound(f"model {name!r} is not declared (GET /v1/models lists them)")
        return self.specs[name]

    @property
    def resident(self) -> dict[str, list[str]]:
        """Model -> the replicas known to hold it."""
        out: dict[str, list[str]] = {}
        for replica, models in self.cluster.replica_models().items():
            for m in models:
                out.setdefault(m, []).append(replica)
        return out

    @contextlib.asynccontextmanager
    async def lease(self, name: str | None = None):
        """Have a replica load ``name`` now (start-up check, ``/set_*_weights``)."""
        try:
            info = await self.handle.load_model.remote(self.spec(name))
        except Exception as e:  # noqa: BLE001 - a bad weights file is the caller's typed error
            raise unwrap(e) from None
        self.cluster.observe(info, routed=False)
        yield None

    def stats(self) -> dict:
        return {}  # engine figures live on the replicas; /metrics shows what they report (fastsovits_cluster_*)

    async def close(self) -> None:
        return None


class ClusterMetrics:
    """``fastsovits_cluster_*`` series on the app's registry: routed requests, failures, replica state."""

    def __init__(self, registry) -> None:
        self.routed = Counter(
            "fastsovits_cluster_requests",
            "requests by engine replica and voice-cache outcome",
            ["replica", "cache"],
            registry=registry,
        )
        self.failures = Counter(
            "fastsovits_cluster_replica_failures",
            "requests whose engine replica failed, by "
            "outcome (retried, failed: the retry failed too, stream_ended: audio already sent)",
            ["outcome"],
            registry=registry,
        )
        self._models: dict[str, tuple[str, ...]] = {}  # replica -> resident models, from its latest answer
        registry.register(self)

    def observe(self, info: RouteInfo, routed: bool = True) -> None:
        if routed:
            self.routed.labels(info.replica, "hit" if info.cache_hit else "miss").inc()
        self._models[info.replica] = info.models

    def replica_models(self) -> dict[str, tuple[str, ...]]:
        live = self.router_view()
        if live:
            return {r: tuple(s.get("models", ())) or self._models.get(r, ()) for r, s in live.items()}
        return dict(self._models)

    @staticmethod
    def router_view() -> dict[str, dict]:
        """Replica id -> the routing stats it last reported (the routers in this process)."""
        out: dict[str, dict] = {}
        for router in list(ROUTERS):
            for r in router.replicas():
                out[r.replica_id.unique_id] = dict(r.routing_stats or {})
        return out

    def collect(self):
        view = self.router_view()
        g = GaugeMetricFamily(
            "fastsovits_cluster_replica_queued_rows", "sentences waiting in each engine replica", labels=["replica"]
        )
        v = GaugeMetricFamily(
            "fastsovits_cluster_replica_voices", "voices encoded on each engine replica", labels=["replica"]
        )
        m = GaugeMetricFamily(
            "fastsovits_cluster_replica_model", "1 for each model resident on each replica", labels=["replica", "model"]
        )
        for replica, stats in view.items():
            g.add_metric([replica], stats.get("queued_rows", 0))
            v.add_metric([replica], len(stats.get("voices", ())))
        for replica, models in self.replica_models().items():
            for model in models:
                m.add_metric([replica, model], 1)
        n = GaugeMetricFamily("fastsovits_cluster_replicas", "engine replicas the router can use")
        n.add_metric([], len(view))
        yield from (g, v, m, n)
        yield from ROUTING.collect()


class RouteHeaders:
    """ASGI middleware: a routing record per request (``CURRENT_ROUTE``), written out as response headers."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        holder: dict = {}
        token = CURRENT_ROUTE.set(holder)

        async def send_with_route(message):
            info = holder.get("info")
            if message["type"] == "http.response.start" and info is not None:
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (REPLICA_HEADER.lower().encode(), info.replica.encode()),
                        (CACHE_HEADER.lower().encode(), b"hit" if info.cache_hit else b"miss"),
                    ],
                }
            await send(message)

        try:
            return await self.app(scope, receive, send_with_route)
        finally:
            CURRENT_ROUTE.reset(token)


def build_ingress_app(
    config: ServerConfig,
    default: ModelSpec,
    models: list[ModelSpec],
    handle,
    namespace: str,
    default_voice: str | None = None,
):
    """The FastAPI app of one ingress replica."""
    import prometheus_client

    from fastsovits.cluster.voice_store import RayVoiceStore, SharedVoiceRegistry
    from fastsovits.server.app import create_app

    prometheus_client.disable_created_metrics()  # this process is the ingress's own: no *_created series
    # /control would signal this ingress replica's own process (Serve restarts it): stop the app with Ray instead
    config = replace(config, allow_control=False)

    voices = SharedVoiceRegistry(RayVoiceStore(namespace))
    voices.default = default_voice
    registry = ClusterModels(default, handle, None)
    for spec in models:
        registry.declare(spec)
    app = create_app(registry, config, voices)
    state = app.state.fastsovits
    cluster = ClusterMetrics(state.metrics.registry)
    registry.cluster = cluster
    state.service = RemoteSpeechService(handle, registry, voices, state.metrics, config, cluster)
    app.add_middleware(RouteHeaders)

    @app.get("/cluster")
    async def cluster_view():
        """Engine replicas as the router sees them: resident models, voices held, queued sentences."""
        return {
            "replicas": {
                r: {
                    "models": list(s.get("models", ())),
                    "voices": len(s.get("voices", ())),
                    "queued_rows": s.get("queued_rows", 0),
                    "in_flight": s.get("in_flight", 0),
                    "cancelled": s.get("cancelled", 0),
                }
                for r, s in cluster.router_view().items()
            },
            "answered": {r: list(m) for r, m in cluster._models.items()},
        }

    return app


class Ingress:
    """The class Serve runs as the ingress deployment (decorated in ``fastsovits.cluster.app``)."""

    def __init__(
        self,
        engine,
        config: ServerConfig,
        default: ModelSpec,
        models: list[ModelSpec],
        namespace: str,
        default_voice: str | None = None,
    ) -> None:
        self._app = build_ingress_app(config, default, models, engine, namespace, default_voice)

    def __serve_build_asgi_app__(self):
        return self._app
