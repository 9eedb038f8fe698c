"""Reading prepared reconstruction samples straight from the WebDataset shards, by index.

Random access (member offsets read once from each shard's headers) makes the sample order a
plain permutation, so a resumed run continues at exactly the sample where it stopped.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from facestudio.errors import FaceStudioError


class ReconstructionDataset(Dataset):
    """Samples of a `facestudio prepare` folder as tensors.

    Each item: `image` and `style` (3, R, R) in [-1, 1], `style_pixels` (3, R, R) in [0, 1],
    `face` (D,) identity embedding (zeros when the photo had no face), `has_face`, `face_box`
    (x0, y0, x1, y1) in image pixels (zeros without a face), `index`.
    """

    def __init__(
        self, folder: str | Path, resolution: int = 0, face_dim: int | None = None
    ) -> None:
        self.folder = Path(folder)
        index_path = self.folder / "index.json"
        if not index_path.is_file():
            raise FaceStudioError(
                f"'{self.folder}' has no index.json; run facestudio prepare first"
            )
        self.index = json.loads(index_path.read_text())
        self.resolution = resolution or self.index["prepare"]["resolution"]
        self.face_dim = face_dim or self.index.get("embedding_dim") or 128
        if face_dim and self.index.get("embedding_dim") and self.index["embedding_dim"] != face_dim:
            raise FaceStudioError(
                f"the prepared data has {self.index['embedding_dim']}-d identity embeddings but the model "
                f"expects {face_dim}; prepare with the model's face backend"
            )
        self.samples: list[tuple[Path, dict[str, tuple[int, int]]]] = []
        for shard in self.index["shards"]:
            path = self.folder / shard["name"]
            members: dict[str, dict[str, tuple[int, int]]] = {}
            with tarfile.open(path) as archive:
                for member in archive.getmembers():
                    key, _, suffix = member.name.partition(".")
                    members.setdefault(key, {})[suffix] = (member.offset_data, member.size)
            self.samples += [(path, members[key]) for key in sorted(members)]
        if not self.samples:
            raise FaceStudioError(f"'{self.folder}' holds no samples")

    def __len__(self) -> int:
        return len(self.samples)

    def face_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-dimension mean and standard deviation of the identity embeddings of the set."""
        embeddings = [
            np.load(io.BytesIO(self._read(path, members["embedding.npy"])), allow_pickle=False)
            for path, members in self.samples
            if "embedding.npy" in members
        ]
        if len(embeddings) < 2:
            raise FaceStudioError(
                f"'{self.folder}' has fewer than two samples with a face; prepare more photos"
            )
        stacked = torch.from_numpy(np.stack(embeddings).astype(np.float32))
        return stacked.mean(0), stacked.std(0)

    def _read(self, path: Path, where: tuple[int, int]) -> bytes:
        with open(path, "rb") as handle:
            handle.seek(where[0])
            return handle.read(where[1])

    def _picture(self, data: bytes) -> np.ndarray:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        if image.size != (self.resolution, self.resolution):
            image = image.resize((self.resolution, self.resolution), Image.Resampling.BICUBIC)
        return np.asarray(image, dtype=np.float32) / 255.0

    def __getitem__(self, index: int) -> dict:
        path, members = self.samples[index]
        image = self._picture(self._read(path, members["image.jpg"]))
        style = self._picture(self._read(path, members["style.jpg"]))
        if "embedding.npy" in members:
            face = np.load(
                io.BytesIO(self._read(path, members["embedding.npy"])), allow_pickle=False
            )
            has_face = True
        else:
            face, has_face = np.zeros(self.face_dim, np.float32), False
        meta = json.loads(self._read(path, members["json"])) if "json" in members else {}
        prepared = self.index["prepare"]["resolution"]
        box = np.asarray(meta.get("box", [0, 0, 0, 0]), np.float32) * (self.resolution / prepared)
        return {
            "image": torch.from_numpy(image).permute(2, 0, 1) * 2.0 - 1.0,
            "style_pixels": torch.from_numpy(style).permute(2, 0, 1),
            "face": torch.from_numpy(np.asarray(face, np.float32)),
            "has_face": torch.tensor(has_face),
            "face_box": torch.from_numpy(box),
            "index": torch.tensor(index),
        }
