"""Per-process routing state the ingress reads: the routers alive here and their decision counters.

Kept apart from ``router.py`` because Ray pickles the router's module by value (locks and
registries cannot travel); the router reaches these through this module, imported by reference.
"""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter

ROUTING = CollectorRegistry(auto_describe=True)
DECISIONS = Counter(
    "fastsovits_cluster_routing_decisions",
    "engine-replica choices by reason (affinity: the "
    "voice's replica; spill: its queue was too long; pow2: no home or plain router; model: "
    "the model's holders only)",
    ["reason"],
    registry=ROUTING,
)
ROUTERS: weakref.WeakSet = weakref.WeakSet()
