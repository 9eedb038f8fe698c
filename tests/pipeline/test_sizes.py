"""Output sizes: what a model declares it makes well (`sizes` in model_index.json), the size a
call gets when none is given (it follows the people), and the one-line refusal of any other,
the same from every front end. A model without the declaration keeps the old behaviour."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facestudio import BUNDLED_MODEL
from facestudio.errors import FaceStudioError, ModelLoadError
from facestudio.pipeline import limits
from facestudio.pipeline.model_info import ModelInfo
from facestudio.pipeline.request import GenerationRequest
from facestudio.pipeline.sizes import SizePolicy


def embedding(seed: int, dim: int = 128) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


@pytest.fixture(scope="module")
def bundled() -> ModelInfo:
    return ModelInfo.from_folder(BUNDLED_MODEL)


@pytest.fixture(scope="module")
def bundled_pipeline():
    from facestudio.pipeline import FaceStudioPipeline

    pipeline = FaceStudioPipeline.from_pretrained("bundled")
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _configs_only(source, target):
    for path in source.rglob("*.json"):
        (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.relative_to(source))
    return target


def _declare(folder, sizes) -> None:
    index = folder / "model_index.json"
    data = json.loads(index.read_text())
    data["sizes"] = sizes
    index.write_text(json.dumps(data))


def test_the_bundled_model_declares_its_trained_size_and_people_side_by_side(bundled):
    assert bundled.sizes == SizePolicy(64, 64, "side_by_side")
    assert [bundled.sizes.supported(n) for n in (1, 2, 3)] == [(64, 64), (128, 64), (192, 64)]


@pytest.mark.parametrize(("people", "size"), [(1, (64, 64)), (2, (128, 64)), (3, (192, 64))])
def test_the_default_size_follows_the_people(bundled, people, size):
    request = GenerationRequest(people=[[embedding(i)] for i in range(people)])
    assert request.size(bundled) == size


def test_mixing_makes_one_person_so_one_portrait(bundled):
    request = GenerationRequest(people=[[embedding(0)], [embedding(1)]], mix_weights=[0.5, 0.5])
    assert request.size(bundled) == (64, 64)


def test_one_side_given_the_other_follows(bundled):
    two = [[embedding(0)], [embedding(1)]]
    assert GenerationRequest(people=two, width=128).size(bundled) == (128, 64)
    assert GenerationRequest(people=two, height=64).size(bundled) == (128, 64)


@pytest.mark.parametrize(
    ("people", "width", "height", "says"),
    [
        (1, 256, 256, "64×64 for 1 person, not 256×256"),
        (1, 100, None, "64×64 for 1 person, not 100×64"),
        (2, None, 128, "128×64 for 2 people, not 128×128"),
        (2, 64, 64, "128×64 for 2 people, not 64×64"),
    ],
)
def test_a_size_the_model_was_not_trained_for_is_refused_naming_the_supported_one(
    bundled, people, width, height, says
):
    request = GenerationRequest(
        people=[[embedding(i)] for i in range(people)], width=width, height=height
    )
    with pytest.raises(FaceStudioError) as caught:
        request.validate(bundled)
    message = str(caught.value)
    assert says in message and "trained at 64×64" in message and "\n" not in message
    assert "`width`" in message and "--width" not in message  # a field, named neutrally


def test_people_beyond_the_largest_canvas_are_refused(tmp_path):
    folder = _configs_only(Path(BUNDLED_MODEL), tmp_path / "model")
    _declare(folder, {"trained": [512, 512], "people": "side_by_side"})
    (folder / "unet/config.json").write_text(
        json.dumps({**json.loads((folder / "unet/config.json").read_text()), "sample_size": 128})
    )
    info = ModelInfo.from_folder(folder)
    fits = limits.MAX_SIDE // 512
    GenerationRequest(people=[[embedding(i)] for i in range(fits)]).validate(info)
    with pytest.raises(FaceStudioError, match=rf"at most {fits} people side by side"):
        GenerationRequest(people=[[embedding(i)] for i in range(fits + 1)]).validate(info)


def test_a_model_trained_on_groups_makes_every_image_at_its_trained_size(tmp_path):
    folder = _configs_only(Path(BUNDLED_MODEL), tmp_path / "model")
    _declare(folder, {"trained": [128, 128], "people": "together"})
    info = ModelInfo.from_folder(folder)
    three = GenerationRequest(people=[[embedding(i)] for i in range(3)])
    assert three.size(info) == (128, 128)
    with pytest.raises(FaceStudioError, match="128×128 for 3 people, not 384×128"):
        GenerationRequest(people=three.people, width=384).validate(info)


def test_a_model_without_the_declaration_keeps_the_old_sizes(tiny_pipeline):
    info = ModelInfo.from_pipeline(tiny_pipeline)
    assert info.sizes is None
    two = GenerationRequest(people=[[embedding(0)], [embedding(1)]])
    assert two.size(info) == (info.native_side, info.native_side)
    GenerationRequest(people=two.people, width=104, height=info.max_side).validate(info)


@pytest.mark.parametrize(
    ("sizes", "says"),
    [
        ({"trained": [64, 64], "people": "in a circle"}, "'sizes.people' must be one of"),
        ({"trained": [63, 64], "people": "side_by_side"}, "multiple of 4"),
        ({"trained": [64], "people": "side_by_side"}, "[width, height]"),
        ({"trained": [64, 10**6], "people": "side_by_side"}, "[width, height]"),
        ({"people": "side_by_side"}, "[width, height]"),
        ({"trained": [64, 64], "people": "side_by_side", "extra": 1}, "unknown key"),
        ("64x64", "an object"),
    ],
)
def test_a_malformed_declaration_is_refused_when_the_model_is_read(tmp_path, sizes, says):
    folder = _configs_only(Path(BUNDLED_MODEL), tmp_path / "model")
    _declare(folder, sizes)
    with pytest.raises(ModelLoadError, match="sizes") as caught:
        ModelInfo.from_folder(folder)
    assert says in str(caught.value)


def test_two_people_at_the_default_size_are_two_people_side_by_side(bundled_pipeline):
    out = bundled_pipeline(
        identities=[embedding(0), embedding(1)], num_inference_steps=2, seed=0, output_type="np"
    )
    assert out.images.shape == (1, 64, 128, 3)
    regions = out.metadata[0]["regions"]
    assert regions["source"] == "even split" and regions["boxes"] == [
        [0, 0, 64, 64],
        [64, 0, 128, 64],
    ]


def test_the_pipeline_refuses_a_size_the_model_was_not_trained_for(bundled_pipeline):
    with pytest.raises(FaceStudioError, match="64×64 for 1 person, not 256×256"):
        bundled_pipeline(identities=embedding(0), width=256, height=256, num_inference_steps=2)


def test_the_declaration_survives_save_and_load(bundled_pipeline, tmp_path):
    assert ModelInfo.from_pipeline(bundled_pipeline).sizes == SizePolicy(64, 64, "side_by_side")
    bundled_pipeline.save_pretrained(tmp_path / "copy")
    assert ModelInfo.from_folder(tmp_path / "copy").sizes == SizePolicy(64, 64, "side_by_side")


def test_the_declared_trained_size_need_not_be_64(tmp_path):
    """A 128-px model on another autoencoder declares its own size; nothing assumes 64."""
    folder = _configs_only(Path(BUNDLED_MODEL), tmp_path / "model")
    _declare(folder, {"trained": [128, 128], "people": "side_by_side"})
    unet = json.loads((folder / "unet/config.json").read_text())
    (folder / "unet/config.json").write_text(json.dumps({**unet, "sample_size": 16}))
    vae = json.loads((folder / "vae/config.json").read_text())
    (folder / "vae/config.json").write_text(
        json.dumps({**vae, "block_out_channels": [32, 64, 128, 128]})
    )
    info = ModelInfo.from_folder(folder)
    assert info.vae_factor == 8 and info.sizes.supported(2) == (256, 128)
    assert GenerationRequest(people=[[embedding(0)], [embedding(1)]]).size(info) == (256, 128)


def test_research_on_other_sizes_loads_the_model_without_its_declaration():
    from facestudio.pipeline import FaceStudioPipeline

    pipeline = FaceStudioPipeline.from_pretrained("bundled", sizes=None)
    info = ModelInfo.from_pipeline(pipeline)
    assert info.sizes is None
    GenerationRequest(people=[[embedding(0)], [embedding(1)]], width=128, height=96).validate(info)
