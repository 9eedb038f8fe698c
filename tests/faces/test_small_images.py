"""Small images (a small model's 64-px outputs) are analysed at an upscale: their faces are
found, boxes are in the image's own pixels, and the identity matches the full-size photo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig
from facestudio.faces.analyzer import upscale_factor
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer(FaceAnalyzerConfig())


def _photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(shared_file(f"data/lfw/{name}")).convert("RGB"))


def test_upscale_factor():
    assert upscale_factor(np.zeros((250, 250, 3), np.uint8)) == 1
    assert upscale_factor(np.zeros((64, 128, 3), np.uint8)) == 4
    assert upscale_factor(np.zeros((10, 10, 3), np.uint8)) == 8


@pytest.mark.slow
def test_a_64_px_portrait_has_its_face_found_and_recognised(analyzer):
    photo = _photo("Aaron_Peirsol/Aaron_Peirsol_0001.jpg")
    small = np.asarray(Image.fromarray(photo[50:200, 50:200]).resize((64, 64), Image.LANCZOS))
    faces = analyzer.detect(small)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].box
    assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64 and 20 < x1 - x0 < 64
    other = analyzer.identity(_photo("Aaron_Peirsol/Aaron_Peirsol_0002.jpg")).embedding
    stranger = analyzer.identity(_photo("Aaron_Eckhart/Aaron_Eckhart_0001.jpg")).embedding
    own = analyzer.identity(small).embedding
    assert float(own @ other) > float(own @ stranger) + 0.05
