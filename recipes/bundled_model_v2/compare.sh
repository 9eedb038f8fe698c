#!/usr/bin/env bash
# v2 against the shipped model (v1) in one run, on the three things v2 must beat it on before
# it ships (identity on held-out people, two people, styles that carry), each scored by the
# independent recogniser in ../shared/models:
#
#   bash recipes/bundled_model_v2/compare.sh V2_PIPELINE OUT [HELDOUT]
#
# V2_PIPELINE: an export of the run (`facestudio export CHECKPOINT -o DIR`, its sizes declared
# as the recipe README says); OUT: a new folder; HELDOUT: a `facestudio eval` definition of
# held-out people (default ../facestudio-runs/v2/split/heldout.json). Sizes are set by
# STYLE_PEOPLE (default 20) and PAIRS (default 6). Both models run the same cases and seeds.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: compare.sh V2_PIPELINE OUT [HELDOUT]" >&2
    exit 2
fi
v2=$1
out=$2
heldout=${3:-../facestudio-runs/v2/split/heldout.json}
if [ -e "$out" ]; then
    echo "compare.sh: $out exists; give a new folder" >&2
    exit 2
fi
for needed in "$v2/model_index.json" "$heldout"; do
    if [ ! -f "$needed" ]; then
        echo "compare.sh: $needed is missing; give an exported pipeline and a definition" >&2
        exit 2
    fi
done
bundled=$(python -c "from facestudio.interfaces.generate_command import default_model; print(default_model())")
mkdir -p "$out"
for model in v1 v2; do
    folder=$([ "$model" = v1 ] && echo "$bundled" || echo "$v2")
    facestudio eval --model "$folder" --benchmark "$heldout" --out "$out/eval-$model" \
        --ablations identity
    python benchmarks/style_carry.py --heldout "$heldout" --model "$folder" \
        --people "${STYLE_PEOPLE:-20}" --out "$out/style-$model.json" > "$out/style-$model.md"
    python benchmarks/two_person_framing.py --heldout "$heldout" --model "$folder" \
        --pairs "${PAIRS:-6}" --out "$out/two-person-$model.json" > "$out/two-person-$model.md"
done
for model in v1 v2; do
    echo "## $model"
    cat "$out/eval-$model/results.md" "$out/style-$model.md" "$out/two-person-$model.md"
done | tee "$out/summary.md"
