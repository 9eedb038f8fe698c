#!/usr/bin/env bash
# The one device command of a GPU window (repository root as working folder):
#
#     bash recipes/identity_loss/gpu/run_on_device.sh TOTAL_S [SUITE_S]
#     carry: [".gpu-pack", "benchmarks/gpu/wheels/<wheel>", ...]
#
# Runs the GPU suite first when SUITE_S > 0 (benchmarks/gpu/run_on_device.sh, which installs
# the carried wheels), then the identity-loss ablation arms on the rest of TOTAL_S seconds
# (gpu/ablation.py keeps 60 s of it for exporting). Everything that comes back is under $OUT.
set -uo pipefail
cd "$(dirname "$0")/../../.."
start=$(date +%s)
total="${1:?TOTAL_S, the seconds this command may take}"
suite="${2:-0}"
out="${OUT:-outputs/identity-gpu}"
mkdir -p "$out"
site=/tmp/facestudio-gpu-site
if [ "$suite" -gt 0 ]; then
    bash benchmarks/gpu/run_on_device.sh "$suite"
else
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" benchmarks/gpu/wheels/*.whl || exit 2
fi
export PYTHONPATH="$site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
left=$((total - ($(date +%s) - start)))
echo "identity ablation: $left s left of $total"
python3 recipes/identity_loss/gpu/ablation.py --pack .gpu-pack --budget-s "$left" --out "$out"
