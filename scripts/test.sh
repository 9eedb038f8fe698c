#!/usr/bin/env bash
# Set up (with the test extras), lint, then run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "[test]"
# The browser tests drive Debian's Chromium (no browser download is possible offline); the
# cluster tests start Debian's redis-server (skipped without it, failed without it under CI).
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
.venv/bin/ruff check src tests benchmarks recipes
# The tests run in parallel processes (pytest-xdist), a whole module per process at a time so
# that a module's fixtures (a Ray cluster, a live server) start once; each process gets an equal
# share of the cores for torch. `bash scripts/test.sh -n 0` runs them in this one process.
cores="$(nproc)"
if { read -r quota period < /sys/fs/cgroup/cpu.max; } 2>/dev/null && [ "$quota" != max ]; then
  allowed=$(( (quota + period - 1) / period ))  # a container's CPU quota, which nproc ignores
  cores=$(( allowed < cores ? allowed : cores ))
fi
workers=$(( cores < 4 ? cores : 4 ))
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( cores / workers ))}"
.venv/bin/python -m pytest -n "$workers" --dist loadscope "$@"
