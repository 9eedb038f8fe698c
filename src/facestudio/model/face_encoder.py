"""dlib's 128-d ResNet face descriptor as a PyTorch module: differentiable identity embeddings.

The network of `dlib_face_recognition_resnet_model_v1.dat` (dlib's `face_recognition_model_v1`),
layer for layer: a 7×7/2 convolution and 3×3/2 max-pool, 15 residual blocks of 32, 64, 128
and 256 filters (stride-2 convolutions unpadded, 2×2/2 average-pool shortcuts), global average
pooling and a 128-d linear map without bias. dlib's batch-norm `affine` layers are folded into
the convolutions before them. Where a block and its shortcut differ in size, dlib adds them
as if the smaller one were zero-padded at the end (channels, bottom, right); so does this.

The weights ship with the package (`weights/dlib_resnet_v1.safetensors`, converted from the
.dat file by `recipes/face_encoder`; provenance and licence in `weights/README.md`). The
outputs are dlib's raw descriptors (not normalised: their norms are near, not at, 1);
`identity_embedding` gives the L2-normalised ones that cosine similarity compares.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from facestudio.model.face_chip import CHIP_SIZE, align_chips

WEIGHTS_FILE = "dlib_resnet_v1.safetensors"
"""The shipped weights, in `facestudio/model/weights/`."""

_LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
"""(filters, blocks, first block halves the resolution) of dlib's residual levels, input first."""


class _ResidualBlock(nn.Module):
    """conv3×3(stride) → ReLU → conv3×3 (+ shortcut) → ReLU, batch norm folded into the convs."""

    def __init__(self, in_channels: int, channels: int, downsample: bool) -> None:
        super().__init__()
        self.downsample = downsample
        stride, padding = (2, 0) if downsample else (1, 1)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, padding)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.conv2(F.relu(self.conv1(x)))
        shortcut = F.avg_pool2d(x, 2, 2) if self.downsample else x
        return F.relu(_add_zero_padded(residual, shortcut))


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's `add_prev`: the sum over the larger shape, the smaller tensor zero-padded at the end."""
    if a.shape == b.shape:
        return a + b
    shape = [max(p, q) for p, q in zip(a.shape[1:], b.shape[1:], strict=True)]

    def pad(t: torch.Tensor) -> torch.Tensor:
        c, h, w = t.shape[1:]
        return F.pad(t, (0, shape[2] - w, 0, shape[1] - h, 0, shape[0] - c))

    return pad(a) + pad(b)


class DlibResNetEncoder(nn.Module):
    """dlib's face descriptor network: (B, 3, 150, 150) aligned RGB chips -> (B, 128) descriptors.

    Build it with `from_pretrained()` (the shipped weights, frozen, in eval mode). Chips are
    dlib's (see `facestudio.model.face_chip`); `identity_embedding` aligns photos itself.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 7, 2, 0)
        blocks, channels = [], 32
        for filters, count, downsample in _LEVELS:
            for k in range(count):
                blocks.append(_ResidualBlock(channels, filters, downsample and k == 0))
                channels = filters
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, 128, bias=False)
        # dlib subtracts these per-channel means from 0–255 pixels, then divides by 256.
        self.register_buffer("input_mean", torch.zeros(3))

    @classmethod
    def from_pretrained(
        cls, path: str | Path | None = None, dtype: torch.dtype = torch.float32
    ) -> DlibResNetEncoder:
        """The encoder with weights from a safetensors file (default: the shipped one), frozen."""
        from safetensors.torch import load_file

        if path is None:
            path = resources.files("facestudio.model") / "weights" / WEIGHTS_FILE
        path = Path(str(path))
        if not path.is_file():
            raise FileNotFoundError(
                f"face encoder weights not found at {path}; reinstall facestudio or convert them "
                "with recipes/face_encoder/convert_dlib.py"
            )
        encoder = cls()
        state = load_file(str(path))
        encoder.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
        return encoder.to(dtype).eval().requires_grad_(False)

    def forward(
        self, chips: torch.Tensor, value_range: tuple[float, float] = (0.0, 1.0)
    ) -> torch.Tensor:
        """dlib's raw descriptors of (B, 3, 150, 150) RGB chips whose values span `value_range`."""
        if chips.ndim != 4 or tuple(chips.shape[1:]) != (3, CHIP_SIZE, CHIP_SIZE):
            raise ValueError(
                f"chips must be (B, 3, {CHIP_SIZE}, {CHIP_SIZE}) RGB, got {tuple(chips.shape)}; "
                "align photos with identity_embedding or facestudio.model.face_chip.align_chips"
            )
        low, high = value_range
        pixels = (chips.to(self.input_mean.dtype) - low) * (255.0 / (high - low))
        x = (pixels - self.input_mean.view(1, 3, 1, 1)) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))

    def identity_embedding(
        self,
        images: torch.Tensor,
        landmarks: torch.Tensor,
        value_range: tuple[float, float] = (0.0, 1.0),
        layout: str = "faces",
    ) -> torch.Tensor:
        """(B, 128) L2-normalised embeddings of faces in (B, 3, H, W) RGB images, differentiably.

        `landmarks`: (B, 5, 2) pixel coordinates, one face per image, in the package's order
        (eye left, eye right, nose, mouth left, mouth right as seen) or, with `layout="dlib"`,
        dlib's 5 shape points. Any image size works (a 64-px portrait as well as a photo);
        gradients flow to the images, not to the frozen weights.
        """
        low, high = value_range
        unit = (images.to(self.input_mean.dtype) - low) / (high - low)
        chips = align_chips(unit, landmarks, layout)
        return F.normalize(self(chips), dim=-1)
