"""Where the people are in a photo: MediaPipe's selfie-segmentation model, run with LiteRT.

Face boxes say where heads are; a person mask says where bodies are, so that regions for
several people can follow their shapes instead of rectangles (`facestudio.faces.regions.
segmented_regions` splits the mask into one region per face).

The model ships with the package (`models/selfie_segmentation.tflite`, 249,505 bytes, from
the mediapipe 0.10.14 wheel, Apache-2.0: see `models/NOTICE.md`), so it needs no download.
Running it needs the optional `ai-edge-litert` package (`pip install 'facestudio[segment]'`),
not mediapipe itself. Its input is RGB scaled to [0, 1] and stretched to 256×256 (no aspect
kept), as mediapipe's own graph feeds it (RGB in 0 to 1 matters: −1 to 1 or BGR lose most of
the people in some group photos); its output is already a probability in [0, 1] that each
pixel is a person (mediapipe applies no activation after the model).
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from facestudio.errors import FaceStudioError, ModelLoadError

MODEL_PATH = Path(__file__).parent / "models" / "selfie_segmentation.tflite"
MODEL_SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
MODEL_NAME = "mediapipe-0.10.14/selfie_segmentation"
"""How image metadata names the bundled model."""
INSTALL_HINT = "pip install 'facestudio[segment]'"


def segmenter_available() -> bool:
    """Whether the optional runtime is installed (checked without importing it)."""
    return importlib.util.find_spec("ai_edge_litert") is not None


class PersonSegmenter:
    """A person mask of any RGB image, from a 256×256 selfie-segmentation TFLite model.

    One interpreter per instance; calls are serialised by a lock, because a TFLite
    interpreter holds its tensors between `set_tensor` and `get_tensor`.
    """

    def __init__(
        self, model_path: str | Path = MODEL_PATH, threads: int = 1, name: str | None = None
    ) -> None:
        interpreter_class = _interpreter_class()
        path = Path(model_path)
        if not path.is_file():
            raise ModelLoadError(
                f"segmentation model '{path}' is missing; reinstall facestudio or pass the "
                "path of a selfie_segmentation.tflite"
            )
        try:
            self._interpreter = interpreter_class(model_path=str(path), num_threads=threads)
            self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(
                f"'{path}' is not a usable TFLite segmentation model ({_first_line(exc)}); "
                "use mediapipe's selfie_segmentation.tflite"
            ) from None
        self._input, self._output = _check_signature(self._interpreter, path)
        self.input_size = (int(self._input["shape"][2]), int(self._input["shape"][1]))
        self.name = name or (MODEL_NAME if path == MODEL_PATH else path.name)
        self._lock = threading.Lock()

    def person_mask(self, image: np.ndarray | Image.Image) -> np.ndarray:
        """(H, W) float32 in [0, 1] at the image's own size: how likely each pixel is a person."""
        pixels = _rgb_array(image)
        height, width = pixels.shape[:2]
        small = Image.fromarray(pixels).resize(self.input_size, Image.Resampling.BILINEAR)
        batch = (np.asarray(small, np.float32) / 255.0)[None]
        with self._lock:
            self._interpreter.set_tensor(self._input["index"], batch)
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._output["index"])[0, :, :, 0].copy()
        full = Image.fromarray(raw.astype(np.float32))  # mode "F"
        resized = full.resize((width, height), Image.Resampling.BILINEAR)
        return np.clip(np.asarray(resized, np.float32), 0.0, 1.0)


@functools.cache
def default_segmenter() -> PersonSegmenter | None:
    """The bundled model, loaded once per process; None when `ai-edge-litert` is missing."""
    if not segmenter_available():
        return None
    return PersonSegmenter()


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise FaceStudioError(
            f"person segmentation needs the ai-edge-litert package; {INSTALL_HINT}"
        ) from None
    return Interpreter


def _check_signature(interpreter, path: Path) -> tuple[dict, dict]:
    """The input (1, H, W, 3) and output (1, H, W, 1) float32 tensors, or a one-line error."""
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    ok = len(inputs) == 1 and len(outputs) == 1
    if ok:
        shape_in, shape_out = list(inputs[0]["shape"]), list(outputs[0]["shape"])
        ok = (
            len(shape_in) == 4
            and shape_in[0] == 1
            and shape_in[3] == 3
            and inputs[0]["dtype"] == np.float32
            and shape_out == [*shape_in[:3], 1]
        )
    if not ok:
        raise ModelLoadError(
            f"'{path}' does not map one (1, H, W, 3) float image to a (1, H, W, 1) mask; "
            "use mediapipe's selfie_segmentation.tflite"
        )
    return inputs[0], outputs[0]


def _rgb_array(image: np.ndarray | Image.Image) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    pixels = np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8 or 0 in pixels.shape:
        raise FaceStudioError(
            f"the person segmenter needs an (H, W, 3) uint8 RGB image, got {pixels.dtype} "
            f"{pixels.shape}; load photos with facestudio.images.load_image"
        )
    return np.ascontiguousarray(pixels)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
