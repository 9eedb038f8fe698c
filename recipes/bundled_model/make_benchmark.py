"""Step 5 of the bundled small model: the evaluation benchmark with style images.

Adds to the held-out people of `make_split.py` a few style inputs (masked portraits of
*training* people, from the prepared data, so no held-out face leaks in), a two-person style
image (two of them side by side) and two-person cases pairing held-out people.

    python recipes/bundled_model/make_benchmark.py --split RUN/split --prepared RUN/prepared-64 --out RUN/benchmark
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from facestudio.data.dataset import ReconstructionDataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True, help="folder with heldout.json")
    parser.add_argument("--prepared", required=True, help="prepared training data")
    parser.add_argument("--out", required=True)
    parser.add_argument("--styles", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--group-photo",
        help="also pair the people on this real two-person photo (faces masked by the model)",
    )
    args = parser.parse_args()

    definition = json.loads((Path(args.split) / "heldout.json").read_text())
    dataset = ReconstructionDataset(args.prepared)
    rng = np.random.default_rng(args.seed)
    picks = [int(i) for i in rng.choice(len(dataset), size=args.styles + 2, replace=False)]
    portraits = [Image.fromarray(dataset.sample(index).style) for index in picks]

    out = Path(args.out)
    (out / "styles").mkdir(parents=True, exist_ok=True)
    styles = []
    for i, portrait in enumerate(portraits[: args.styles]):
        name = f"styles/portrait-{i}.png"
        portrait.save(out / name)
        styles.append(name)
    left, right = portraits[-2:]
    pair = Image.new("RGB", (left.width + right.width, left.height))
    pair.paste(left, (0, 0))
    pair.paste(right, (left.width, 0))
    pair.save(out / "styles/two-people.png")

    names = [identity["name"] for identity in definition["identities"]]
    definition["styles"] = [None, *styles]
    definition["multi_person"] = [
        {
            "people": [names[2 * i], names[2 * i + 1]],
            "style": "styles/two-people.png",
            "width": pair.width,
            "height": pair.height,
        }
        for i in range(min(args.pairs, len(names) // 2))
    ]
    if args.group_photo:
        # No size: the output takes the one the model declares for two people, as a user's does
        # (pipeline/sizes.py); the group photo is cropped to it.
        definition["multi_person"] += [
            {"people": case["people"], "style": str(Path(args.group_photo).resolve())}
            for case in list(definition["multi_person"])
        ]
    (out / "benchmark.json").write_text(json.dumps(definition, indent=2))
    print(
        f"{len(names)} people, {len(styles)} styles + none, {len(definition['multi_person'])} pairs -> {out}"
    )


if __name__ == "__main__":
    main()
