"""dlib's aligned face chip, differentiably: 5 landmarks -> similarity transform -> `grid_sample`.

dlib's face descriptor sees a 150×150 chip cut by `get_face_chip_details(shape, 150, 0.25)`
and `extract_image_chip`. This module reproduces that geometry in torch, batched and
differentiable with respect to the image (and the landmarks):

- the least-squares similarity transform from dlib's 5-point template (padded by 0.25) to the
  landmarks, which dlib turns into a rectangle of side `150·scale − 1` pixels (its corner
  pixels map to the chip's corner pixels, hence a `(150·scale − 1) / 149` pixel pitch);
- when that rectangle is more than twice the chip's side, dlib first halves the image with its
  5×5 binomial pyramid (and its `p/2 − (1.25, 0.75)` coordinate map) until it is not; here too;
- bilinear sampling, black outside the image.

Landmarks come in one of two layouts: the 5 points of dlib's shape predictor (two corners of
the image-right eye, two of the image-left eye, the base of the nose), which reproduce dlib's
chip exactly, or the 5 landmarks that `facestudio.faces` stores (eye centres left and right as
seen in the image, nose, mouth corners left and right). For the second, the eye centres are
the means of dlib's corner pairs, which makes the least-squares fit the one of dlib's points
with each eye counted twice; the mouth corners do not enter (dlib's template has none, and the
dlib backend estimates them from the eyes and the nose).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CHIP_SIZE = 150
"""Side of the chip dlib's face descriptor network reads."""

CHIP_PADDING = 0.25
"""Border that `compute_face_descriptor` adds around dlib's landmark template."""

DLIB_5_POINT_TEMPLATE = torch.tensor(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ],
    dtype=torch.float64,
)
"""Where dlib's 5 shape points lie in an unpadded unit chip (from `get_face_chip_details`)."""

FACE_LANDMARK_TEMPLATE = torch.stack(
    [
        DLIB_5_POINT_TEMPLATE[2:4].mean(0),
        DLIB_5_POINT_TEMPLATE[0:2].mean(0),
        DLIB_5_POINT_TEMPLATE[4],
        torch.zeros(2, dtype=torch.float64),
        torch.zeros(2, dtype=torch.float64),
    ]
)
"""The same template for the package's 5 landmarks (eye left, eye right, nose, mouth ×2)."""

FACE_LANDMARK_WEIGHTS = torch.tensor([2.0, 2.0, 1.0, 0.0, 0.0], dtype=torch.float64)
"""Least-squares weights for the package's landmarks: each eye centre stands for two corners."""

_PYRAMID_OFFSET = (1.25, 0.75)
"""dlib's `pyramid_down<2>::point_down`: p ↦ p/2 − (1.25, 0.75)."""


def similarity_fit(
    source: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, 2, 3) least-squares similarity transforms taking (B, N, 2) `source` onto `target`.

    Rotation, uniform scale and shift, no reflection (dlib's `find_similarity_transform`).
    """
    if weights is None:
        weights = torch.ones(source.shape[1], dtype=source.dtype, device=source.device)
    w = (weights / weights.sum()).view(1, -1, 1)
    source_mean, target_mean = (source * w).sum(1), (target * w).sum(1)
    u, v = source - source_mean[:, None], target - target_mean[:, None]
    norm = (w[..., 0] * (u * u).sum(-1)).sum(1)
    if bool((norm <= 0).any()):
        raise ValueError("degenerate landmarks: the template points coincide")
    a = (w[..., 0] * (u * v).sum(-1)).sum(1) / norm
    b = (w[..., 0] * (u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0])).sum(1) / norm
    linear = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], -2)
    shift = target_mean - (linear @ source_mean[..., None])[..., 0]
    return torch.cat([linear, shift[..., None]], -1)


def chip_transform(
    landmarks: torch.Tensor,
    layout: str = "faces",
    size: int = CHIP_SIZE,
    padding: float = CHIP_PADDING,
) -> tuple[torch.Tensor, torch.Tensor]:
    """dlib's chip geometry for (B, 5, 2) landmarks in image pixels (pixel centres at integers).

    `layout` is "faces" (the package's 5 landmarks) or "dlib" (dlib's 5 shape points).
    Returns (B, 2, 3) affine maps from chip pixels to pixels of the pyramid level dlib samples,
    and the (B,) levels: −1 is the image itself, k ≥ 0 the image halved k + 1 times.
    """
    if landmarks.ndim != 3 or landmarks.shape[1:] != (5, 2):
        raise ValueError(
            f"landmarks must be (B, 5, 2) pixel coordinates, got {tuple(landmarks.shape)}"
        )
    if layout == "faces":
        template, weights = FACE_LANDMARK_TEMPLATE, FACE_LANDMARK_WEIGHTS
    elif layout == "dlib":
        template, weights = DLIB_5_POINT_TEMPLATE, None
    else:
        raise ValueError(f"unknown landmark layout '{layout}'; use 'faces' or 'dlib'")
    points = landmarks.to(torch.float64)
    template = ((template + padding) / (1 + 2 * padding) * size).to(points.device)
    if weights is not None:
        weights = weights.to(points.device)
    fit = similarity_fit(template.expand(len(points), -1, -1), points, weights)
    linear = fit[:, :, :2]
    scale = torch.linalg.det(linear).clamp_min(0).sqrt()
    if bool((scale < 1e-6).any()):
        bad = (scale < 1e-6).nonzero()[:, 0].tolist()
        raise ValueError(f"landmarks of face(s) {bad} coincide; give 5 distinct points per face")
    centre = (linear @ torch.full((2, 1), size / 2, dtype=points.dtype, device=points.device))[
        ..., 0
    ] + fit[:, :, 2]
    span = size * scale - 1  # dlib's rectangle: right − left of a side `size·scale` box
    levels = torch.full_like(span, -1, dtype=torch.long)
    while bool((span / 2 + 1 > size).any()):
        deeper = span / 2 + 1 > size
        levels = levels + deeper.long()
        offset = torch.tensor(_PYRAMID_OFFSET, dtype=points.dtype, device=points.device)
        centre = torch.where(deeper[:, None], centre / 2 - offset, centre)
        span = torch.where(deeper, span / 2, span)
    # dlib maps the chip's corner pixels (0 and size − 1) to the rectangle's corners.
    linear = linear * (span / ((size - 1) * scale))[:, None, None]
    middle = torch.full((2, 1), (size - 1) / 2, dtype=points.dtype, device=points.device)
    shift = centre - (linear @ middle)[..., 0]
    return torch.cat([linear, shift[..., None]], -1), levels


def pyramid_down(images: torch.Tensor) -> torch.Tensor:
    """dlib's `pyramid_down<2>`: a 5×5 binomial filter, every other pixel, no border (H → (H−3)//2)."""
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=images.dtype, device=images.device)
    kernel = (taps[:, None] * taps[None, :] / 256).expand(images.shape[1], 1, 5, 5)
    return F.conv2d(images, kernel, stride=2, groups=images.shape[1])


def extract_chips(
    images: torch.Tensor,
    transforms: torch.Tensor,
    levels: torch.Tensor,
    size: int = CHIP_SIZE,
) -> torch.Tensor:
    """(B, C, size, size) chips from (B, C, H, W) images, as `chip_transform` describes them.

    One image (B = 1) serves all B' transforms: several faces of one photo, without copies.
    Bilinear, zero outside the image; differentiable with respect to images and transforms.
    """
    shared = len(images) == 1
    chips = [None] * len(transforms)
    for level in sorted(set(levels.tolist())):
        index = (levels == level).nonzero()[:, 0]
        source = images if shared else images[index]
        for _ in range(level + 1):
            if min(source.shape[-2:]) < 5:
                raise ValueError("image too small for the pyramid level its face needs")
            source = pyramid_down(source)
        if shared:
            source = source.expand(len(index), -1, -1, -1)
        sampled = _sample(source, transforms[index], size)
        for position, item in zip(index.tolist(), sampled, strict=True):
            chips[position] = item
    return torch.stack(chips)


def _sample(images: torch.Tensor, transforms: torch.Tensor, size: int) -> torch.Tensor:
    """`grid_sample` with `transforms` (chip pixels -> image pixels) in normalised coordinates."""
    height, width = images.shape[-2:]
    dtype, device = transforms.dtype, transforms.device
    # chip normalised (align_corners=False) -> chip pixels -> image pixels -> image normalised
    to_pixels = torch.tensor(
        [[size / 2, 0, (size - 1) / 2], [0, size / 2, (size - 1) / 2], [0, 0, 1]],
        dtype=dtype,
        device=device,
    )
    to_normal = torch.tensor(
        [[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1]], dtype=dtype, device=device
    )
    bottom = torch.tensor([0, 0, 1], dtype=dtype, device=device).expand(len(transforms), 1, 3)
    theta = to_normal @ torch.cat([transforms, bottom], 1) @ to_pixels
    grid = F.affine_grid(theta.to(images.dtype), [len(images), 1, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def align_chips(
    images: torch.Tensor, landmarks: torch.Tensor, layout: str = "faces", size: int = CHIP_SIZE
) -> torch.Tensor:
    """dlib's aligned (B, C, size, size) face chips of (B, C, H, W) images, differentiably.

    `landmarks`: (B, 5, 2) pixel coordinates in the `layout` of `chip_transform`; one image
    (B = 1) may serve several sets of landmarks (faces of one photo).
    """
    if images.ndim != 4 or len(images) not in (1, len(landmarks)):
        raise ValueError(
            f"images must be (B, C, H, W) with one set of landmarks each; got images "
            f"{tuple(images.shape)} and landmarks {tuple(landmarks.shape)}"
        )
    transforms, levels = chip_transform(landmarks.to(images.device), layout, size)
    return extract_chips(images, transforms, levels, size)
