#!/usr/bin/env bash
# The main job: set up, then generate a new image of the person in a photo with the small model
# bundled in the package (offline). Default photo: scikit-image's public-domain astronaut.
#   bash scripts/demo.sh [PHOTO [STYLE_IMAGE]]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p outputs
stamp="$(date +%Y%m%d-%H%M%S)"
if [ $# -gt 0 ]; then
  person_args=(--face "$1")
  name="$(basename "${1%.*}")"
else
  person_args=(--example)
  name=astronaut
fi
style_args=()
if [ $# -gt 1 ]; then
  style_args=(--style "$2")
fi
.venv/bin/facestudio generate "${person_args[@]}" "${style_args[@]}" --seed 0 --num 4 \
  -o "outputs/${name}-generated-${stamp}.png"
