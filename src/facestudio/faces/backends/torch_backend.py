"""The dlib backend with its descriptor network run in PyTorch: batched, on any device.

Detection and dlib's 5-point shapes stay dlib's; the embedding comes from
`facestudio.model.face_encoder.DlibResNetEncoder` on dlib's chip geometry (cosine to dlib's
own descriptor above 0.9999, benchmarks/results/face_encoder_port.json). So the dlib backend's
calibrated threshold holds, and the recogniser counts as dlib's: scoring generated faces with
it is as biased as scoring with dlib. On a GPU, or for many faces of one photo at once
(`embed_faces`), it is the faster of the two.
"""

from __future__ import annotations

import numpy as np

from facestudio.errors import ModelLoadError
from facestudio.faces.backends.dlib_backend import DlibBackend, DlibBackendConfig, _rect
from facestudio.faces.types import Face


class TorchBackend(DlibBackend):
    """dlib detection and shapes; embeddings from the PyTorch port of dlib's network.

    `device`: a torch device such as "cuda" or "cpu"; None picks CUDA when available.
    """

    name = "torch"

    def __init__(self, config: DlibBackendConfig | None = None, device: str | None = None) -> None:
        import torch

        from facestudio.model.face_encoder import DlibResNetEncoder

        super().__init__(config)
        if self.config.num_jitters:
            raise ModelLoadError(
                "the torch backend does not jitter faces; set num_jitters to 0 or use 'dlib'"
            )
        self._torch = torch
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        try:
            self.encoder = DlibResNetEncoder.from_pretrained().to(self.device)
        except (FileNotFoundError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load the torch face encoder: {exc}") from None
        # recognizer_id() stays dlib's: the same network, so biased scoring is still caught.
        self._fingerprint += ",torch-encoder"

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        return self.embed_faces(image, [face])[0]

    def embed_faces(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        """(N, 128) raw dlib descriptors of several faces of one (H, W, 3) uint8 photo at once."""
        from facestudio.model.face_chip import align_chips

        torch = self._torch
        if not faces:
            return np.zeros((0, 128), dtype=np.float32)
        shapes = [self._landmarks(image, _rect(self._dlib, face.box)) for face in faces]
        points = np.array([[(p.x, p.y) for p in s.parts()] for s in shapes], dtype=np.float64)
        pixels = torch.from_numpy(image.copy()).to(self.device)  # photos may be read-only
        pixels = pixels.permute(2, 0, 1)[None].float().div(255)
        with torch.no_grad():
            chips = align_chips(pixels, torch.from_numpy(points).to(self.device), layout="dlib")
            return self.encoder(chips).cpu().numpy().astype(np.float32)
