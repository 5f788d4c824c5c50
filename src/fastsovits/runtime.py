"""Process settings that must be made before torch is imported, and facts about the CPU.

OpenMP (:func:`configure_openmp`, applied by the CLI and so the server): on a CPU the engine runs
every heavy model call on one compute thread (``engine/compute_gate``), so the process has one
OpenMP team. Two settings make that team fast without letting it hog the cores when idle:

- ``GOMP_SPINCOUNT=20000``: between two parallel regions a worker spins this many pauses (a fraction
  of a millisecond) before it sleeps. A T2S step is hundreds of short regions; sleeping after each
  one made a batch-1 step about twice as slow (docs/engine.md, "CPU: one compute thread").
- ``OMP_WAIT_POLICY=PASSIVE``: once the process has more OpenMP threads than cores (another thread
  ran torch work of its own) libgomp uses a short "throttled" spin instead of ``GOMP_SPINCOUNT``:
  100 pauses by default, 1000 with ACTIVE, none with PASSIVE, which then sleeps at once rather than
  spin against the team that works.

An explicit setting is never overridden. Library users call :func:`configure_openmp` first thing,
or export the variables themselves.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OPENMP_DEFAULTS = {"GOMP_SPINCOUNT": "20000", "OMP_WAIT_POLICY": "PASSIVE"}


def configure_openmp() -> bool:
    """Set :data:`OPENMP_DEFAULTS` where unset; False when torch is loaded already (too late to matter)."""
    if "torch" in sys.modules:
        return False
    for name, value in OPENMP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    return True


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux); empty where that file does not exist."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    return frozenset(
        next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    )


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512_BF16 or AMX_BF16); elsewhere torch emulates it slowly.

    Answers False where the flags cannot be read (no /proc/cpuinfo).
    """
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})
