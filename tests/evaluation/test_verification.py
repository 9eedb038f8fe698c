"""Verification metrics: AUC and threshold fitting against hand-computed cases."""

from __future__ import annotations

import pytest

from facestudio.evaluation.verification import all_pairs, best_threshold, roc_auc, sample_pairs


def test_roc_auc_counts_ordered_pairs_and_ties():
    assert roc_auc([True, True, False, False], [0.9, 0.8, 0.1, 0.2]) == 1.0
    assert roc_auc([True, False], [0.1, 0.9]) == 0.0
    # One positive tied with one of two negatives: (1 + 0.5) / 2.
    assert roc_auc([True, False, False], [0.5, 0.5, 0.1]) == 0.75
    with pytest.raises(ValueError):
        roc_auc([True, True], [0.1, 0.2])


def test_best_threshold_separates_when_possible():
    fit = best_threshold([False, False, True, True], [0.1, 0.3, 0.6, 0.9])
    assert fit.accuracy == 1.0 and 0.3 < fit.threshold < 0.6
    noisy = best_threshold([False, True, False, True], [0.1, 0.2, 0.3, 0.9])
    assert noisy.accuracy == 0.75


def test_pairs_cover_everyone_and_label_correctly():
    people = {"a": ["a1", "a2"], "b": ["b1"]}
    assert sorted(all_pairs(people)) == [
        ("a1", "a2", True),
        ("a1", "b1", False),
        ("a2", "b1", False),
    ]
    many = {f"p{i}": [f"p{i}_{k}" for k in range(4)] for i in range(10)}
    pairs = sample_pairs(many, 12, 20, seed=3)
    assert sum(s for *_, s in pairs) == 12 and len(pairs) == 32
    assert all((a.split("_")[0] == b.split("_")[0]) == same for a, b, same in pairs)
    with pytest.raises(ValueError, match="not enough people"):
        sample_pairs(many, 1000, 10)
