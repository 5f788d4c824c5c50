"""What the operator chooses for a Ray deployment (one source for every cluster default)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from fastsovits.errors import InvalidParameter


class RouterKind(str, Enum):
    AFFINITY = "affinity"  # model holders first, then the voice's replica unless its queue is much longer
    POW2 = "pow2"  # model holders first, then plain power-of-two-choices by queue length


@dataclass(frozen=True)
class ClusterSettings:
    ray_address: str | None = None  # None: start a local Ray instance
    namespace: str = "fastsovits"
    app_name: str = "fastsovits"
    replicas: int = 1
    min_replicas: int | None = None  # both set: autoscaling between them
    max_replicas: int | None = None
    target_ongoing: float = 8.0  # autoscaling target of ongoing requests per replica
    gpus_per_replica: float = 0.0
    cpus_per_replica: float = 1.0
    replica_queue: int = 16  # requests a replica runs at once (Ray's max_ongoing_requests)
    max_queued: int = 64  # requests waiting at the ingress for a replica; beyond it 503 + Retry-After
    router: RouterKind = RouterKind.AFFINITY
    imbalance_threshold: int = 4  # the voice's replica is skipped when its queue is this much longer than the least
    stats_period_s: float = 2.0  # how often replicas report resident models and voices to the router
    ingress_replicas: int = 1
    ingress_cpus: float = 0.5
    local_cpus: int | None = None  # local Ray instance only: CPUs it may schedule (None: all)
    local_memory_bytes: int | None = None
    object_store_bytes: int | None = None
    health_check_period_s: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.router, RouterKind):
            object.__setattr__(self, "router", RouterKind(self.router))  # from a config file's string
        if self.replicas < 1:
            raise InvalidParameter(f"--replicas={self.replicas} must be at least 1")
        if (self.min_replicas is None) != (self.max_replicas is None):
            raise InvalidParameter("--min-replicas and --max-replicas go together")
        if self.min_replicas is not None and not 0 < self.min_replicas <= self.max_replicas:
            raise InvalidParameter(
                f"need 0 < --min-replicas ({self.min_replicas}) <= --max-replicas ({self.max_replicas})"
            )
        if self.replica_queue < 1 or self.max_queued < 0:
            raise InvalidParameter("--replica-queue must be >= 1 and --max-queued >= 0")
        if self.imbalance_threshold < 0:
            raise InvalidParameter("--affinity-threshold must be >= 0")
        if self.gpus_per_replica < 0 or self.cpus_per_replica < 0:
            raise InvalidParameter("--gpus-per-replica and --cpus-per-replica must be >= 0")

    @property
    def autoscaling(self) -> dict | None:
        if self.min_replicas is None:
            return None
        return {
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "target_ongoing_requests": self.target_ongoing,
        }
