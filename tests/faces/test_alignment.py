"""Alignment: the ArcFace template is hit exactly, and the crops are what they claim."""

from __future__ import annotations

import numpy as np

from facestudio.faces.alignment import (
    ARCFACE_TEMPLATE_112,
    align_arcface,
    align_portrait,
    estimate_mouth_corners,
    portrait_template,
    similarity_matrix,
)


def _transform(points: np.ndarray, angle: float, scale: float, shift) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return points @ (scale * np.array([[c, -s], [s, c]])).T + np.asarray(shift)


def test_similarity_matrix_recovers_a_known_transform():
    moved = _transform(ARCFACE_TEMPLATE_112, 0.3, 2.5, (40, -7))
    matrix = similarity_matrix(ARCFACE_TEMPLATE_112, moved)
    mapped = ARCFACE_TEMPLATE_112 @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, moved, atol=1e-9)


def test_mouth_corners_follow_the_eyes_and_nose():
    moved = _transform(ARCFACE_TEMPLATE_112, -0.2, 3.0, (100, 50))
    mouth = estimate_mouth_corners(moved[0], moved[1], moved[2])
    np.testing.assert_allclose(mouth, moved[3:], atol=1e-6)


def _dots_image(points: np.ndarray, size: int) -> np.ndarray:
    image = np.zeros((size, size, 3), np.uint8)
    for x, y in np.round(points).astype(int):
        image[y - 1 : y + 2, x - 1 : x + 2] = 255
    return image


def _bright_centroids(crop: np.ndarray, points: np.ndarray) -> np.ndarray:
    found = []
    gray = crop.mean(axis=2)
    for x, y in np.round(points).astype(int):
        window = gray[y - 6 : y + 7, x - 6 : x + 7]
        ys, xs = np.nonzero(window > 60)
        weights = window[ys, xs]
        found.append(
            [x - 6 + np.average(xs, weights=weights), y - 6 + np.average(ys, weights=weights)]
        )
    return np.array(found)


def test_arcface_crop_puts_landmarks_on_the_template():
    landmarks = _transform(ARCFACE_TEMPLATE_112, 0.25, 3.0, (150, 120))
    crop = align_arcface(_dots_image(landmarks, 640), landmarks)
    assert crop.shape == (112, 112, 3)
    np.testing.assert_allclose(
        _bright_centroids(crop, ARCFACE_TEMPLATE_112), ARCFACE_TEMPLATE_112, atol=1.0
    )


def test_portrait_crop_is_looser_and_centred():
    landmarks = _transform(ARCFACE_TEMPLATE_112, -0.1, 4.0, (300, 200))
    crop = align_portrait(_dots_image(landmarks, 1200), landmarks, size=256, face_fraction=0.5)
    template = portrait_template(256, 0.5)
    np.testing.assert_allclose(_bright_centroids(crop, template), template, atol=1.5)
    # Half as wide as the ArcFace crop: the eyes are half as far apart, relative to the crop.
    eye_distance = (template[1, 0] - template[0, 0]) / 256
    assert (
        abs(eye_distance - (ARCFACE_TEMPLATE_112[1, 0] - ARCFACE_TEMPLATE_112[0, 0]) / 112 / 2)
        < 1e-9
    )
