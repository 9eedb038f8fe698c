"""The small model that ships in the package: it loads offline from the package, is the CLI's
default, follows its identity input deterministically, and stays within its size budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facestudio.errors import FaceStudioError
from facestudio.interfaces.cli import main
from facestudio.interfaces.example_photo import example_photo
from facestudio.interfaces.generate_command import default_model
from facestudio.pipeline import FaceStudioPipeline
from facestudio.pipeline.generic_loading import SHIM_SOURCE

FOLDER = Path(default_model())


@pytest.fixture(scope="module")
def bundled():
    pipeline = FaceStudioPipeline.from_pretrained(FOLDER)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_weights_are_safetensors_within_60_mb_with_a_model_card():
    files = [p for p in FOLDER.rglob("*") if p.is_file()]
    weights = [p for p in files if p.suffix == ".safetensors"]
    assert {p.suffix for p in files} <= {".safetensors", ".json", ".md", ".txt", ".py"}
    # The one Python file only re-exports the class for diffusers' generic loader.
    assert [p.name for p in files if p.suffix == ".py"] == ["facestudio_pipeline.py"]
    assert (FOLDER / "facestudio_pipeline.py").read_text() == SHIM_SOURCE
    assert len(weights) >= 4 and sum(p.stat().st_size for p in weights) <= 60 * 2**20
    card = (FOLDER / "README.md").read_text()
    for section in ("Training data", "Recipe", "Evaluation", "Limits", "Licence"):
        assert f"## {section}" in card


def test_it_masks_style_faces_computes_in_fp32_and_has_no_text_prior(bundled):
    assert bundled.config.style_faces == "mask"
    assert bundled.prior is None and bundled.unet.dtype.is_floating_point
    assert str(bundled.unet.dtype) == "torch.float32"
    with pytest.raises(FaceStudioError, match="cannot follow a prompt"):
        bundled(prompt="a portrait", identities=[example_photo()], num_inference_steps=2)


def test_same_seed_same_image_and_the_identity_changes_it(bundled):
    photo = example_photo()
    embedding = bundled.face_analyzer.identity(photo).embedding
    other = np.roll(embedding, 17)

    def run(face):
        return np.asarray(bundled(identities=[face], seed=5, num_inference_steps=8).images[0])

    first, again, impostor = run(embedding), run(embedding), run(other)
    assert np.array_equal(first, again)
    assert np.abs(first.astype(int) - impostor.astype(int)).mean() > 2.0


def test_generate_uses_it_by_default(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FACESTUDIO_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "astronaut.png"
    code = main(["generate", "--example", "--steps", "4", "--seed", "0", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    image = Image.open(out)
    assert image.size == (64, 64)
    assert json.loads(image.info["facestudio"])["model"] == "bundled"  # a name, not a path
