#!/usr/bin/env bash
# Create or reuse the virtual environment .venv inside the checkout and install FaceStudio into it.
# torch is installed first, pinned, so that pip never pulls a multi-GB CUDA build by accident.
# GPU users: create .venv and install your CUDA build of torch==2.13.0 into it before running this.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.facestudio-installed
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)${1:-}"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e ".${1:-}"
  echo "$wanted" > "$stamp"
fi
