#!/usr/bin/env bash
# Which package index `make setup` installs torch from; sourced by scripts/setup.sh, or run as
#   scripts/torch_index.sh PYTHON     (prints the --index-url arguments for pip, or nothing)
#
#   TORCH_INDEX set          -> that index (e.g. a CUDA build: https://download.pytorch.org/whl/cu128)
#   an NVIDIA GPU present    -> the default index (on Linux x86-64 its torch is the CUDA build)
#   no NVIDIA GPU            -> $TORCH_CPU_INDEX (default https://download.pytorch.org/whl/cpu), but only
#                               when installing from the default index would pull CUDA libraries
#                               (nvidia-* packages); where it already gives a CPU build (macOS, aarch64,
#                               a mirror or wheel folder that holds the CPU wheel) nothing changes.
#                               TORCH_CPU_INDEX= (empty) turns this off.
TORCH_CPU_INDEX_DEFAULT="https://download.pytorch.org/whl/cpu"

# pip's dry-run report (JSON on stdin) -> exit 0 when it would install an nvidia-* package
_torch_report_pulls_cuda() {
  "$1" -c 'import json, sys
report = json.load(sys.stdin)
names = [item["metadata"]["name"].lower() for item in report.get("install", [])]
sys.exit(0 if any(n.startswith("nvidia-") for n in names) else 1)'
}

torch_index_args() {
  local python="$1" spec="${TORCH_SPEC:-torch}"
  local cpu_index="${TORCH_CPU_INDEX-$TORCH_CPU_INDEX_DEFAULT}"
  if [ -n "${TORCH_INDEX:-}" ]; then
    echo "--index-url $TORCH_INDEX"
    return 0
  fi
  if [ -z "$cpu_index" ] || command -v nvidia-smi >/dev/null 2>&1; then
    return 0
  fi
  if "$python" -m pip install --dry-run --quiet --ignore-installed --report - "$spec" 2>/dev/null \
      | _torch_report_pulls_cuda "$python" 2>/dev/null; then
    echo "--index-url $cpu_index"
  fi
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  torch_index_args "${1:-python3}"
fi
