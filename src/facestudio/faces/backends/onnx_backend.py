"""A backend from model files: YuNet detection through OpenCV, any ArcFace-style recogniser
through ONNX Runtime.

Users with insightface's model packs (buffalo_l, antelopev2) or other ArcFace-style recognisers
point `recognizer_model` at the `.onnx` file and set the input normalisation the model expects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from facestudio.errors import ModelLoadError
from facestudio.faces.alignment import align_arcface
from facestudio.faces.backends.base import FaceBackend, file_digest
from facestudio.faces.types import Face


@dataclass(frozen=True)
class OnnxBackendConfig:
    """Model files and their conventions.

    `detector_model`: a YuNet `.onnx` (OpenCV Zoo). `recognizer_model`: takes N×3×S×S (or
    N×S×S×3) float32 faces aligned onto the ArcFace template, pixels `(x - input_mean) /
    input_std` in `color_order`; outputs one embedding per face. `threshold`: cosine for "same
    person"; the default is calibrated for the MobileFaceNet in docs/face-analysis.md, so
    calibrate it for another recogniser.
    """

    detector_model: str = ""
    recognizer_model: str = ""
    detector_score: float = 0.7
    detector_nms: float = 0.3
    input_mean: float = 127.5
    input_std: float = 128.0
    color_order: Literal["rgb", "bgr"] = "rgb"
    max_detect_side: int = 1600
    threshold: float = 0.28
    threads: int = 0


class OnnxBackend(FaceBackend):
    name = "onnx"

    def __init__(self, config: OnnxBackendConfig) -> None:
        import cv2
        import onnxruntime

        self.config = config
        self.threshold = config.threshold
        self.max_detect_side = config.max_detect_side
        for label, path in (
            ("detector", config.detector_model),
            ("recognizer", config.recognizer_model),
        ):
            if not path:
                raise ModelLoadError(
                    f"the onnx backend needs a {label} model file; give --{label}-model PATH.onnx"
                )
            if not Path(path).is_file():
                raise ModelLoadError(f"{label} model '{path}' does not exist; check the path")
        # OpenCV 5 warns on stderr that its new graph engine ignores the target; not our concern.
        log_level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._detector = cv2.FaceDetectorYN.create(
                str(config.detector_model),
                "",
                (320, 320),
                config.detector_score,
                config.detector_nms,
                5000,
            )
        except cv2.error as exc:
            raise ModelLoadError(
                f"cannot load detector model '{config.detector_model}' as YuNet ONNX: "
                f"{str(exc).strip().splitlines()[-1]}"
            ) from None
        finally:
            cv2.utils.logging.setLogLevel(log_level)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = config.threads or min(4, os.cpu_count() or 1)
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(
                str(config.recognizer_model), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelLoadError(
                f"cannot load recognizer model '{config.recognizer_model}' with ONNX Runtime: "
                f"{str(exc).strip().splitlines()[0][:200]}"
            ) from None
        model_input = self._session.get_inputs()[0]
        self._input_name = model_input.name
        shape = model_input.shape
        self._channels_last = len(shape) == 4 and shape[-1] == 3
        side = shape[1] if self._channels_last else shape[2]
        self._size = side if isinstance(side, int) else 112
        self._recognizer_id = "onnx:" + file_digest(config.recognizer_model)
        self._fingerprint = "onnx:" + ",".join(
            [
                file_digest(config.detector_model),
                file_digest(config.recognizer_model),
                f"s{config.detector_score}",
                f"n{config.detector_nms}",
                f"m{config.input_mean}",
                f"d{config.input_std}",
                config.color_order,
                f"max{config.max_detect_side}",
            ]
        )

    def _detect_full(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        self._detector.setInputSize((width, height))
        _, rows = self._detector.detect(np.ascontiguousarray(image[:, :, ::-1]))
        faces = []
        for row in rows if rows is not None else []:
            x, y, w, h = (float(v) for v in row[:4])
            box = (max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height)))
            landmarks = np.asarray(row[4:14], dtype=np.float32).reshape(5, 2)
            faces.append(Face(box, float(row[14]), landmarks))
        return faces

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        crop = align_arcface(image, face.landmarks, self._size)
        if self.config.color_order == "bgr":
            crop = crop[:, :, ::-1]
        batch = (crop.astype(np.float32) - self.config.input_mean) / self.config.input_std
        batch = batch[None] if self._channels_last else batch.transpose(2, 0, 1)[None]
        output = self._session.run(None, {self._input_name: np.ascontiguousarray(batch)})[0]
        return np.asarray(output, dtype=np.float32).reshape(-1)
