"""The engine deployment's request router: model holders first, then voice affinity, else power-of-two.

For each request (an ``EngineJob``):

1. **Model**: the replicas that hold its model (reported by the replicas every few seconds, and
   learned from this router's own decisions in between) are the candidates; when none does, all are.
2. **Voice** (``RouterKind.AFFINITY``): the replica that first served the voice is chosen unless
   its queue is more than ``imbalance_threshold`` requests longer than the least-loaded candidate's.
3. Otherwise power-of-two-choices: two random candidates, the shorter queue wins.

A retry names the replica that failed (``job.avoid``); it is left out while another exists.
Decisions are counted in ``routing_state.DECISIONS`` (rendered on the ingress's ``/metrics``).
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict

from ray.serve.request_router import PendingRequest, ReplicaID, RequestRouter, RunningReplica

from fastsovits.cluster import routing_state
from fastsovits.cluster.messages import routing_key
from fastsovits.cluster.settings import RouterKind

MAX_HOMES = 100_000  # voice -> replica entries this router remembers (LRU)


class FastSovitsRouter(RequestRouter):
    def initialize_state(
        self, kind: str = RouterKind.AFFINITY.value, imbalance_threshold: int = 4, stats_period_s: float = 2.0, **_
    ) -> None:
        self._kind = RouterKind(kind)
        self._threshold = imbalance_threshold
        self._learned_ttl = 3 * stats_period_s  # a decision stands in for the replica's report this long
        self._voice_home: OrderedDict[str, ReplicaID] = OrderedDict()
        self._model_homes: dict[str, dict[ReplicaID, float]] = {}
        routing_state.ROUTERS.add(self)

    def replicas(self) -> list[RunningReplica]:
        return list(self._replicas.values())

    # ----------------------------------------------------------------------------- what replicas hold
    def _holds_model(self, r: RunningReplica, model: str) -> bool:
        stats = r.routing_stats or {}
        learned = self._model_homes.get(model, {}).get(r.replica_id)
        return model in stats.get("models", ()) or (
            learned is not None and time.monotonic() - learned < self._learned_ttl
        )

    def _home(self, key: str, pool: list[RunningReplica]) -> RunningReplica | None:
        home = self._voice_home.get(key)
        for r in pool:
            if r.replica_id == home:
                return r
        reported = [r for r in pool if key in (r.routing_stats or {}).get("voices", ())]
        return reported[0] if reported else None

    async def _queue_lens(self, pool: list[RunningReplica]) -> dict[ReplicaID, int]:
        lens: dict[ReplicaID, int] = {}
        missing = []
        for r in pool:
            q = self._replica_queue_len_cache.get(r.replica_id) if self._use_replica_queue_len_cache else None
            if q is None:
                missing.append(r)
            else:
                lens[r.replica_id] = q
        if missing:
            for r, q in await self._probe_queue_lens(missing, 0):
                if q is not None:
                    lens[r.replica_id] = q
        return lens

    # ----------------------------------------------------------------------------- choice
    async def choose_replicas(
        self, candidate_replicas: list[RunningReplica], pending_request: PendingRequest | None = None
    ) -> list[list[RunningReplica]]:
        job = routing_key(pending_request.args, pending_request.kwargs) if pending_request is not None else None
        pool = list(candidate_replicas)
        if job is None or not pool:
            return [self._pow2(pool)]
        if job.avoid is not None and len(pool) > 1:
            pool = [r for r in pool if r.replica_id.unique_id != job.avoid] or pool
        holders = [r for r in pool if self._holds_model(r, job.model)]
        if holders and len(holders) < len(pool):
            routing_state.DECISIONS.labels("model").inc()
        pool = holders or pool
        rest = [r for r in candidate_replicas if r not in pool]  # last rank: only when every holder is full
        if self._kind is RouterKind.AFFINITY and len(pool) > 1 and job.voice is not None:
            home = self._home(job.voice, pool)
            if home is not None:
                lens = await self._queue_lens(pool)
                least = min(lens.values(), default=0)
                if lens.get(home.replica_id, 0) <= least + self._threshold:
                    routing_state.DECISIONS.labels("affinity").inc()
                    return [[home], self._pow2([r for r in pool if r is not home]), rest]
                routing_state.DECISIONS.labels("spill").inc()
                return [self._pow2([r for r in pool if r is not home]), [home], rest]
        routing_state.DECISIONS.labels("pow2").inc()
        return [self._pow2(pool), rest]

    @staticmethod
    def _pow2(pool: list[RunningReplica]) -> list[RunningReplica]:
        return random.sample(pool, 2) if len(pool) > 2 else random.sample(pool, len(pool))

    # ----------------------------------------------------------------------------- learning
    def on_request_routed(self, pending_request: PendingRequest, replica_id: ReplicaID, result) -> None:
        job = routing_key(pending_request.args, pending_request.kwargs) if pending_request is not None else None
        if job is None:
            return
        self._model_homes.setdefault(job.model, {})[replica_id] = time.monotonic()
        if job.voice is None:
            return
        if job.voice not in self._voice_home or job.avoid is not None:
            self._voice_home[job.voice] = replica_id  # the replica that first served it (or took it over)
        self._voice_home.move_to_end(job.voice)
        while len(self._voice_home) > MAX_HOMES:
            self._voice_home.popitem(last=False)

    def _forget(self, replica_id: ReplicaID) -> None:
        for key in [k for k, r in self._voice_home.items() if r == replica_id]:
            del self._voice_home[key]
        for homes in self._model_homes.values():
            homes.pop(replica_id, None)

    def on_replica_actor_died(self, replica_id: ReplicaID) -> None:
        super().on_replica_actor_died(replica_id)
        self._forget(replica_id)

    def update_replicas(self, replicas: list[RunningReplica]) -> None:
        gone = set(self._replica_id_set) - {r.replica_id for r in replicas}
        super().update_replicas(replicas)
        for rid in gone:
            self._forget(rid)
