"""Step 1 of the bundled small model: hold out evaluation people, choose validation people,
write the training manifest and the evaluation benchmarks.

    python recipes/bundled_model/make_split.py --manifest ../shared/data/MANIFEST.json --out DIR

`train.jsonl` lists every training photo with its person (`set/id`), so that prepared samples
keep who they show (paired-photo training needs it); `train.txt` is the same list of paths.
`heldout.json` is the evaluation benchmark (40 people, never trained on, never used to choose
a checkpoint); `validation.json` is a second one over other people, for choosing checkpoints.
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
    parser.add_argument("--validation-people", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sets = load_manifest_sets(args.manifest)
    split = holdout_split(sets, people=args.people, min_photos=3, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "heldout.json").write_text(json.dumps(benchmark_definition(split), indent=2))
    if args.validation_people:
        # Drawn from the people still in training, then taken out of it: the held-out 40 stay
        # exactly those of seed `--seed`.
        remaining = {name: people for name, people in sets.items()}
        remaining["lfw"] = {
            p: photos for p, photos in sets["lfw"].items() if f"lfw/{p}" not in split.heldout
        }
        validation = holdout_split(
            remaining, people=args.validation_people, min_photos=3, seed=args.seed + 1
        )
        split = type(split)(sorted(set(split.train) & set(validation.train)), split.heldout)
        (out / "validation.json").write_text(
            json.dumps(benchmark_definition(validation), indent=2)
        )
    owner = {
        photo: f"{set_name}/{person}"
        for set_name, identities in sets.items()
        for person, photos in identities.items()
        for photo in photos
    }
    (out / "train.txt").write_text("\n".join(split.train) + "\n")
    with open(out / "train.jsonl", "w") as manifest:
        for photo in split.train:
            manifest.write(json.dumps({"path": photo, "person": owner[photo]}) + "\n")
    print(f"{len(split.train)} training photos, {len(split.heldout)} held-out people -> {out}")


if __name__ == "__main__":
    main()
