#!/usr/bin/env bash
# The one command to give the device tool (repository root as working folder):
#
#     bash benchmarks/gpu/run_on_device.sh [BUDGET_S [SUITE OPTIONS...]]
#     carry: ["benchmarks/gpu/wheels"]
#
# Installs the carried wheels (python benchmarks/gpu/wheels.py made them) into a folder of
# their own, runs the GPU suite under a budget (default 200 s) with a hard stop 40 s later,
# and writes the report and the log to $OUT (what comes back), else to benchmarks/results.
set -uo pipefail
cd "$(dirname "$0")/../.."
budget="${1:-200}"
shift $(($# > 0 ? 1 : 0))  # the rest goes to gpu_suite.py (--sections A,B for a rerun of some)
out="${OUT:-benchmarks/results}"
site=/tmp/facestudio-gpu-site
mkdir -p "$out"
if ! compgen -G "benchmarks/gpu/wheels/*.whl" >/dev/null; then
    echo "gpu suite: no wheels in benchmarks/gpu/wheels; run python benchmarks/gpu/wheels.py here and carry that folder" >&2
    exit 2
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" benchmarks/gpu/wheels/*.whl || {
    echo "gpu suite: installing the carried wheels failed (see above)" >&2
    exit 2
}
export PYTHONPATH="$site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader
fi
timeout -k 10 "$((budget + 40))" python3 benchmarks/gpu_suite.py \
    --budget-s "$budget" --results-dir "$out" "$@" 2>&1 | tee "$out/gpu-suite.log"
status=${PIPESTATUS[0]}
echo "gpu suite exit status $status; results in $out"
exit "$status"
