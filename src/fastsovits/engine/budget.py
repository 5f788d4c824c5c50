"""How many cache slots fit: the KV cache is the engine's one large allocation, sized up front."""

from __future__ import annotations

from dataclasses import dataclass

from fastsovits.errors import CapacityError
from fastsovits.limits import MAX_NEW_TOKENS


@dataclass(frozen=True)
class CachePlan:
    num_slots: int
    max_len: int
    bytes: int


def kv_bytes_per_token(n_layers: int, d_model: int, dtype_bytes: int = 4) -> int:
    """K and V of every layer for one cached position."""
    return 2 * n_layers * d_model * dtype_bytes


def available_memory(device: str = "cpu") -> int:
    """Free memory on the device in bytes (CUDA: mem_get_info; CPU: psutil's available memory)."""
    if str(device).startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def plan_cache(
    n_layers: int,
    d_model: int,
    *,
    max_prefix: int = 1000,
    max_slots: int = 64,
    dtype_bytes: int = 4,
    memory_bytes: int | None = None,
    fraction: float = 0.25,
    device: str = "cpu",
) -> CachePlan:
    """Slots of ``max_prefix + MAX_NEW_TOKENS + 1`` positions that fit in ``fraction`` of the free memory."""
    max_len = max_prefix + MAX_NEW_TOKENS + 1
    per_slot = kv_bytes_per_token(n_layers, d_model, dtype_bytes) * max_len
    budget = int((memory_bytes if memory_bytes is not None else available_memory(device)) * fraction)
    slots = min(max_slots, budget // per_slot)
    if slots < 1:
        raise CapacityError(
            f"not enough memory for one cache slot ({per_slot / 2**20:.0f} MiB needed, "
            f"{budget / 2**20:.0f} MiB allowed)"
        )
    return CachePlan(int(slots), max_len, int(slots * per_slot))
