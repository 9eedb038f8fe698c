#!/usr/bin/env bash
# Set up (with the test extras), lint, then run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "[test]"
# The browser tests drive Debian's Chromium (no browser download is possible offline).
if ! command -v chromium >/dev/null && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check src tests benchmarks recipes
.venv/bin/python -m pytest "$@"
