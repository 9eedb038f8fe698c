#!/usr/bin/env bash
# The main job: set up, then analyse a photo (default: scikit-image's public-domain astronaut)
# and write the photo with its faces drawn, plus a JSON report, to outputs/.
#   bash scripts/demo.sh [PHOTO]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p outputs
stamp="$(date +%Y%m%d-%H%M%S)"
if [ $# -gt 0 ]; then
  source_args=("$1")
  name="$(basename "${1%.*}")"
else
  source_args=(--example)
  name=astronaut
fi
.venv/bin/facestudio faces "${source_args[@]}" \
  --draw "outputs/${name}-faces-${stamp}.png" --json "outputs/${name}-faces-${stamp}.json"
echo "wrote outputs/${name}-faces-${stamp}.png and .json"
