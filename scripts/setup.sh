#!/usr/bin/env bash
# Create or reuse the virtual environment .venv inside the checkout and install FaceStudio into it.
# torch is installed first, pinned, so that pip never pulls a multi-GB CUDA build by accident.
# GPU users: create .venv and install your CUDA build of torch==2.13.0 into it before running this.
#   bash scripts/setup.sh ["[extra,...]"]
# Nothing is installed when .venv already holds this pyproject.toml's install with those extras
# (the stamp .venv/.facestudio-installed: the file's hash, then one installed extra per line), so
# `scripts/demo.sh` after `scripts/test.sh` starts at once.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.facestudio-installed
extras() { tr -d '[] ' | tr ',' '\n' | sed '/^$/d' | sort -u; }
wanted="$(printf '%s' "${1:-}" | extras)"
hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
first="$(head -n 1 "$stamp" 2>/dev/null || true)"
current=no installed=""
if [ "${first:0:64}" = "$hash" ]; then  # an older stamp held "HASH[extras]" on one line
  current=yes installed="$({ printf '%s\n' "${first:64}"; tail -n +2 "$stamp"; } | extras)"
fi
missing="$(comm -23 <(printf '%s\n' "$wanted" | sed '/^$/d') <(printf '%s\n' "$installed" | sed '/^$/d'))"
if [ "$current" = no ] || [ -n "$missing" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e ".${1:-}"
  { echo "$hash"; printf '%s\n%s\n' "$installed" "$wanted" | sed '/^$/d' | sort -u; } > "$stamp"
fi
