"""The scorer on real photos (no generation): same person above different person, misses
scored 0, several people matched greedily with the minimum pair reported, bias refused, and a
face that copies its input photo told apart from one that looks like the person."""

from __future__ import annotations

import numpy as np
import pytest

from facestudio.errors import FaceStudioError
from facestudio.evaluation.benchmark import likeness_to_input
from facestudio.evaluation.face_scoring import FaceScorer, copy_paste, greedy_match
from facestudio.images import load_image
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def scorer(onnx_analyzer, dlib_analyzer):
    return FaceScorer(onnx_analyzer, dlib_analyzer.backend.recognizer_id())


def _photos(*names):
    return [shared_file(f"data/deepface/{n}") for n in names]


def test_same_person_scores_above_different_people(scorer):
    reference = scorer.reference(_photos("id05/img13.jpg", "id05/img14.jpg"))
    same = scorer.score(load_image(_photos("id05/img15.jpg")[0]), [reference])
    others = [
        scorer.score(load_image(p), [reference])
        for p in _photos("id03/img3.jpg", "id04/img16.jpg", "id06/img29.jpg")
    ]
    assert same.detected and all(o.detected for o in others)
    assert same.similarity > max(o.similarity for o in others) + 0.1


def test_a_miss_scores_zero_and_is_not_detected(scorer):
    reference = scorer.reference(_photos("id05/img13.jpg"))
    miss = scorer.score(load_image(shared_file("data/misc/white.png")), [reference])
    assert miss.similarity == 0.0 and not miss.detected and miss.per_person == [None]


def test_two_people_are_matched_greedily_and_the_minimum_reported(scorer):
    group = load_image(shared_file("data/groups/couple.jpg"))
    faces = scorer.analyzer.detect(group)
    left, right = sorted(faces[:2], key=lambda f: f.center[0])
    references = [
        scorer.analyzer.embed(group, left)[None],
        scorer.analyzer.embed(group, right)[None],
    ]
    score = scorer.score(group, references)
    assert score.detected and score.per_person == pytest.approx([1.0, 1.0], abs=1e-5)
    stranger = scorer.reference(_photos("id03/img3.jpg"))
    mixed = scorer.score(group, [references[0], stranger])
    assert (
        mixed.per_person[0] == pytest.approx(1.0, abs=1e-5)
        and mixed.similarity == mixed.per_person[1] < 0.5
    )


def test_greedy_match_takes_the_best_pair_first():
    e = [np.array([1.0, 0.0]), np.array([0.8, 0.6])]
    r = [np.array([[0.8, 0.6]]), np.array([[1.0, 0.0]])]
    assert greedy_match(e, r) == pytest.approx({0: 1.0, 1: 1.0})
    assert greedy_match(e[:1], r) == pytest.approx({1: 1.0})  # the unmatched person gets nothing


def test_scoring_with_the_conditioning_recogniser_is_refused_unless_insisted(dlib_analyzer):
    conditioning = dlib_analyzer.backend.recognizer_id()
    with pytest.raises(FaceStudioError, match="--allow-biased"):
        FaceScorer(dlib_analyzer, conditioning)
    assert FaceScorer(dlib_analyzer, conditioning, allow_biased=True).biased


def test_references_without_a_face_are_left_out_and_none_at_all_is_an_error(scorer):
    face, blank = _photos("id05/img13.jpg")[0], shared_file("data/misc/white.png")
    with_blank = scorer.reference([face, blank])
    np.testing.assert_array_equal(with_blank, scorer.reference([face]))
    with pytest.raises(FaceStudioError, match="no face found in any of the 1 reference photos"):
        scorer.reference([blank])


def _unit(degrees: float) -> np.ndarray:
    return np.array([np.cos(np.radians(degrees)), np.sin(np.radians(degrees))])


def test_copy_paste_is_plus_one_on_the_input_minus_one_on_the_other_photos():
    truth, condition = _unit(0)[None], _unit(60)[None]
    assert copy_paste(_unit(60), truth, condition) == pytest.approx(1.0)
    assert copy_paste(_unit(0), truth, condition) == pytest.approx(-1.0)
    assert copy_paste(_unit(30), truth, condition) == pytest.approx(0.0, abs=1e-9)
    assert copy_paste(_unit(45), truth, condition) == pytest.approx(0.5)
    # Off the arc between them: equally far from both still scores 0, whatever the distance.
    assert copy_paste(_unit(210), truth, condition) == pytest.approx(0.0, abs=1e-9)
    # Unnormalised embeddings are angles all the same; two equal photo sets do not divide by 0.
    assert copy_paste(3 * _unit(60), 2 * truth, condition) == pytest.approx(1.0)
    assert np.isfinite(copy_paste(_unit(10), truth, truth))


def test_a_copied_input_photo_scores_copy_paste_and_a_new_photo_does_not(scorer):
    condition = scorer.reference(_photos("id05/img13.jpg"))
    truth = scorer.reference(_photos("id05/img14.jpg", "id05/img15.jpg"))
    copied = scorer.score(load_image(_photos("id05/img13.jpg")[0]), [truth])
    fresh = scorer.score(load_image(_photos("id05/img57.jpg")[0]), [truth])
    copy_scores = likeness_to_input(copied, truth, condition)
    fresh_scores = likeness_to_input(fresh, truth, condition)
    assert copy_scores["similarity_to_condition"] == pytest.approx(1.0, abs=1e-5)
    assert copy_scores["copy_paste"] == pytest.approx(1.0, abs=1e-3)
    assert fresh_scores["copy_paste"] < 0.5 and fresh_scores["similarity_to_condition"] < 0.9


def test_likeness_to_input_scores_a_miss_0_and_leaves_an_unseen_input_unmeasured(scorer):
    truth = scorer.reference(_photos("id05/img14.jpg"))
    miss = scorer.score(load_image(shared_file("data/misc/white.png")), [truth])
    assert likeness_to_input(miss, truth, truth) == {
        "similarity_to_condition": 0.0,
        "copy_paste": None,
    }
    assert likeness_to_input(miss, truth, None) == {
        "similarity_to_condition": None,
        "copy_paste": None,
    }
