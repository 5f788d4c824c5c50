"""Process settings made before torch loads, and the CPU's bf16 capability."""

from __future__ import annotations

import os
import subprocess
import sys

from fastsovits import runtime


def test_openmp_defaults_are_set_before_torch_and_never_override() -> None:
    code = (
        "import os, fastsovits.runtime as r; ok = r.configure_openmp(); "
        "print(ok, os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT')); "
        "import torch; print(r.configure_openmp())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["True", "PASSIVE", "20000", "False"]  # set first; once torch is loaded it is too late
    env["OMP_WAIT_POLICY"], env["GOMP_SPINCOUNT"] = "ACTIVE", "5"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split()[1:3] == ["ACTIVE", "5"]


def test_native_bf16_follows_the_cpu_flags(monkeypatch, tmp_path) -> None:
    from pathlib import Path

    fake = tmp_path / "cpuinfo"
    real_read = Path.read_text

    def read(self, *a, **k):
        return real_read(fake, *a, **k) if str(self) == "/proc/cpuinfo" else real_read(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", read)
    fake.write_text("processor: 0\nflags\t\t: fpu avx2 fma avx512f\n")
    assert runtime.cpu_has_native_bf16() is False
    fake.write_text("processor: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert runtime.cpu_has_native_bf16() is True
    fake.write_text("processor: 0\nflags\t\t: fpu amx_bf16 amx_tile\n")
    assert runtime.cpu_has_native_bf16() is True
