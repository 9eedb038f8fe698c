"""Plain data types of face analysis: a detected face, an identity, a comparison."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LANDMARK_NAMES = ("eye_left", "eye_right", "nose", "mouth_left", "mouth_right")
"""Order of the 5 landmarks, as seen in the image (the person's right eye is `eye_left`).

This is the order of the standard ArcFace 112×112 template and of YuNet's output.
"""


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face, in pixel coordinates of the upright image.

    `score` is the detector's own confidence (dlib HOG: SVM margin, usually 0–3; dlib CNN and
    YuNet: 0–1); compare it only within one backend. `landmarks_estimated[k]` is true where the
    backend has no such landmark and it was estimated from the others.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    landmarks_estimated: tuple[bool, ...] = (False,) * 5

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def to_dict(self) -> dict:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "landmarks": {
                name: [round(float(x), 2), round(float(y), 2)]
                for name, (x, y) in zip(LANDMARK_NAMES, self.landmarks, strict=True)
            },
            "landmarks_estimated": [
                name
                for name, est in zip(LANDMARK_NAMES, self.landmarks_estimated, strict=True)
                if est
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Face:
        landmarks = np.array([data["landmarks"][name] for name in LANDMARK_NAMES], dtype=np.float32)
        estimated = tuple(name in data.get("landmarks_estimated", ()) for name in LANDMARK_NAMES)
        return cls(tuple(float(v) for v in data["box"]), float(data["score"]), landmarks, estimated)


@dataclass(frozen=True, eq=False)
class ImageFaces:
    """All faces found in one image, largest first."""

    source: str
    width: int
    height: int
    faces: list[Face]

    def to_dict(self) -> dict:
        return {
            "image": self.source,
            "width": self.width,
            "height": self.height,
            "faces": [{"index": i, **face.to_dict()} for i, face in enumerate(self.faces)],
        }


@dataclass(frozen=True, eq=False)
class FaceIdentity:
    """The identity embedding of one face in one photo (L2-normalised)."""

    embedding: np.ndarray
    source: str
    face_index: int
    face: Face
    warnings: list[str] = field(default_factory=list)
    faces_in_photo: int = 1


@dataclass(frozen=True, eq=False)
class MultiShotIdentity:
    """One person from several photos: the re-normalised mean of the normalised embeddings.

    `consistency` is the mean cosine similarity between the photos' embeddings (1.0 for one
    photo); `similarity_to_others[k]` is photo k's similarity to the mean of the other photos.
    """

    embedding: np.ndarray
    shots: list[FaceIdentity]
    consistency: float
    similarity_to_others: list[float]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "photos": [s.source for s in self.shots],
            "face_index": [s.face_index for s in self.shots],
            "consistency": round(self.consistency, 4),
            "similarity_to_others": [round(v, 4) for v in self.similarity_to_others],
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class Comparison:
    """Cosine similarity of two identity embeddings and the backend's verdict."""

    similarity: float
    same_person: bool
    threshold: float
    backend: str

    def to_dict(self) -> dict:
        return {
            "similarity": round(self.similarity, 4),
            "same_person": self.same_person,
            "threshold": self.threshold,
            "backend": self.backend,
        }
