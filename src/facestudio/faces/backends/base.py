"""The interface every face backend implements."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path

import cv2
import numpy as np

from facestudio.faces.types import Face


class FaceBackend(ABC):
    """A face detector (box, score, 5 landmarks) and a recogniser (identity vector).

    Backends are frozen models: nothing here trains or changes them.
    """

    name: str
    threshold: float
    """Cosine similarity at or above which two faces are judged the same person."""
    max_detect_side: int
    _fingerprint: str
    _recognizer_id: str

    def fingerprint(self) -> str:
        """A string that changes whenever the models or settings would change any result."""
        return self._fingerprint

    def recognizer_id(self) -> str:
        """Identifies the recognition model alone (to tell whether two backends share it)."""
        return self._recognizer_id

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in an (H, W, 3) uint8 RGB image, in any order."""
        return detect_downscaled(image, self.max_detect_side, self._detect_full)

    @abstractmethod
    def _detect_full(self, image: np.ndarray) -> list[Face]:
        """Detection at the image's own size."""

    @abstractmethod
    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The identity vector of `face` in `image` (not necessarily normalised)."""


def detect_downscaled(image: np.ndarray, max_side: int, detect) -> list[Face]:
    """Run `detect` on a copy no larger than `max_side`, mapping the results back.

    Detection cost grows with pixels; faces in a very large photo are large too.
    """
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return detect(image)
    small = cv2.resize(
        image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
    )
    return [
        Face(
            tuple(v / scale for v in face.box),
            face.score,
            face.landmarks / scale,
            face.landmarks_estimated,
        )
        for face in detect(small)
    ]


def file_digest(path: str | Path) -> str:
    """Short sha256 of a model file, so cached results follow the exact weights."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
