"""Loading the bundled model in one obvious call, and through diffusers' generic loader."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from diffusers import DiffusionPipeline

import facestudio
from facestudio.pipeline import FaceStudioPipeline
from facestudio.pipeline.generic_loading import CLASS_ENTRY, MODULE_NAME, SHIM_SOURCE


@pytest.mark.parametrize("name", ["bundled", facestudio.BUNDLED_MODEL])
def test_the_bundled_model_loads_by_name_or_constant(name):
    pipeline = FaceStudioPipeline.from_pretrained(name)
    assert type(pipeline) is FaceStudioPipeline and pipeline.unet.config.sample_size == 16


def test_diffusers_generic_loader_opens_a_facestudio_folder():
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        DiffusionPipeline.from_pretrained(facestudio.BUNDLED_MODEL)
    pipeline = DiffusionPipeline.from_pretrained(facestudio.BUNDLED_MODEL, trust_remote_code=True)
    assert type(pipeline) is FaceStudioPipeline
    pipeline.set_progress_bar_config(disable=True)
    out = pipeline(identities=[np.ones(128, np.float32)], num_inference_steps=1, seed=0)
    assert out.images[0].size == (64, 64)


def test_saved_folders_get_the_loader_entry(tiny_pipeline_folder):
    index = json.loads((tiny_pipeline_folder / "model_index.json").read_text())
    assert index["_class_name"] == CLASS_ENTRY
    assert (tiny_pipeline_folder / f"{MODULE_NAME}.py").read_text() == SHIM_SOURCE


def test_facestudio_never_runs_a_folders_python_file(tiny_pipeline_folder, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_pipeline_folder, folder)
    marker = tmp_path / "ran"
    (folder / f"{MODULE_NAME}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    pipeline = FaceStudioPipeline.from_pretrained(folder)
    assert type(pipeline) is FaceStudioPipeline and not marker.exists()
