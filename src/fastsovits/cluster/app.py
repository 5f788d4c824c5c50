"""Build and run the Serve application: the engine deployment (custom router) behind the ingress."""

from __future__ import annotations

import logging
import os
import signal
import threading

from fastsovits.cluster.settings import ClusterSettings
from fastsovits.runtime import OPENMP_DEFAULTS
from fastsovits.server.config import ModelSpec, ServerConfig

log = logging.getLogger("fastsovits.cluster")
ENGINE_NAME, INGRESS_NAME = "FastSovitsEngine", "FastSovitsIngress"


def engine_config(config: ServerConfig, settings: ClusterSettings) -> ServerConfig:
    """A replica's own server config: its admission never refuses before Serve's queue limit does."""
    from dataclasses import replace

    return replace(config, queue_limit=settings.replica_queue + 1, voices_file=None)


def build_application(
    config: ServerConfig,
    default: ModelSpec,
    models: list[ModelSpec],
    settings: ClusterSettings,
    default_voice: str | None = None,
):
    from ray import serve
    from ray.serve.config import RequestRouterConfig

    from fastsovits.cluster.engine import EngineReplica
    from fastsovits.cluster.ingress import Ingress

    # the engine's OpenMP settings (fastsovits.runtime), also where the raylet was started without them
    env = {k: os.environ.get(k, v) for k, v in OPENMP_DEFAULTS.items()}
    actor = {
        "num_cpus": settings.cpus_per_replica,
        "num_gpus": settings.gpus_per_replica,
        "runtime_env": {"env_vars": env},
    }
    scaling = (
        {"autoscaling_config": settings.autoscaling} if settings.autoscaling else {"num_replicas": settings.replicas}
    )
    engine = serve.deployment(
        EngineReplica,
        name=ENGINE_NAME,
        ray_actor_options=actor,
        max_ongoing_requests=settings.replica_queue,
        max_queued_requests=settings.max_queued,
        health_check_period_s=settings.health_check_period_s,
        graceful_shutdown_timeout_s=config.shutdown_timeout_s,
        request_router_config=RequestRouterConfig(
            request_router_class="fastsovits.cluster.router:FastSovitsRouter",
            request_router_kwargs={
                "kind": settings.router.value,
                "imbalance_threshold": settings.imbalance_threshold,
                "stats_period_s": settings.stats_period_s,
            },
            request_routing_stats_period_s=settings.stats_period_s,
            request_routing_stats_timeout_s=max(settings.stats_period_s, 5.0),
        ),
        **scaling,
    )
    threads = max(1, int(settings.cpus_per_replica)) if settings.gpus_per_replica == 0 else None
    ingress_limit = config.queue_limit + 8  # the ingress's own admission (queue_limit) answers 503 first
    ingress = serve.deployment(
        serve.ingress()(Ingress),
        name=INGRESS_NAME,
        num_replicas=settings.ingress_replicas,
        ray_actor_options={"num_cpus": settings.ingress_cpus},
        max_ongoing_requests=ingress_limit,
    )
    return ingress.bind(
        engine.bind(default, engine_config(config, settings), settings.namespace, threads),
        config,
        default,
        models,
        settings.namespace,
        default_voice,
    )


def start_ray(settings: ClusterSettings) -> None:
    import ray

    if ray.is_initialized():
        return
    if settings.ray_address:
        ray.init(address=settings.ray_address, namespace=settings.namespace, log_to_driver=False)
    else:
        ray.init(
            num_cpus=settings.local_cpus,
            _memory=settings.local_memory_bytes,
            namespace=settings.namespace,
            object_store_memory=settings.object_store_bytes,
            include_dashboard=False,
            log_to_driver=False,
        )


def deploy(
    config: ServerConfig,
    default: ModelSpec,
    models: list[ModelSpec],
    settings: ClusterSettings,
    voices=(),
    default_voice: str | None = None,
) -> None:
    """Start (or join) Ray, put the declared voices in the store, and run the application on host:port."""
    from ray import serve

    from fastsovits.cluster.voice_store import RayVoiceStore

    start_ray(settings)
    store = RayVoiceStore(settings.namespace)
    for voice in voices:
        store.put(voice)
    serve.start(http_options={"host": config.host, "port": config.port})
    app = build_application(config, default, models, settings, default_voice)
    serve.run(app, name=settings.app_name, route_prefix="/")


def shutdown(settings: ClusterSettings) -> None:
    import ray
    from ray import serve

    serve.delete(settings.app_name)
    if not settings.ray_address:
        serve.shutdown()
        ray.shutdown()


def run(
    config: ServerConfig,
    default: ModelSpec,
    models: list[ModelSpec],
    settings: ClusterSettings,
    voices=(),
    default_voice: str | None = None,
) -> None:
    """Deploy, then wait for SIGINT/SIGTERM and take the application down."""
    deploy(config, default, models, settings, voices, default_voice)
    log.info("fastsovits on Ray Serve at http://%s:%d", config.host, config.port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    shutdown(settings)


def from_args(args: dict):
    """Serve application builder for ``serve run`` / ``serve deploy`` / KubeRay (``import_path``).

    ``args`` holds field names of ``ModelSpec`` (``gpt``, ``sovits``, ``hubert_dir``, ``path``, ...),
    ``ServerConfig`` (``voices_file``, ``ref_root``, ``max_models``, ``device``, ...) and
    ``ClusterSettings`` (``replicas``, ``gpus_per_replica``, ``router``, ...); unknown names are an error.
    """
    from dataclasses import fields
    from pathlib import Path

    from fastsovits.cluster.voice_store import RayVoiceStore
    from fastsovits.errors import InvalidParameter
    from fastsovits.server.voices import VoiceRegistry, load_voices_file

    groups = {cls: {f.name for f in fields(cls)} for cls in (ModelSpec, ServerConfig, ClusterSettings)}
    unknown = set(args) - set().union(*groups.values())
    if unknown:
        raise InvalidParameter(f"unknown application arguments {sorted(unknown)}")
    pick = {cls: {k: _coerce(cls, k, v) for k, v in args.items() if k in names} for cls, names in groups.items()}
    for key in ("ref_root", "weights_root", "voices_file"):
        if pick[ServerConfig].get(key):
            pick[ServerConfig][key] = Path(pick[ServerConfig][key])
    spec = ModelSpec(**{"name": "default", **pick[ModelSpec]})
    config = ServerConfig(**pick[ServerConfig])
    settings = ClusterSettings(**pick[ClusterSettings])
    voices, models = VoiceRegistry(), []
    if config.voices_file is not None:
        models = load_voices_file(config.voices_file, voices, spec, config.max_audio_seconds)
        store = RayVoiceStore(settings.namespace)
        for voice in voices.list():
            store.put(voice)
    return build_application(config, spec, models, settings, voices.default)


def _coerce(cls: type, name: str, value):
    """``serve run`` passes ``key=value`` arguments as strings: convert those of bool/int/float fields."""
    from dataclasses import fields

    if not isinstance(value, str):
        return value
    kind = next(f.type for f in fields(cls) if f.name == name)
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", "")
    if kind.startswith("bool"):
        return value.lower() in ("1", "true", "yes", "on")
    if kind.startswith("int"):
        return int(value)
    if kind.startswith("float"):
        return float(value)
    return value
