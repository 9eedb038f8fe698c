"""ReconstructionDataset: items hold exactly what it documents, scaled to the training size."""

from __future__ import annotations

import pytest
import torch

from facestudio.data.dataset import ReconstructionDataset
from facestudio.errors import FaceStudioError
from tests.data.conftest import write_prepared


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return write_prepared(tmp_path_factory.mktemp("prepared"), count=4, faceless=(2,))


def test_items_hold_the_documented_keys(prepared):
    item = ReconstructionDataset(prepared)[0]
    assert set(item) == {
        "image",
        "style_pixels",
        "face",
        "has_face",
        "face_box",
        "face_landmarks",
        "index",
    }
    assert item["image"].shape == (3, 64, 64) and -1 <= item["image"].min() < 0
    assert item["style_pixels"].shape == (3, 64, 64) and item["style_pixels"].min() >= 0
    assert item["face"].shape == (128,) and bool(item["has_face"]) and int(item["index"]) == 0
    assert item["face_landmarks"].shape == (5, 2)


def test_boxes_and_landmarks_follow_the_training_resolution(prepared):
    item = ReconstructionDataset(prepared, resolution=32)[1]
    assert item["image"].shape == (3, 32, 32)
    assert torch.equal(item["face_box"], torch.tensor([8.0, 4.0, 24.0, 20.0]))
    assert torch.equal(item["face_landmarks"][0], torch.tensor([12.0, 10.0]))


def test_a_faceless_sample_has_a_zero_identity_of_the_model_size(prepared):
    dataset = ReconstructionDataset(prepared)
    item = dataset[2]
    assert not bool(item["has_face"]) and torch.all(item["face"] == 0)
    assert torch.all(item["face_box"] == 0) and torch.all(item["face_landmarks"] == 0)
    with pytest.raises(
        FaceStudioError, match="128-d identity embeddings but the model expects 512"
    ):
        dataset.require_face_dim(512)


def test_a_folder_without_an_index_says_to_prepare(tmp_path):
    with pytest.raises(FaceStudioError, match="run facestudio prepare first"):
        ReconstructionDataset(tmp_path)
