"""Held-out people never reach training."""

from __future__ import annotations

import pytest

from facestudio.evaluation.holdout import benchmark_definition, holdout_split


def _sets():
    lfw = {f"p{i}": [f"lfw/p{i}/{k}.jpg" for k in range(1 + i % 4)] for i in range(40)}
    return {"lfw": lfw, "other": {"p3": ["other/p3/a.jpg"], "q": ["other/q/a.jpg"]}}


def test_heldout_people_have_enough_photos_and_none_are_trained_on():
    split = holdout_split(_sets(), people=5, min_photos=3, seed=1)
    assert len(split.heldout) == 5 and all(len(p) >= 3 for p in split.heldout.values())
    held_people = {name.split("/")[1] for name in split.heldout}
    assert not any(photo.split("/")[1] in held_people for photo in split.train)
    assert holdout_split(_sets(), people=5, min_photos=3, seed=1) == split
    definition = benchmark_definition(split)
    assert all(
        len(i["condition"]) == 1 and len(i["reference"]) >= 2 for i in definition["identities"]
    )


def test_too_few_people_is_an_error():
    with pytest.raises(ValueError, match="only 10 people"):
        holdout_split(_sets(), people=11, min_photos=4)
