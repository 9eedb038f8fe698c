"""The PyTorch port of dlib's face descriptor and its differentiable chip alignment."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facestudio.faces import LANDMARK_NAMES
from facestudio.faces.backends.dlib_backend import _face_from_shape
from facestudio.images import load_image
from facestudio.model.face_chip import (
    CHIP_PADDING,
    CHIP_SIZE,
    DLIB_5_POINT_TEMPLATE,
    FACE_LANDMARK_TEMPLATE,
    align_chips,
    chip_transform,
    similarity_fit,
)
from facestudio.model.face_encoder import DlibResNetEncoder
from tests.conftest import shared_file

REAL_PHOTOS = [
    "data/face_recognition/obama/obama.jpg",  # 1137×910: dlib samples a halved image
    "data/faceapi/sheldon/sheldon1.png",  # 150×150: the chip reaches past the border
    "data/lfw/Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
]


@pytest.fixture(scope="module")
def encoder() -> DlibResNetEncoder:
    return DlibResNetEncoder.from_pretrained()


def _similarity(scale: float, degrees: float, shift: tuple[float, float]) -> torch.Tensor:
    angle = math.radians(degrees)
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return torch.tensor([[c, -s, shift[0]], [s, c, shift[1]]], dtype=torch.float64)


def _apply(transform: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    return points @ transform[:, :2].T + transform[:, 2]


def _template_pixels(template: torch.Tensor) -> torch.Tensor:
    return (template + CHIP_PADDING) / (1 + 2 * CHIP_PADDING) * CHIP_SIZE


def _cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.slow
@pytest.mark.parametrize("photo", REAL_PHOTOS)
def test_matches_dlib_descriptor_on_real_photos(encoder, dlib_analyzer, photo):
    import dlib

    image = load_image(shared_file(photo))
    face = dlib_analyzer.detect(image)[0]
    expected = dlib_analyzer.backend.embed(image, face)
    backend = dlib_analyzer.backend
    shape = backend._landmarks(image, dlib.rectangle(*(round(v) for v in face.box)))
    chip = torch.from_numpy(dlib.get_face_chip(image, shape, CHIP_SIZE, CHIP_PADDING))
    pixels = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        on_dlib_chip = encoder(chip.permute(2, 0, 1)[None].float() / 255)[0]
        aligned = encoder.identity_embedding(pixels, torch.from_numpy(face.landmarks)[None])[0]
    # The network alone reproduces dlib's raw descriptor, norm included (dlib does not normalise).
    assert _cosine(on_dlib_chip, expected) > 0.9999
    assert float(on_dlib_chip.norm()) == pytest.approx(float(np.linalg.norm(expected)), rel=1e-3)
    # Aligned from the package's 5 landmarks: a unit vector close to dlib's.
    assert float(aligned.norm()) == pytest.approx(1.0, abs=1e-5)
    assert _cosine(aligned, expected) > 0.995


@pytest.mark.slow
def test_alignment_reproduces_dlibs_chip(dlib_analyzer):
    import dlib

    image = load_image(shared_file(REAL_PHOTOS[0]))
    face = dlib_analyzer.detect(image)[0]
    shape = dlib_analyzer.backend._landmarks(image, dlib.rectangle(*(round(v) for v in face.box)))
    expected = dlib.get_face_chip(image, shape, CHIP_SIZE, CHIP_PADDING).astype(np.float64)
    points = torch.tensor([(p.x, p.y) for p in shape.parts()], dtype=torch.float64)[None]
    pixels = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].double()
    ours = align_chips(pixels, points, layout="dlib")[0].permute(1, 2, 0).numpy()
    # dlib stores its chip as uint8 (truncated): within a pixel level on average.
    assert np.abs(ours - expected).mean() < 1.0


def test_similarity_fit_recovers_a_known_transform():
    transform = _similarity(1.7, 23.0, (40.0, -12.0))
    source = torch.randn(1, 7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fit = similarity_fit(source, _apply(transform, source))
    torch.testing.assert_close(fit[0], transform)


def test_both_landmark_layouts_give_the_same_chip():
    transform = _similarity(0.8, -15.0, (300.0, 200.0))
    dlib_points = _apply(transform, _template_pixels(DLIB_5_POINT_TEMPLATE))
    face_points = _apply(transform, _template_pixels(FACE_LANDMARK_TEMPLATE))
    face_points[3:] = 0.0  # mouth corners do not enter the fit
    a, levels_a = chip_transform(dlib_points[None], "dlib")
    b, levels_b = chip_transform(face_points[None], "faces")
    torch.testing.assert_close(a, b)
    assert levels_a.tolist() == levels_b.tolist() == [-1]


def test_faces_layout_is_the_dlib_backends_landmark_order():
    import dlib

    assert LANDMARK_NAMES[:3] == ("eye_left", "eye_right", "nose")
    transform = _similarity(1.3, 10.0, (120.0, 90.0))
    points = _apply(transform, _template_pixels(DLIB_5_POINT_TEMPLATE))
    shape = dlib.full_object_detection(
        dlib.rectangle(0, 0, 400, 400), [dlib.point(round(x), round(y)) for x, y in points.tolist()]
    )
    face = _face_from_shape(dlib.rectangle(0, 0, 400, 400), 1.0, shape)
    rounded = torch.tensor([(p.x, p.y) for p in shape.parts()], dtype=torch.float64)
    landmarks = torch.from_numpy(face.landmarks).double()[None]
    from_faces, _ = chip_transform(landmarks, "faces")
    from_dlib, _ = chip_transform(rounded[None], "dlib")
    # Equal up to dlib's integer shape points (the eye corners' own offsets are rounded).
    torch.testing.assert_close(from_faces, from_dlib, atol=0.5, rtol=0.01)
    swapped, _ = chip_transform(landmarks[:, [1, 0, 2, 3, 4]], "faces")
    assert float((swapped - from_dlib).abs().max()) > 10


@pytest.mark.parametrize(("scale", "levels"), [(1.5, [-1]), (3.0, [0]), (7.0, [1])])
def test_a_known_warp_is_undone(scale, levels):
    """A smooth chip pattern placed in a photo by a known similarity comes back out."""
    generator = torch.Generator().manual_seed(1)
    pattern = (
        F.interpolate(
            torch.rand(1, 3, 6, 6, generator=generator),
            size=(150, 150),
            mode="bicubic",
            align_corners=True,
        )
        .clamp(0, 1)
        .double()
    )
    size = round(150 * scale * 1.6)
    transform = _similarity(scale, 25.0, (0.0, 0.0))
    transform[:, 2] = size / 2 - transform[:, :2] @ torch.tensor([75.0, 75.0]).double()
    # Each photo pixel looks up the pattern at the inverse transform (chip pixels, centres at k).
    inverse = torch.linalg.inv(torch.cat([transform, torch.tensor([[0.0, 0, 1]]).double()]))[:2]
    ys, xs = torch.meshgrid(torch.arange(size).double(), torch.arange(size).double(), indexing="ij")
    chip_xy = _apply(inverse, torch.stack([xs, ys], -1).view(-1, 2)).view(size, size, 2)
    grid = (chip_xy * 2 + 1) / CHIP_SIZE - 1
    photo = F.grid_sample(pattern, grid[None], align_corners=False)
    landmarks = _apply(transform, _template_pixels(DLIB_5_POINT_TEMPLATE))[None]
    _, found_levels = chip_transform(landmarks, "dlib")
    chip = align_chips(photo, landmarks, "dlib")
    assert found_levels.tolist() == levels
    inner = (slice(None), slice(None), slice(10, -10), slice(10, -10))
    # dlib's own geometry differs from the exact inverse by about half a pixel and its pyramid
    # blurs: small against the pattern's range, far below a wrong rotation or scale.
    assert (chip - pattern)[inner].abs().mean() < 0.03
    assert (chip.flip(-1) - pattern)[inner].abs().mean() > 0.1


def test_gradients_flow_to_the_image_not_the_weights(encoder):
    generator = torch.Generator().manual_seed(2)
    images = torch.rand(2, 3, 64, 64, generator=generator, requires_grad=True)
    # Where the package's 64-px portraits put the eyes and the nose.
    landmarks = torch.tensor([[[24.5, 28.7], [39.5, 28.6], [32.0, 37.4], [0, 0], [0, 0]]] * 2)
    embeddings = encoder.identity_embedding(images * 2 - 1, landmarks, value_range=(-1.0, 1.0))
    target = F.normalize(torch.randn(2, 128, generator=generator), dim=-1)
    (1 - (embeddings * target).sum(-1)).mean().backward()
    assert embeddings.shape == (2, 128)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(2))
    assert images.grad is not None and bool(torch.isfinite(images.grad).all())
    assert float(images.grad.abs().sum()) > 0
    assert all(p.grad is None and not p.requires_grad for p in encoder.parameters())


def test_batch_equals_one_by_one(encoder):
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(3, 3, 480, 480, generator=generator)
    big = _apply(_similarity(3.0, 5.0, (10.0, 0.0)), _template_pixels(FACE_LANDMARK_TEMPLATE))
    small = _apply(
        _similarity(0.9, -20.0, (150.0, 200.0)), _template_pixels(FACE_LANDMARK_TEMPLATE)
    )
    landmarks = torch.stack([big, small, big * 0.6 + 40]).float()
    assert chip_transform(landmarks, "faces")[1].tolist() == [0, -1, -1]
    with torch.no_grad():
        batched = encoder.identity_embedding(images, landmarks)
        alone = torch.cat(
            [encoder.identity_embedding(images[k : k + 1], landmarks[k : k + 1]) for k in range(3)]
        )
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-4)


def test_bad_inputs_are_refused(encoder):
    with pytest.raises(ValueError, match="chips must be"):
        encoder(torch.zeros(1, 3, 112, 112))
    with pytest.raises(ValueError, match="landmarks must be"):
        encoder.identity_embedding(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match=r"face\(s\) \[1\] coincide"):
        chip_transform(torch.stack([torch.rand(5, 2) * 100, torch.zeros(5, 2)]), "faces")
    with pytest.raises(ValueError, match="unknown landmark layout"):
        chip_transform(torch.zeros(1, 5, 2), "arcface")
    with pytest.raises(FileNotFoundError, match="convert_dlib"):
        DlibResNetEncoder.from_pretrained("/nonexistent/weights.safetensors")
