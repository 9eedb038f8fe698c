"""Prepared reconstruction samples as tensors, read straight from the shards by index.

Random access (member offsets read once from each shard's headers) makes the sample order a
plain permutation, so a resumed run continues at exactly the sample where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from facestudio.data import samples
from facestudio.errors import FaceStudioError

DEFAULT_FACE_DIM = 128
"""The identity size assumed for a set without any face (dlib's embedding)."""


class ReconstructionDataset(Dataset):
    """Samples of a `facestudio prepare` folder as tensors.

    Each item: `image` (3, R, R) in [-1, 1], the portrait to reconstruct; `style_pixels`
    (3, R, R) in [0, 1], the style input (portrait with the face greyed); `face` (D,) identity
    embedding (zeros when the photo had no face) and `has_face`; `face_box` (x0, y0, x1, y1)
    and `face_landmarks` (5, 2) in image pixels (zeros without a face); `index`.
    """

    def __init__(
        self, folder: str | Path, resolution: int = 0, face_dim: int | None = None
    ) -> None:
        self.folder = Path(folder)
        self.index = samples.read_index(self.folder)
        self.prepared_resolution = self.index["prepare"]["resolution"]
        self.resolution = resolution or self.prepared_resolution
        self.face_dim = self.index.get("embedding_dim") or DEFAULT_FACE_DIM
        if face_dim:
            self.require_face_dim(face_dim)
        self.samples: list[tuple[Path, dict[str, tuple[int, int]]]] = []
        for shard in self.index["shards"]:
            path = self.folder / shard["name"]
            self.samples += [(path, where) for where in samples.shard_members(path).values()]
        if not self.samples:
            raise FaceStudioError(f"'{self.folder}' holds no samples")

    def require_face_dim(self, face_dim: int) -> None:
        """Refuse embeddings of another size than a model's; faceless samples get this size."""
        stored = self.index.get("embedding_dim")
        if stored and stored != face_dim:
            raise FaceStudioError(
                f"the prepared data has {stored}-d identity embeddings but the model "
                f"expects {face_dim}; prepare with the model's face backend"
            )
        self.face_dim = face_dim

    def __len__(self) -> int:
        return len(self.samples)

    def face_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-dimension mean and standard deviation of the identity embeddings of the set."""
        embeddings = [
            samples.decode_sample(samples.read_members(path, where, [samples.EMBEDDING])).embedding
            for path, where in self.samples
            if samples.EMBEDDING in where
        ]
        if len(embeddings) < 2:
            raise FaceStudioError(
                f"'{self.folder}' has fewer than two samples with a face; prepare more photos"
            )
        stacked = torch.from_numpy(np.stack(embeddings).astype(np.float32))
        return stacked.mean(0), stacked.std(0)

    def identities(self) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        """Every sample's person id ("" where the data does not say), identity embedding
        (zeros without a face) and whether it has a face, in sample order."""
        people, embeddings, has_face = [], [], []
        for path, where in self.samples:
            stored = samples.decode_sample(
                samples.read_members(path, where, [samples.META, samples.EMBEDDING])
            )
            people.append(str(stored.meta.get("person", "")))
            has_face.append(stored.has_face)
            embeddings.append(
                stored.embedding if stored.has_face else np.zeros(self.face_dim, np.float32)
            )
        return people, torch.from_numpy(np.stack(embeddings)), torch.tensor(has_face)

    def sample(self, index: int) -> samples.PreparedSample:
        """The prepared sample at `index`, as stored (what training reads of it)."""
        path, where = self.samples[index]
        return samples.decode_sample(samples.read_members(path, where))

    def __getitem__(self, index: int) -> dict:
        sample = self.sample(index)
        scale = self.resolution / self.prepared_resolution
        face = sample.embedding if sample.has_face else np.zeros(self.face_dim, np.float32)
        box = np.asarray(sample.meta.get("box", [0, 0, 0, 0]), np.float32) * scale
        landmarks = np.asarray(sample.meta.get("landmarks", np.zeros((5, 2))), np.float32) * scale
        return {
            "image": torch.from_numpy(self._pixels(sample.image)).permute(2, 0, 1) * 2.0 - 1.0,
            "style_pixels": torch.from_numpy(self._pixels(sample.style)).permute(2, 0, 1),
            "face": torch.from_numpy(np.asarray(face, np.float32)),
            "has_face": torch.tensor(sample.has_face),
            "face_box": torch.from_numpy(box),
            "face_landmarks": torch.from_numpy(landmarks),
            "index": torch.tensor(index),
        }

    def _pixels(self, picture: np.ndarray) -> np.ndarray:
        """(R, R, 3) float32 in [0, 1], resized to the training resolution when it differs."""
        if picture.shape[:2] != (self.resolution, self.resolution):
            image = Image.fromarray(picture).resize(
                (self.resolution, self.resolution), Image.Resampling.BICUBIC
            )
            picture = np.asarray(image)
        return np.asarray(picture, dtype=np.float32) / 255.0
