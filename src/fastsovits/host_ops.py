"""Tensor helpers for threads that only coordinate (callers, text frontend), single-threaded by design.

On a CPU every heavy call runs on the one compute thread (``engine/compute_gate``). A torch op on a
large enough tensor in any other thread starts an OpenMP team in that thread, and with more OpenMP
threads than cores libgomp stops spinning between parallel regions, which makes the compute thread's
T2S steps much slower (docs/engine.md). These helpers build the frontend's feature tensors with numpy
(single-threaded) and hand them to torch without a copy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def zeros(rows: int, cols: int) -> torch.Tensor:
    """``torch.zeros(rows, cols)`` (float32, CPU) without a parallel fill."""
    return torch.from_numpy(np.zeros((rows, cols), dtype=np.float32))


def cat(parts: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """``torch.cat(parts, dim)``; CPU tensors without autograd are joined by numpy (no parallel copy)."""
    if (
        all(p.device.type == "cpu" and not p.requires_grad for p in parts)
        and len({p.dtype for p in parts}) == 1
        and parts[0].dtype != torch.bfloat16
    ):
        return torch.from_numpy(np.concatenate([p.numpy() for p in parts], axis=dim))
    return torch.cat(list(parts), dim=dim)
