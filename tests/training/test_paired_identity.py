"""Paired-photo training: prepared samples keep their person from the manifest, and the
identity input comes from another photo of the same person at the configured rate."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import EulerAncestralDiscreteScheduler

from facestudio.data.dataset import ReconstructionDataset
from facestudio.data.prepare import PrepareConfig, prepare, write_index
from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig
from facestudio.training.objectives import Denoising, Reconstruction
from facestudio.training.paired_identity import SamePersonPhotos
from tests.conftest import shared_file
from tests.training.conftest import PHOTOS, tiny_config


@pytest.fixture(scope="module")
def people_prepared(tmp_path_factory, face_cache):
    """The eight photos (two per person) listed in a manifest with their person ids, the last
    person's photos without one."""
    folder = tmp_path_factory.mktemp("people")
    manifest = folder / "train.jsonl"
    lines = []
    for photo in PHOTOS:
        person = photo.split("/")[1] if "id06" not in photo else None
        entry = {"path": str(shared_file(f"data/{photo}"))}
        if person:
            entry["person"] = f"deepface/{person}"
        lines.append(json.dumps(entry))
    manifest.write_text("\n".join(lines) + "\n")
    out = folder / "prepared"
    analyzer = FaceAnalyzer(FaceAnalyzerConfig(cache_dir=face_cache))
    config = PrepareConfig(resolution=64, shard_size=4)
    prepare([str(manifest)], out, analyzer, config, progress=False)
    write_index(out, config, analyzer)
    return out


def test_prepared_samples_keep_the_manifest_person(people_prepared):
    people, embeddings, has_face = ReconstructionDataset(people_prepared).identities()
    assert people == ["deepface/id03"] * 2 + ["deepface/id04"] * 2 + ["deepface/id05"] * 2 + [""] * 2
    assert embeddings.shape == (8, 128) and bool(has_face.all())


def test_the_identity_comes_from_the_other_photo_of_the_person(people_prepared):
    dataset = ReconstructionDataset(people_prepared)
    same = SamePersonPhotos(*dataset.identities())
    assert same.paired_samples == 6
    index = torch.arange(8)
    faces = torch.stack([dataset[i]["face"] for i in range(8)])
    always = same.faces(index, faces, 1.0, torch.Generator().manual_seed(0))
    partner = torch.tensor([1, 0, 3, 2, 5, 4, 6, 7])  # the unlabelled pair keeps its own
    torch.testing.assert_close(always, faces[partner])
    never = same.faces(index, faces, 0.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(never, faces)
    half = [
        (same.faces(index, faces, 0.5, torch.Generator().manual_seed(s))[:6] != faces[:6])
        .any(1)
        .float()
        .mean()
        for s in range(40)
    ]
    assert 0.35 < float(torch.stack(half).mean()) < 0.65


def test_v_prediction_targets_and_clean_estimates_agree(tiny_pipeline, people_prepared):
    latents, noise = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    alphas = torch.tensor([0.9, 0.5, 0.01]).view(-1, 1, 1, 1)
    noisy = alphas.sqrt() * latents + (1 - alphas).sqrt() * noise
    kwargs = dict(timesteps=torch.zeros(3), alphas=alphas, face_given=torch.ones(3, dtype=bool))
    v = Denoising(latents, noise, noisy, predicted=None, prediction_type="v_prediction", **kwargs)
    perfect = Denoising(
        latents, noise, noisy, predicted=v.target(), prediction_type="v_prediction", **kwargs
    )
    torch.testing.assert_close(perfect.predicted_latents(), latents)
    # Min-SNR-γ weighs the same x₀ error equally under either target.
    eps = Denoising(latents, noise, noisy, predicted=noise, **kwargs)
    ratio = eps.min_snr_weights(5.0) / perfect.min_snr_weights(5.0)
    snr = (alphas / (1 - alphas)).flatten()
    torch.testing.assert_close(ratio, (snr + 1) / snr)


def test_a_v_prediction_model_trains_on_v(tiny_pipeline, people_prepared):
    scheduler = tiny_pipeline.scheduler
    tiny_pipeline.scheduler = EulerAncestralDiscreteScheduler.from_config(
        scheduler.config, prediction_type="v_prediction"
    )
    try:
        config = tiny_config("unused", "unused", paired_identity_probability=1.0)
        model = Reconstruction(tiny_pipeline, config)
        dataset = ReconstructionDataset(people_prepared)
        model.setup(dataset, torch.device("cpu"))
        batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
        with torch.no_grad():
            denoised = model.denoise(batch, torch.Generator().manual_seed(0))
    finally:
        tiny_pipeline.scheduler = scheduler
    assert denoised.prediction_type == "v_prediction"
    assert not torch.allclose(denoised.target(), denoised.noise)
