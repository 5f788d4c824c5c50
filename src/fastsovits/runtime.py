"""Process-level settings that must be made before torch is imported.

``OMP_WAIT_POLICY=PASSIVE``: the engine runs its T2S steps and its SoVITS decodes from two
threads, each with its own OpenMP team. With the default (active) policy an idle team keeps
spinning on the cores for a while after each parallel region, which steals them from the team
that works next; passive waiting measured 4-6 % faster end to end on a 2-core CPU (docs/engine.md).
The CLI (and so the server) applies it; library users can call :func:`prefer_passive_omp_wait`
first thing, or export the variable themselves. An explicit setting is never overridden.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def prefer_passive_omp_wait() -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE unless it is set already; False when torch is loaded (too late)."""
    if "torch" in sys.modules:
        return False
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return True


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux); empty where that file does not exist."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    return frozenset(next((line.split(":", 1)[1].split() for line in text.splitlines()
                           if line.startswith("flags")), []))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512_BF16 or AMX_BF16); elsewhere torch emulates it slowly.

    Answers False where the flags cannot be read (no /proc/cpuinfo).
    """
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})
