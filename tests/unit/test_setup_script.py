"""`make setup` installs the CPU build of torch where there is no NVIDIA GPU (scripts/torch_index.sh).

pip and nvidia-smi are stand-ins here: no network, nothing installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "torch_index.sh"


def _fake_python(tmp_path: Path, installs: list[str]) -> Path:
    """A python whose `-m pip install --dry-run --report -` lists ``installs``; anything else runs the real one."""
    report = json.dumps({"install": [{"metadata": {"name": n, "version": "1"}} for n in installs]})
    (tmp_path / "report.json").write_text(report)
    fake = tmp_path / "python"
    fake.write_text(
        f'#!/bin/sh\nif [ "$1" = "-m" ]; then cat "{tmp_path / "report.json"}"; exit 0; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    fake.chmod(0o755)
    return fake


def _run(tmp_path: Path, installs: list[str], gpu: bool, **env: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if gpu:
        (bin_dir / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
    base = {k: v for k, v in os.environ.items() if not k.startswith("TORCH_")}
    base["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    out = subprocess.run(
        ["bash", str(SCRIPT), str(_fake_python(tmp_path, installs))],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


CUDA_TORCH = ["torch", "nvidia-cublas-cu12", "sympy"]
CPU_TORCH = ["torch", "sympy"]


def test_cpu_index_only_where_the_default_would_pull_cuda_and_there_is_no_gpu(tmp_path) -> None:
    assert _run(tmp_path, CUDA_TORCH, gpu=False) == "--index-url https://download.pytorch.org/whl/cpu"
    assert _run(tmp_path, CPU_TORCH, gpu=False) == ""  # the default index already gives a CPU build
    assert _run(tmp_path, CUDA_TORCH, gpu=True) == ""  # a GPU: keep the CUDA build


def test_indexes_can_be_chosen(tmp_path) -> None:
    assert (
        _run(tmp_path, CUDA_TORCH, gpu=False, TORCH_CPU_INDEX="https://mirror/cpu") == "--index-url https://mirror/cpu"
    )
    assert _run(tmp_path, CUDA_TORCH, gpu=False, TORCH_CPU_INDEX="") == ""
    assert _run(tmp_path, CPU_TORCH, gpu=True, TORCH_INDEX="https://idx/cu128") == "--index-url https://idx/cu128"


def test_setup_uses_it() -> None:
    setup = (SCRIPT.parent / "setup.sh").read_text()
    assert "source scripts/torch_index.sh" in setup and "torch_index_args" in setup
