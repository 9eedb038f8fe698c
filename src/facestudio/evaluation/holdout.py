"""Holding people out of training, for an evaluation that never saw them."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class HoldoutSplit:
    """Training photos, and held-out people (name -> photos) that no training photo shows."""

    train: list[str]
    heldout: dict[str, list[str]]


def holdout_split(
    sets: dict[str, dict[str, list[str]]],
    people: int = 40,
    min_photos: int = 3,
    seed: int = 0,
    from_set: str = "lfw",
) -> HoldoutSplit:
    """Hold out `people` identities of `from_set` that have at least `min_photos` photos.

    Identities are named `set/person`; people of the same name in other sets are held out too,
    so a held-out person never appears in training under another set's label.
    """
    eligible = sorted(p for p, photos in sets[from_set].items() if len(photos) >= min_photos)
    if len(eligible) < people:
        raise ValueError(
            f"only {len(eligible)} people in '{from_set}' have {min_photos} photos or more"
        )
    chosen = sorted(random.Random(seed).sample(eligible, people))
    held = set(chosen)
    heldout = {f"{from_set}/{p}": sorted(sets[from_set][p]) for p in chosen}
    train = sorted(
        photo
        for set_name, identities in sets.items()
        for person, photos in identities.items()
        if person not in held
        for photo in photos
    )
    return HoldoutSplit(train, heldout)


def benchmark_definition(
    split: HoldoutSplit, condition: int = 1, seeds: list[int] | None = None, steps: int = 25
) -> dict:
    """A `facestudio eval` definition: the first `condition` photos condition, the rest are references."""
    return {
        "identities": [
            {"name": name, "condition": photos[:condition], "reference": photos[condition:]}
            for name, photos in split.heldout.items()
        ],
        "seeds": seeds or [0, 1],
        "steps": steps,
    }
