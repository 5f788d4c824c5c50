"""``fastsovits serve --ray``: the options ``add_ray_args`` puts on the ``serve`` parser, and ``run_cluster``."""

from __future__ import annotations

import argparse

from fastsovits.cluster.settings import ClusterSettings, RouterKind
from fastsovits.server.config import ModelSpec, ServerConfig


def add_ray_args(sv: argparse.ArgumentParser) -> None:
    g = sv.add_argument_group("Ray Serve (--ray; needs the 'ray' extra: pip install 'fastsovits[ray]')")
    g.add_argument(
        "--ray",
        action="store_true",
        help="serve through Ray Serve: an ingress in front of engine replicas (one engine each)",
    )
    g.add_argument(
        "--ray-address", help="join this Ray cluster (e.g. auto, or HEAD_IP:6379); default: start a local one"
    )
    g.add_argument("--replicas", type=int, default=1, help="engine replicas (default %(default)s)")
    g.add_argument("--min-replicas", type=int, help="autoscale from this many engine replicas (with --max-replicas)")
    g.add_argument("--max-replicas", type=int, help="autoscale up to this many engine replicas")
    g.add_argument(
        "--target-ongoing",
        type=float,
        default=8.0,
        help="autoscaling target: ongoing requests per replica (default %(default)s)",
    )
    g.add_argument("--gpus-per-replica", type=float, default=0.0, help="GPUs each engine replica reserves (e.g. 1)")
    g.add_argument(
        "--cpus-per-replica",
        type=float,
        default=1.0,
        help="CPUs each engine replica reserves; on CPU also its torch threads (default %(default)s)",
    )
    g.add_argument(
        "--replica-queue",
        type=int,
        default=16,
        help="requests one replica runs at once; they batch together (default %(default)s)",
    )
    g.add_argument(
        "--max-queued",
        type=int,
        default=64,
        help="requests waiting for a free replica before 503 + Retry-After (default %(default)s)",
    )
    g.add_argument(
        "--router",
        choices=[k.value for k in RouterKind],
        default=RouterKind.AFFINITY.value,
        help="affinity: a voice stays on the replica that holds its features; pow2: power-of-two only",
    )
    g.add_argument(
        "--affinity-threshold",
        type=int,
        default=4,
        help="leave the voice's replica when its queue is this many requests longer than the "
        "least-loaded replica's (default %(default)s)",
    )
    g.add_argument("--ray-cpus", type=int, help="local Ray instance only: CPUs it may use (default: all)")
    g.add_argument("--ray-object-store-mb", type=int, help="local Ray instance only: object store size")


def settings_from_args(a: argparse.Namespace) -> ClusterSettings:
    return ClusterSettings(
        ray_address=a.ray_address,
        replicas=a.replicas,
        min_replicas=a.min_replicas,
        max_replicas=a.max_replicas,
        target_ongoing=a.target_ongoing,
        gpus_per_replica=a.gpus_per_replica,
        cpus_per_replica=a.cpus_per_replica,
        replica_queue=a.replica_queue,
        max_queued=a.max_queued,
        router=RouterKind(a.router),
        imbalance_threshold=a.affinity_threshold,
        local_cpus=a.ray_cpus,
        object_store_bytes=a.ray_object_store_mb * 2**20 if a.ray_object_store_mb else None,
    )


def run_cluster(a: argparse.Namespace, config: ServerConfig, spec: ModelSpec) -> int:
    """What ``fastsovits serve --ray`` runs once the plain server's ``config`` and default model are built."""
    import logging

    from fastsovits.cluster.app import run
    from fastsovits.server.voices import VoiceRegistry, load_voices_file

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(a)
    voices, models = VoiceRegistry(), []
    if config.voices_file is not None:
        models = load_voices_file(config.voices_file, voices, spec, config.max_audio_seconds)
    run(config, spec, models, settings, voices.list(), voices.default)
    return 0
