"""GenerationRequest and ModelInfo: one validation for every front end, against the limits and
a cheap read of the model's configs, before any photo is decoded or any weight is loaded."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from facestudio import BUNDLED_MODEL
from facestudio.errors import FaceStudioError, ModelLoadError, NoFaceError
from facestudio.pipeline import limits
from facestudio.pipeline.model_info import ModelInfo, read_model_info, resolve_model
from facestudio.pipeline.request import GenerationRequest, Upload, normalize_people
from tests.conftest import shared_file

FACE = "data/deepface/id04/img16.jpg"


@pytest.fixture(scope="module")
def info() -> ModelInfo:
    return ModelInfo.from_folder(BUNDLED_MODEL)


def _configs_only(source, target):
    """A copy of a pipeline folder's JSON files (no weights): all that ModelInfo reads."""
    for path in source.rglob("*.json"):
        (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.relative_to(source))
    return target


def _edit(folder, relative, **changes):
    path = folder / relative
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_the_bundled_model_info_is_read_from_configs_without_torch(info):
    assert info.name == "bundled" and resolve_model("bundled") == BUNDLED_MODEL
    assert not info.has_text_prior and info.has_style_encoder
    assert (info.native_side, info.vae_factor, info.face_dim) == (64, 4, 128)
    assert info.max_side == limits.MAX_NATIVE_MULTIPLE * 64 and info.max_steps == 1000
    assert info.style_faces == "mask" and info.face_analysis["backend"] == "dlib"


def test_info_from_a_folder_equals_info_from_the_loaded_pipeline(
    tiny_pipeline, tiny_pipeline_folder
):
    from_folder = ModelInfo.from_folder(tiny_pipeline_folder)
    from_pipeline = ModelInfo.from_pipeline(tiny_pipeline)
    assert from_folder.name == tiny_pipeline_folder.name and from_pipeline.name == ""
    keep = {"name"}
    assert {k: v for k, v in vars(from_folder).items() if k not in keep} == {
        k: v for k, v in vars(from_pipeline).items() if k not in keep
    }


@pytest.mark.parametrize(
    ("relative", "changes", "message"),
    [
        ("unet/config.json", {"sample_size": 100000}, "sample_size 100000"),
        ("unet/config.json", {"block_out_channels": [64, 10**7]}, "layer width of 10000000"),
        ("unet/config.json", {"in_channels": 4096}, "in_channels 4096"),
        ("scheduler/scheduler_config.json", {"num_train_timesteps": 0}, "num_train_timesteps"),
        ("model_index.json", {"unet": ["onnxruntime.training", "ORTModule"]}, "not installed"),
        ("model_index.json", {"unet": ["no_such_package", "Net"]}, "not installed"),
        ("model_index.json", {"unet": ["os", "system"]}, "loads components only from"),
        ("model_index.json", {"guidance": ["facestudio.model.nope", "X"]}, "does not exist"),
    ],
)
def test_hostile_or_damaged_configs_are_refused_before_anything_is_built(
    tiny_pipeline_folder, tmp_path, relative, changes, message
):
    folder = _configs_only(tiny_pipeline_folder, tmp_path / "model")
    _edit(folder, relative, **changes)
    with pytest.raises(ModelLoadError, match=message) as error:
        ModelInfo.from_folder(folder)
    assert "\n" not in str(error.value)


def test_model_names_that_are_neither_folders_nor_hub_ids_are_refused(tmp_path):
    assert read_model_info("someone/some-model") is None  # a hub id: read when it loads
    file = tmp_path / "model.json"
    file.write_text("{}")
    for name, message in ((file, "is a file"), ("./nowhere", "neither a folder nor a hub id")):
        with pytest.raises(ModelLoadError, match=message):
            read_model_info(name)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": 2**63}, "seed must be a whole number from 0"),
        ({"seed": -1}, "seed must be a whole number from 0"),
        ({"seed": limits.MAX_SEED, "num_images": 2}, "image i uses seed + i"),
        ({"seed": True}, "seed must be a whole number"),
        ({"width": 100000}, "64×64 for 1 person, not 100000×64"),
        ({"height": 62}, "not a multiple of 4"),
        ({"width": 8}, "≥ 16"),
        ({"num_inference_steps": 100000}, "1000 training timesteps"),
        ({"num_inference_steps": 0}, "steps must be a whole number ≥ 1"),
        ({"num_inference_steps": 2.5}, "steps must be a whole number"),
        ({"num_images": 0}, "number of images must be 1 to"),
        ({"num_images": limits.MAX_IMAGES_PER_CALL + 1}, "make several calls"),
        ({"strength": 0.5}, "strength was given without a content image"),
        ({"prompt": "a cat"}, "has no text prior"),
        ({"alpha": 0.5}, "give a prompt"),
        ({"mix_weights": [1, 2]}, "2 mix weight(s) for 1 people"),
        ({"mix_weights": [float("nan")]}, "finite and ≥ 0"),
        ({"regions": "0,0,10,10;10,0,20,10"}, "1 people but 2 region"),
        ({"regions": "0,0,10"}, "has 3 numbers"),
        ({"regions": "left"}, "is not 'auto'"),
        ({"regions": [[0, 0, 99, 64]]}, "outside the 64×64 canvas"),
        ({"face_guidance_scale": float("inf")}, "face guidance scale must be a number"),
        ({"style_guidance_scale": 7500}, "from 0 to 100"),
        ({"background": "none"}, "background must be one of"),
        ({"face_index": -1}, "face index"),
        ({"style_image": "missing.png"}, "no such file"),
        ({"style_image": np.zeros((4, 4), np.uint8)}, "(H, W, 3) uint8 RGB array"),
        ({"people": [[]]}, "person 1 was given with no photo"),
        ({"people": [np.ones(64, np.float32)]}, "must have 128 values"),
        ({"people": [[FACE]] * (limits.MAX_PEOPLE + 1)}, "at most 8 fit"),
        ({"people": [[FACE] * (limits.MAX_PHOTOS_PER_PERSON + 1)]}, "per person are used"),
        ({"people": [Upload("big.jpg", b"x" * (limits.MAX_UPLOAD_BYTES + 1))]}, "MiB per image"),
        ({"people": [Upload("empty.jpg", b"")]}, "is empty"),
    ],
)
def test_every_mistake_is_one_line_before_any_work(info, changes, message):
    fields = {"people": [[str(shared_file(FACE))]], **changes}
    fields["people"] = [
        [str(shared_file(s)) if isinstance(s, str) and s == FACE else s for s in person]
        for person in normalize_people(fields["people"])
    ]
    with pytest.raises(FaceStudioError) as error:
        GenerationRequest(**fields).validate(info)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_fifo_or_folder_given_as_a_photo_says_what_it_is(info, tmp_path):
    import os

    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    for path, kind in ((fifo, r"a FIFO \(named pipe\)"), (tmp_path, "a folder")):
        with pytest.raises(FaceStudioError, match=f"it is {kind}, not an image file"):
            GenerationRequest(people=str(path)).validate(info)


def test_validation_imports_nothing_heavy():
    code = (
        "import sys; from facestudio import BUNDLED_MODEL;"
        "from facestudio.pipeline.model_info import ModelInfo;"
        "from facestudio.pipeline.request import GenerationRequest;"
        "GenerationRequest(width=64, seed=1).validate(ModelInfo.from_folder(BUNDLED_MODEL));"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'cv2') if m in sys.modules))"
    )
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"


def test_people_take_paths_uploads_pil_arrays_and_embeddings_alike():
    photo = Image.new("RGB", (32, 32))
    assert normalize_people("me.jpg") == [["me.jpg"]]
    assert normalize_people(photo) == [[photo]]
    assert len(normalize_people(np.zeros((8, 8, 3), np.uint8))) == 1
    assert len(normalize_people(np.zeros(128, np.float32))) == 1
    assert normalize_people([["a.jpg", "b.jpg"], "c.jpg"]) == [["a.jpg", "b.jpg"], ["c.jpg"]]
    assert normalize_people(None) == []


def test_form_fields_and_uploads_build_the_same_request():
    upload = Upload("me.jpg", b"jpeg bytes")
    request = GenerationRequest.from_mapping(
        {
            "seed": "7",
            "num_images": " 2 ",
            "width": "",
            "mix_weights": "0.7, 0.3",
            "regions": "0,0,32,64;32,0,64,64",
            "auto_crop": "false",
            "face_guidance_scale": "3.5",
            "prompt": "",
        },
        {"person_0": [upload], "person_1": [upload, upload]},
    )
    assert request.seed == 7 and request.num_images == 2 and request.width is None
    assert request.mix_weights == [0.7, 0.3] and request.auto_crop is False
    assert request.regions == [[0, 0, 32, 64], [32, 0, 64, 64]] and request.prompt is None
    assert request.face_guidance_scale == 3.5 and len(request.people[1]) == 2
    for data, files, message in (
        ({"sede": "1"}, {}, "unknown field(s): sede"),
        ({"seed": "one"}, {}, "seed must be a whole number, got 'one'"),
        ({"auto_crop": "maybe"}, {}, "auto_crop must be true or false"),
        ({}, {"person_1": [upload]}, "number them from person_0"),
        ({}, {"photo": [upload]}, "unknown file field 'photo'"),
        ({}, {"style_image": [upload, upload]}, "give one style image"),
    ):
        with pytest.raises(FaceStudioError, match=message.replace("(", r"\(").replace(")", r"\)")):
            GenerationRequest.from_mapping(data, files)


def test_the_pipeline_runs_the_same_validation(tiny_pipeline):
    face = np.ones(128, np.float32)
    for kwargs, message in (
        ({"strength": 0.5}, "strength was given without a content image"),
        ({"width": 100000}, "over this model's limit"),
        ({"num_inference_steps": 100000}, "training timesteps"),
        ({"seed": 2**64}, "seed must be"),
        ({"output_type": "jpeg"}, "output_type must be one of"),
    ):
        with pytest.raises(FaceStudioError, match=message):
            tiny_pipeline(identities=[face], **kwargs)


def test_style_and_content_images_may_be_paths_also_with_auto_regions(tiny_pipeline):
    face, style = str(shared_file(FACE)), str(shared_file("data/groups/two_people.jpg"))
    out = tiny_pipeline(
        identities=[face, str(shared_file("data/deepface/id05/img13.jpg"))],
        style_image=style,
        image=style,
        strength=0.6,
        regions="auto",
        num_inference_steps=2,
        seed=1,
    )
    settings = out.metadata[0]
    assert settings["style_image"] and settings["image_to_image"] and settings["strength"] == 0.6
    assert settings["regions"]["source"] in ("segmented", "detected", "even split")
    assert [p["sources"][0]["photo"] for p in settings["people"]] == ["img16.jpg", "img13.jpg"]


def test_no_face_fails_before_the_model_loads_and_names_the_upload(info, tmp_path):
    from facestudio.faces.analyzer import FaceAnalyzer, FaceAnalyzerConfig
    from facestudio.pipeline.inputs import prepare_request

    white = shared_file("data/misc/white.png").read_bytes()
    analyzer = FaceAnalyzer(FaceAnalyzerConfig.from_dict(info.face_analysis))
    request = GenerationRequest(people=[Upload("holiday.png", white)])
    with pytest.raises(NoFaceError, match=r"no face found in 'holiday\.png'"):
        prepare_request(request, lambda: analyzer, info)


def test_metadata_names_photos_by_name_even_in_warnings(tiny_pipeline):
    group = str(shared_file("data/groups/couple.jpg"))  # two faces: a warning names the file
    out = tiny_pipeline(identities=[group], num_inference_steps=2, seed=1)
    text = json.dumps(out.metadata[0])
    assert out.metadata[0]["warnings"], "a photo with two faces gets a warning"
    assert "couple.jpg" in text and str(shared_file("data/groups")) not in text
    assert "/" not in text.replace("</", "")
