"""Face alignment: the ArcFace 112×112 crop for recognisers and a looser portrait crop."""

from __future__ import annotations

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
"""Where the 5 landmarks (see `LANDMARK_NAMES`) land in the standard 112×112 ArcFace crop."""


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, scale, shift) from src to dst, as 2×3."""
    transform = SimilarityTransform.from_estimate(
        np.asarray(src, np.float64), np.asarray(dst, np.float64)
    )
    if not transform:
        raise ValueError("landmarks are degenerate; cannot estimate an alignment")
    return transform.params[:2]


def align_arcface(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The standard ArcFace alignment: the 5 landmarks warped onto the template, size×size RGB."""
    return warp_to_template(image, landmarks, ARCFACE_TEMPLATE_112 * (size / 112.0), size)


def portrait_template(size: int, face_fraction: float = 0.5) -> np.ndarray:
    """Landmark positions for an upright, centred face in a looser size×size crop.

    `face_fraction` is the width of the ArcFace crop's square relative to the portrait crop:
    1.0 gives the tight ArcFace crop, 0.5 shows as much again around the face (hair, neck).
    """
    return (0.5 + (ARCFACE_TEMPLATE_112 / 112.0 - 0.5) * face_fraction) * size


def align_portrait(
    image: np.ndarray, landmarks: np.ndarray, size: int = 256, face_fraction: float = 0.5
) -> np.ndarray:
    """A looser face-centred crop for generation: the face upright, centred, `face_fraction` wide.

    Pixels outside the photo are filled by replicating its border, so the crop is always full.
    """
    return warp_to_template(image, landmarks, portrait_template(size, face_fraction), size)


def warp_to_template(
    image: np.ndarray, landmarks: np.ndarray, template: np.ndarray, size: int
) -> np.ndarray:
    """Warp `image` so that `landmarks` land on `template`, into a size×size crop.

    A strong downscale is done with area averaging first, so large photos do not alias.
    """
    landmarks = np.asarray(landmarks, np.float64)
    matrix = similarity_matrix(landmarks, template)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        height, width = image.shape[:2]
        new_size = (max(1, round(width * scale * 1.5)), max(1, round(height * scale * 1.5)))
        landmarks = landmarks * np.array([new_size[0] / width, new_size[1] / height])
        image = cv2.resize(image, new_size, interpolation=cv2.INTER_AREA)
        matrix = similarity_matrix(landmarks, template)
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def estimate_mouth_corners(
    eye_left: np.ndarray, eye_right: np.ndarray, nose: np.ndarray
) -> np.ndarray:
    """Mouth corners placed where the ArcFace template has them, given the eyes and nose (2×2)."""
    matrix = similarity_matrix(ARCFACE_TEMPLATE_112[:3], np.stack([eye_left, eye_right, nose]))
    mouth = ARCFACE_TEMPLATE_112[3:]
    return mouth @ matrix[:, :2].T + matrix[:, 2]
