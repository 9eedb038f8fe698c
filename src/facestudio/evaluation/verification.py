"""Face verification on labelled photo sets: pair sampling, ROC AUC, threshold calibration."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from facestudio.structured_files import read_structured_file

Identities = Mapping[str, Sequence[str]]
"""Person id -> that person's photos."""


def load_manifest_sets(manifest: str | Path) -> dict[str, dict[str, list[str]]]:
    """`sets.<name>.identities` of a data manifest, with paths made absolute."""
    manifest = Path(manifest)
    data = read_structured_file(manifest, "data manifest", kind="JSON", max_bytes=64 * 2**20)
    root = manifest.parent.resolve()
    return {
        name: {
            person: [str(root / p) for p in photos]
            for person, photos in entry["identities"].items()
        }
        for name, entry in data["sets"].items()
    }


def all_pairs(identities: Identities) -> list[tuple[str, str, bool]]:
    """Every pair of photos, labelled same-person or not."""
    labelled = [(photo, person) for person, photos in identities.items() for photo in photos]
    return [(a, b, pa == pb) for (a, pa), (b, pb) in itertools.combinations(labelled, 2)]


def sample_pairs(
    identities: Identities,
    positives: int,
    negatives: int,
    photos_per_person: int = 4,
    seed: int = 0,
) -> list[tuple[str, str, bool]]:
    """A reproducible sample of same-person and different-person pairs over few photos.

    People with at least `photos_per_person` photos are drawn until their within-person pairs
    cover `positives`; negatives pair photos of different drawn people. Reusing photos keeps
    the number of embeddings to compute small.
    """
    rng = random.Random(seed)
    eligible = sorted(p for p, photos in identities.items() if len(photos) >= photos_per_person)
    rng.shuffle(eligible)
    per_person = photos_per_person * (photos_per_person - 1) // 2
    people = eligible[: -(-positives // per_person)]
    if len(people) * per_person < positives or len(people) < 2:
        raise ValueError("not enough people with enough photos for that many positive pairs")
    chosen = {p: rng.sample(sorted(identities[p]), photos_per_person) for p in people}
    same = [(a, b, True) for p in people for a, b in itertools.combinations(chosen[p], 2)]
    same = rng.sample(same, positives)
    different: set[tuple[str, str]] = set()
    while len(different) < negatives:
        p, q = rng.sample(people, 2)
        different.add((rng.choice(chosen[p]), rng.choice(chosen[q])))
    return same + [(a, b, False) for a, b in sorted(different)]


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("ROC AUC needs both positive and negative pairs")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dataclass(frozen=True)
class ThresholdFit:
    threshold: float
    accuracy: float


def best_threshold(labels: Sequence[bool], scores: Sequence[float]) -> ThresholdFit:
    """The cosine threshold (midway between neighbouring scores) with the best accuracy."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(scores)
    sorted_scores, sorted_labels = scores[order], labels[order]
    # Threshold just above index k: items 0..k say "different", the rest "same".
    negatives_below = np.concatenate([[0], np.cumsum(~sorted_labels)])
    positives_above = labels.sum() - np.concatenate([[0], np.cumsum(sorted_labels)])
    correct = negatives_below + positives_above
    k = int(np.argmax(correct))
    if k == 0:
        threshold = sorted_scores[0] - 1e-6
    elif k == len(scores):
        threshold = sorted_scores[-1] + 1e-6
    else:
        threshold = (sorted_scores[k - 1] + sorted_scores[k]) / 2
    return ThresholdFit(float(threshold), float(correct[k] / len(scores)))
