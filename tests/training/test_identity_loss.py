"""The identity loss: clean estimates, which samples count, and distances that mean identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facestudio.images import load_image
from facestudio.model.face_encoder import DlibResNetEncoder
from facestudio.training.identity_loss import (
    IdentityLoss,
    IdentityLossSettings,
    identity_distance,
    select_samples,
)
from tests.conftest import shared_file

PERSON_A = [
    "data/lfw/Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
    "data/lfw/Aaron_Sorkin/Aaron_Sorkin_0002.jpg",
]
PERSON_B = "data/lfw/Abba_Eban/Abba_Eban_0001.jpg"


@pytest.fixture(scope="module")
def encoder() -> DlibResNetEncoder:
    return DlibResNetEncoder.from_pretrained()


def _photo(dlib_analyzer, relative: str, size: int = 96):
    """A photo as the loss sees generated images: (1, 3, size, size) in [-1, 1], the largest
    face's landmarks scaled with it, and dlib's own embedding of the full photo."""
    image = load_image(shared_file(relative))
    identity = dlib_analyzer.identity(image)
    scale = size / image.shape[1]
    pixels = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    small = torch.nn.functional.interpolate(pixels, size=(size, size), mode="area")
    landmarks = torch.from_numpy(identity.face.landmarks.astype(np.float32) * scale)[None]
    return small, landmarks, torch.from_numpy(np.asarray(identity.embedding, np.float32))[None]


def test_selects_usable_low_noise_samples_least_noisy_first():
    settings = IdentityLossSettings(weight=1.0, max_timestep=400, max_samples=2)
    timesteps = torch.tensor([900, 300, 10, 399, 50, 401])
    usable = torch.tensor([True, True, True, True, False, True])
    assert select_samples(timesteps, usable, settings).tolist() == [2, 1]
    assert select_samples(timesteps, torch.zeros(6, dtype=torch.bool), settings).numel() == 0


@pytest.mark.slow
def test_distance_is_smaller_for_the_same_person_and_has_gradients(encoder, dlib_analyzer):
    a_image, a_landmarks, a_embedding = _photo(dlib_analyzer, PERSON_A[0])
    _, _, a_other_embedding = _photo(dlib_analyzer, PERSON_A[1])
    _, _, b_embedding = _photo(dlib_analyzer, PERSON_B)
    image = a_image.clone().requires_grad_(True)
    targets = torch.cat([a_embedding, a_other_embedding, b_embedding])
    distances = identity_distance(
        encoder, image.expand(3, -1, -1, -1), a_landmarks.expand(3, -1, -1), targets
    )
    own, same_person, other_person = distances.tolist()
    assert own < same_person < other_person
    distances[0].backward()
    assert image.grad is not None and float(image.grad.abs().sum()) > 0


def test_loss_with_no_selected_sample_is_zero_but_keeps_the_graph(encoder):
    loss = IdentityLoss(IdentityLossSettings(weight=1.0), encoder)
    images = torch.zeros(0, 3, 64, 64, requires_grad=True)
    batch = {"face": torch.zeros(2, 128), "face_landmarks": torch.zeros(2, 5, 2)}
    value = loss(images, batch, torch.zeros(0, dtype=torch.long))
    value.backward()
    assert value.item() == 0.0 and images.grad is not None


def _first_batch(data) -> dict:
    from facestudio.data.dataset import ReconstructionDataset

    dataset = ReconstructionDataset(data)
    return torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])


@pytest.mark.slow
@pytest.mark.parametrize("target", ["diffusion", "decoder"])
def test_objectives_add_the_identity_term_with_gradients(tmp_path, eight_photos_prepared, target):
    from facestudio.training.loop import initial_pipeline
    from facestudio.training.objectives import Objective
    from tests.training.conftest import tiny_config

    losses, gradients = {}, {}
    for weight in (0.0, 1.0):
        config = tiny_config(
            tmp_path / str(weight),
            eight_photos_prepared,
            target=target,
            identity_loss_weight=weight,
            identity_max_timestep=999,  # every sample counts: the test sees the term for sure
        )
        objective = Objective.build(initial_pipeline(config.model), config)
        # The frozen encoder is no part of what is trained, saved or prepared by accelerate.
        assert not any(key.startswith("identity") for key in objective.state_dict())
        batch = _first_batch(eight_photos_prepared)
        loss = objective.loss(batch, torch.Generator().manual_seed(0))
        loss.backward()
        losses[weight] = loss.item()
        gradients[weight] = [p.grad.clone() for p in objective.parameters() if p.grad is not None]
    # Same seed, same draws: the identity term is exactly what changes the loss and gradients.
    assert losses[1.0] > losses[0.0]
    assert any(not torch.equal(a, b) for a, b in zip(gradients[0.0], gradients[1.0], strict=True))
