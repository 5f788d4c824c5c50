#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one short run (for a session that has the device machine):
#   1. the CUDA-graph decode step against eager steps on the tiny official-format model;
#   2. T2S tokens/s and end-to-end figures on the full-size random files, graphs on and off.
# Usage: scripts/gpu_check.sh [WORKDIR]   (WORKDIR: where the full-size random files go; default /tmp/fullsize)
# Prints pytest's summary and two JSON documents; writes nothing into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR="${1:-/tmp/fullsize}"
PY="${PYTHON:-.venv/bin/python}"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: nothing to check')"
"$PY" -m pytest -q tests/engine/test_step_graphs.py -rs
for graphs in on off; do
  PYTHONPATH=src "$PY" benchmarks/throughput.py --device cuda --workdir "$WORKDIR" --batch-sizes 1,8,32,128 \
    --tokens 100 --max-len 512 --cuda-graphs "$graphs" --json
done
