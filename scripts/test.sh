#!/usr/bin/env bash
# Set up (with the test extras), lint, then run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "[test]"
.venv/bin/ruff check src tests benchmarks recipes
.venv/bin/python -m pytest "$@"
