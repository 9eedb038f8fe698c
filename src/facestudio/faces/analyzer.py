"""`FaceAnalyzer`: detect, align, embed and compare faces with a pluggable backend."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image

from facestudio.configuration import load_dataclass
from facestudio.errors import FaceStudioError, ImageLoadError, NoFaceError
from facestudio.faces.backends import (
    DlibBackend,
    DlibBackendConfig,
    FaceBackend,
    OnnxBackend,
    OnnxBackendConfig,
)
from facestudio.faces.cache import FaceCache, content_digest
from facestudio.faces.types import Comparison, Face, FaceIdentity, ImageFaces, MultiShotIdentity
from facestudio.fields import field_ref
from facestudio.images import ImageLoadConfig, image_to_rgb_array, load_image, read_image_file

ImageSource = str | os.PathLike | np.ndarray | Image.Image
"""A photo given as a file path, an (H, W, 3) uint8 RGB array, or a PIL image."""


@dataclass(frozen=True)
class FaceAnalyzerConfig:
    """Which backend to use and how; `cache_dir=None` turns the embedding cache off."""

    backend: Literal["dlib", "onnx", "torch"] = "dlib"
    dlib: DlibBackendConfig = field(default_factory=DlibBackendConfig)
    onnx: OnnxBackendConfig = field(default_factory=OnnxBackendConfig)
    cache_dir: str | None = None
    image: ImageLoadConfig = field(default_factory=ImageLoadConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FaceAnalyzerConfig:
        """Settings from a dict (a model's `face_analysis`), every key and value checked."""
        return load_dataclass(
            data, cls, name="the face analysis settings", noun="face analysis setting"
        )


def build_backend(config: FaceAnalyzerConfig) -> FaceBackend:
    if config.backend == "dlib":
        return DlibBackend(config.dlib)
    if config.backend == "onnx":
        return OnnxBackend(config.onnx)
    if config.backend == "torch":  # dlib's detector, dlib's descriptor network run in PyTorch
        from facestudio.faces.backends.torch_backend import TorchBackend

        return TorchBackend(config.dlib)
    raise FaceStudioError(f"unknown face backend '{config.backend}'; use 'dlib', 'onnx' or 'torch'")


@dataclass
class _Loaded:
    name: str
    digest: str
    image: np.ndarray | None  # decoded lazily: a cache hit needs no pixels
    data: bytes | None = None

    def pixels(self, config: ImageLoadConfig) -> np.ndarray:
        if self.image is None:
            self.image = load_image(self.data, config, name=self.name)
        return self.image


class FaceAnalyzer:
    """Face detection, alignment, identity embedding and comparison.

    Faces are always listed largest first, so face index 0 is the default choice. Embeddings
    are L2-normalised and compared by cosine similarity.
    """

    def __init__(
        self, config: FaceAnalyzerConfig | None = None, backend: FaceBackend | None = None
    ):
        self.config = config or FaceAnalyzerConfig()
        self.backend = backend or build_backend(self.config)
        self.cache = FaceCache(self.config.cache_dir) if self.config.cache_dir else None

    @property
    def threshold(self) -> float:
        return self.backend.threshold

    # -- detection -------------------------------------------------------------------------

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in an (H, W, 3) uint8 RGB image, largest first. Small images (a side under
        `SMALL_SIDE`, such as a small model's generated portraits) are searched at an integer
        upscale, since detectors miss faces under about 40 px; boxes come back in the image's
        own pixels."""
        height, width = image.shape[:2]
        factor = upscale_factor(image)
        found = self.backend.detect(_upscaled(image, factor))
        faces = [_clip_to_image(_scaled(face, 1 / factor), width, height) for face in found]
        return sorted(faces, key=lambda f: (f.area, f.score), reverse=True)

    def analyze(self, source: ImageSource) -> ImageFaces:
        """The faces of one photo, from the cache when its content was seen before."""
        return self._analyze(self._load(source))

    def _analyze(self, loaded: _Loaded) -> ImageFaces:
        fingerprint = self._fingerprint()
        if self.cache is not None:
            cached = self.cache.get_faces(loaded.digest, fingerprint, loaded.name)
            if cached is not None:
                return cached
        image = loaded.pixels(self.config.image)
        result = ImageFaces(loaded.name, image.shape[1], image.shape[0], self.detect(image))
        if self.cache is not None:
            self.cache.put_faces(loaded.digest, fingerprint, result)
        return result

    def _fingerprint(self) -> str:
        """What the cache keys results by: the backend, and how small images are analysed."""
        return f"{self.backend.fingerprint()}|small<{SMALL_SIDE}"

    # -- identity --------------------------------------------------------------------------

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The L2-normalised identity vector of one face (of a small image: at its upscale, as
        it was detected)."""
        factor = upscale_factor(image)
        return normalize(self.backend.embed(_upscaled(image, factor), _scaled(face, factor)))

    def identity(self, source: ImageSource, face_index: int | None = None) -> FaceIdentity:
        """The identity of one face of a photo: the largest, or `face_index` (largest first).

        Raises `NoFaceError` when the photo has no face; warns when it has several and none
        was chosen.
        """
        loaded = self._load(source)
        found = self._analyze(loaded)
        index, face, warnings = select_face(found, face_index)
        vector = None
        fingerprint = self._fingerprint()
        if self.cache is not None:
            vector = self.cache.get_embedding(loaded.digest, fingerprint, index)
        if vector is None:
            vector = self.embed(loaded.pixels(self.config.image), face)
            if self.cache is not None:
                self.cache.put_embedding(loaded.digest, fingerprint, index, vector)
        return FaceIdentity(vector, loaded.name, index, face, warnings, len(found.faces))

    def multi_shot(
        self, sources: list[ImageSource], face_index: int | None = None
    ) -> MultiShotIdentity:
        """One identity from several photos of one person (see `aggregate_identities`)."""
        if not sources:
            raise FaceStudioError("multi-shot needs at least one photo")
        shots = [self.identity(source, face_index) for source in sources]
        return aggregate_identities(shots, self.threshold, self.backend.name)

    def compare(
        self, a: ImageSource, b: ImageSource, face_index: int | None = None
    ) -> tuple[Comparison, FaceIdentity, FaceIdentity]:
        """Similarity of the chosen faces of two photos, with the same/different verdict."""
        first, second = self.identity(a, face_index), self.identity(b, face_index)
        return self.compare_embeddings(first.embedding, second.embedding), first, second

    def compare_embeddings(self, a: np.ndarray, b: np.ndarray) -> Comparison:
        similarity = cosine_similarity(a, b)
        return Comparison(
            similarity, similarity >= self.threshold, self.threshold, self.backend.name
        )

    # -- inputs ----------------------------------------------------------------------------

    def _load(self, source: ImageSource) -> _Loaded:
        if isinstance(source, Image.Image):
            source = image_to_rgb_array(source, config=self.config.image)
        if isinstance(source, np.ndarray):
            image = _check_array(source)
            header = f"{image.shape}{image.dtype}".encode()
            return _Loaded("<array>", content_digest(header + image.tobytes()), image)
        data = read_image_file(source, self.config.image)  # a regular file, size-bounded
        return _Loaded(str(source), content_digest(data), None, data)


def select_face(found: ImageFaces, face_index: int | None) -> tuple[int, Face, list[str]]:
    """Pick the face to use from a photo; the warnings say which when there was a choice."""
    count = len(found.faces)
    if count == 0:
        raise NoFaceError(
            f"no face found in '{found.source}'; use a photo where one face is clearly visible "
            "and at least about 40 pixels wide"
        )
    if face_index is not None:
        if not 0 <= face_index < count:
            raise FaceStudioError(
                f"'{found.source}' has {count} face(s), numbered 0 to {count - 1} largest first; "
                f"face index {face_index} does not exist"
            )
        return face_index, found.faces[face_index], []
    warnings = []
    if count > 1:
        face = found.faces[0]
        warnings.append(
            f"'{found.source}' has {count} faces; using face 0, the largest "
            f"({face.width:.0f}×{face.height:.0f} px at x={face.box[0]:.0f}, y={face.box[1]:.0f}); "
            f"choose another with {field_ref('face_index')}"
        )
    return 0, found.faces[0], warnings


def aggregate_identities(
    shots: list[FaceIdentity], threshold: float, backend: str = ""
) -> MultiShotIdentity:
    """Mean of the normalised embeddings, re-normalised, with a consistency check.

    A photo whose similarity to the mean of the other photos is below the backend's
    same-person threshold gets a warning: it may show someone else.
    """
    vectors = np.stack([normalize(s.embedding) for s in shots])
    embedding = normalize(vectors.mean(axis=0))
    count = len(shots)
    warnings = [w for s in shots for w in s.warnings]
    if count == 1:
        return MultiShotIdentity(embedding, shots, 1.0, [1.0], warnings)
    pairwise = vectors @ vectors.T
    consistency = float((pairwise.sum() - count) / (count * (count - 1)))
    to_others = []
    for k in range(count):
        others = normalize(np.delete(vectors, k, axis=0).mean(axis=0))
        to_others.append(float(vectors[k] @ others))
    name = f"the {backend} " if backend else "the "
    if count == 2 and to_others[0] < threshold:
        warnings.append(
            f"'{shots[0].source}' and '{shots[1].source}' look like different people "
            f"(similarity {to_others[0]:.2f}, below {name}same-person threshold {threshold:.2f})"
        )
    elif count > 2:
        for shot, similarity in zip(shots, to_others, strict=True):
            if similarity < threshold:
                warnings.append(
                    f"'{shot.source}' looks like someone other than the other photos (similarity "
                    f"{similarity:.2f}, below {name}same-person threshold {threshold:.2f}); "
                    "remove it if it is not the same person"
                )
    return MultiShotIdentity(embedding, shots, consistency, to_others, warnings)


def normalize(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    if norm == 0.0 or not np.isfinite(norm):
        raise FaceStudioError("cannot normalise an all-zero or non-finite embedding")
    return vector / norm


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(normalize(a) @ normalize(b))


SMALL_SIDE = 200
"""Images whose shorter side is under this are analysed at an integer upscale (bicubic)."""


def upscale_factor(image: np.ndarray) -> int:
    """1 for ordinary photos; for small images the smallest integer bringing the shorter side
    to `SMALL_SIDE` or more (at most 8)."""
    side = min(image.shape[:2])
    return 1 if side >= SMALL_SIDE else min(8, -(-SMALL_SIDE // max(side, 1)))


def _upscaled(image: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return image
    height, width = image.shape[:2]
    picture = Image.fromarray(image).resize(
        (width * factor, height * factor), Image.Resampling.BICUBIC
    )
    return np.asarray(picture)


def _scaled(face: Face, factor: float) -> Face:
    if factor == 1:
        return face
    box = tuple(float(v) * factor for v in face.box)
    return dataclasses.replace(
        face, box=box, landmarks=(face.landmarks * factor).astype(np.float32)
    )


def _clip_to_image(face: Face, width: int, height: int) -> Face:
    x0, y0, x1, y1 = face.box
    box = (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
    return dataclasses.replace(face, box=box)


def _check_array(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageLoadError(
            f"an image array must be (H, W, 3) uint8 RGB, got shape {image.shape} of {image.dtype}"
        )
    return np.ascontiguousarray(image)
