"""Process settings made before torch loads, and the CPU's bf16 capability."""

from __future__ import annotations

import os
import subprocess
import sys

from fastsovits import runtime


def test_passive_wait_is_set_before_torch_and_never_overrides() -> None:
    code = ("import os, fastsovits.runtime as r; ok = r.prefer_passive_omp_wait(); "
            "print(ok, os.environ.get('OMP_WAIT_POLICY')); import torch; print(r.prefer_passive_omp_wait())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["True", "PASSIVE", "False"]  # set first; once torch is loaded it is too late
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split()[1] == "ACTIVE"


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
