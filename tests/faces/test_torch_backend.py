"""The torch backend: dlib's detector with dlib's descriptor network run in PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig
from facestudio.faces.backends.torch_backend import TorchBackend
from facestudio.images import load_image
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def torch_analyzer() -> FaceAnalyzer:
    return FaceAnalyzer(FaceAnalyzerConfig.from_dict({"backend": "torch"}))


def test_is_chosen_by_name_and_shares_dlibs_recognizer_id(torch_analyzer, dlib_analyzer):
    backend = torch_analyzer.backend
    assert isinstance(backend, TorchBackend)
    # The same recogniser: scoring with it counts as biased exactly as scoring with dlib does.
    assert backend.recognizer_id() == dlib_analyzer.backend.recognizer_id()
    assert backend.fingerprint() != dlib_analyzer.backend.fingerprint()
    assert torch_analyzer.threshold == dlib_analyzer.threshold


@pytest.mark.slow
def test_batched_embeddings_of_a_group_photo_match_dlib(torch_analyzer, dlib_analyzer):
    image = load_image(shared_file("data/groups/bbt3.jpg"))
    faces = dlib_analyzer.detect(image)
    assert len(faces) >= 3
    batched = torch_analyzer.backend.embed_faces(image, faces)
    expected = np.stack([dlib_analyzer.backend.embed(image, face) for face in faces])
    cosines = (batched * expected).sum(1) / (
        np.linalg.norm(batched, axis=1) * np.linalg.norm(expected, axis=1)
    )
    assert batched.shape == (len(faces), 128)
    assert cosines.min() > 0.999
    single = torch_analyzer.backend.embed(image, faces[1])
    np.testing.assert_allclose(single, batched[1], atol=1e-4)
