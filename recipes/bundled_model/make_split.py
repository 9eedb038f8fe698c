"""Step 1 of the bundled small model: hold out evaluation people, write the training manifest
and the evaluation benchmark.

    python recipes/bundled_model/make_split.py --manifest ../shared/data/MANIFEST.json --out DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facestudio.evaluation.holdout import benchmark_definition, holdout_split
from facestudio.evaluation.verification import load_manifest_sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sets = load_manifest_sets(args.manifest)
    split = holdout_split(sets, people=args.people, min_photos=3, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.txt").write_text("\n".join(split.train) + "\n")
    (out / "heldout.json").write_text(json.dumps(benchmark_definition(split), indent=2))
    print(f"{len(split.train)} training photos, {len(split.heldout)} held-out people -> {out}")


if __name__ == "__main__":
    main()
