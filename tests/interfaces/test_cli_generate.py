"""`facestudio generate` on a tiny random pipeline folder: PNGs with settings, seeds, no
overwrite, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from facestudio.errors import FaceStudioError
from facestudio.interfaces.cli import main
from facestudio.interfaces.example_photo import EXAMPLE_NAME
from tests.conftest import shared_file

FACE = "data/deepface/id04/img16.jpg"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESTUDIO_CACHE", str(tmp_path / "cache"))


def _one_error_line(err: str, message: str) -> bool:
    errors = [line for line in err.splitlines() if line.startswith("facestudio: error:")]
    return len(errors) == 1 and message in errors[0] and "Traceback" not in err


def generate(capsys, folder, *args: str) -> tuple[int, str, str]:
    code = main(["generate", "--model", str(folder), "--steps", "2", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_writes_a_png_that_says_it_is_generated_with_its_settings(
    tiny_pipeline_folder, tmp_path, capsys
):
    out = tmp_path / "me.png"
    code, stdout, _ = generate(
        capsys,
        tiny_pipeline_folder,
        "--face",
        str(shared_file(FACE)),
        "--seed",
        "3",
        "-o",
        str(out),
    )
    assert code == 0 and "seed 3" in stdout
    image = Image.open(out)
    assert image.size == (64, 64)
    assert "generated" in image.info["Description"].lower()
    settings = json.loads(image.info["facestudio"])
    assert settings["seed"] == 3 and settings["steps"] == 2 and settings["generated"] is True
    assert settings["people"][0]["sources"][0]["photo"] == "img16.jpg"
    assert settings["model"] == tiny_pipeline_folder.name  # a name, never an absolute path


def test_the_example_photo_is_person_one_and_named_in_the_metadata(
    tiny_pipeline_folder, tmp_path, capsys
):
    out = tmp_path / "astronaut.png"
    code, _, err = generate(
        capsys, tiny_pipeline_folder, "--example", "--seed", "1", "-o", str(out)
    )
    assert code == 0, err
    settings = json.loads(Image.open(out).info["facestudio"])
    assert [s["photo"] for s in settings["people"][0]["sources"]] == [EXAMPLE_NAME]


def test_same_seed_same_png_pixels_and_several_images(tiny_pipeline_folder, tmp_path, capsys):
    args = [
        "--face",
        str(shared_file(FACE)),
        "--person",
        str(shared_file("data/deepface/id03/img3.jpg")),
        "--seed",
        "5",
    ]
    assert (
        generate(capsys, tiny_pipeline_folder, *args, "--num", "2", "-o", str(tmp_path / "a.png"))[
            0
        ]
        == 0
    )
    assert (
        generate(capsys, tiny_pipeline_folder, *args, "--seed", "6", "-o", str(tmp_path / "b.png"))[
            0
        ]
        == 0
    )
    second = np.asarray(Image.open(tmp_path / "a-1.png")).astype(int)
    alone = np.asarray(Image.open(tmp_path / "b.png")).astype(int)
    # Remade alone, image 1 matches up to float rounding between batch sizes.
    assert np.abs(second - alone).max() <= 2 and np.abs(second - alone).mean() < 0.2
    assert (
        json.loads(Image.open(tmp_path / "a-0.png").info["facestudio"])["regions"]["source"]
        == "even split"
    )


def test_existing_output_is_kept_without_force(tiny_pipeline_folder, tmp_path, capsys):
    out = tmp_path / "keep.png"
    out.write_bytes(b"mine")
    code, _, err = generate(
        capsys, tiny_pipeline_folder, "--face", str(shared_file(FACE)), "-o", str(out)
    )
    assert code == 2 and "already exists" in err and out.read_bytes() == b"mine"
    code, _, _ = generate(
        capsys, tiny_pipeline_folder, "--face", str(shared_file(FACE)), "-o", str(out), "--force"
    )
    assert code == 0 and Image.open(out).size == (64, 64)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--face", "WHITE"], "no face found"),
        (["--face", "missing.jpg"], "no such file"),
        (["--face", "FACE", "--height", "60"], "not a multiple of"),
        (["--face", "FACE", "--steps", "0"], "steps must be a whole number ≥ 1"),
        (
            [
                "--face",
                "FACE",
                "--person",
                "FACE",
                "--person",
                "FACE",
                "--regions",
                "0,0,32,64;32,0,64,64",
            ],
            "3 people but 2 region",
        ),
        (
            ["--face", "FACE", "--person", "FACE", "--regions", "0,0,32,64;32,0,99,64"],
            "outside the 64×64 canvas",
        ),
        (["--face", "FACE", "--person", "FACE", "--mix", "0", "0"], "all zero"),
        (["--face", "FACE", "--mix", "-1"], "finite and ≥ 0"),
        (["--face", "FACE", "--regions", "left"], "is not 'auto'"),
        (["--face", "FACE", "--example"], "not both"),
        ([], "give at least one photo with --face PHOTO (or try --example)"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_file(
    tiny_pipeline_folder, tmp_path, capsys, args, message
):
    named = {"FACE": str(shared_file(FACE)), "WHITE": str(shared_file("data/misc/white.png"))}
    args = [named.get(a, a) for a in args]
    out = tmp_path / "out.png"
    code, _, err = generate(capsys, tiny_pipeline_folder, *args, "-o", str(out))
    assert code == 2, err
    assert _one_error_line(err, message)
    assert not out.exists() and not list(tmp_path.glob(".out.png*"))


def test_model_problems_are_one_line_errors(tmp_path, capsys):
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"x")
    for model, message in ((checkpoint, "pickle checkpoint"), (tmp_path, "no model_index.json")):
        code = main(
            [
                "generate",
                "--model",
                str(model),
                "--face",
                str(shared_file(FACE)),
                "-o",
                str(tmp_path / "o.png"),
            ]
        )
        err = capsys.readouterr().err
        assert code == 2 and _one_error_line(err, message)


def test_an_install_without_the_bundled_model_asks_for_one(tmp_path):
    from facestudio.interfaces.generate_command import default_model

    with pytest.raises(FaceStudioError, match="give --model"):
        default_model(tmp_path / "bundled_model")


def test_a_prompt_for_a_model_without_text_asks_for_a_style_image(tmp_path, capsys):
    from facestudio.model.components import ComponentSizes, random_components
    from facestudio.pipeline import FaceStudioPipeline

    folder = tmp_path / "no-text"
    FaceStudioPipeline(**random_components(ComponentSizes.tiny(with_text=False))).save_pretrained(
        folder
    )
    code, _, err = generate(
        capsys,
        folder,
        "--face",
        str(shared_file(FACE)),
        "--prompt",
        "a cat",
        "-o",
        str(tmp_path / "o.png"),
    )
    assert code == 2 and "give a style image" in err


def test_several_images_are_numbered_printed_with_their_seeds_and_documented(
    tiny_pipeline_folder, tmp_path, capsys
):
    out = tmp_path / "x.png"
    code, stdout, err = generate(
        capsys,
        tiny_pipeline_folder,
        "--face",
        str(shared_file(FACE)),
        "--num",
        "3",
        "--seed",
        "5",
        "-o",
        str(out),
    )
    assert code == 0, err
    written = [line for line in stdout.splitlines() if line.startswith("wrote ")]
    assert written == [f"wrote {tmp_path / f'x-{i}.png'} (seed {5 + i})" for i in range(3)]
    for i in range(3):
        assert json.loads(Image.open(tmp_path / f"x-{i}.png").info["facestudio"])["seed"] == 5 + i
    # The seconds before the progress bar say what is happening.
    assert "finding faces" in err and "loading the model (tiny-pipeline" in err
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "OUT-0.png" in capsys.readouterr().out


def test_saved_pngs_carry_credentials_and_file_names_only(tiny_pipeline_folder, tmp_path, capsys):
    from facestudio.provenance.credentials import read_credentials

    group = shared_file("data/groups/couple.jpg")  # two faces: the warning names the photo
    out = tmp_path / "c.png"
    code, _, err = generate(
        capsys, tiny_pipeline_folder, "--face", str(group), "--seed", "1", "-o", str(out)
    )
    assert code == 0 and "couple.jpg' has 2 faces" in err
    text = Image.open(out).info["facestudio"]
    assert "couple.jpg" in text and str(group.parent) not in text and str(tmp_path) not in text
    credentials = read_credentials(out.read_bytes())
    assert credentials.intact and credentials.generated
    assert credentials.settings["seed"] == 1 and credentials.settings["warnings"]


@pytest.mark.parametrize(("flags", "auto_crop"), [((), True), (("--no-auto-crop",), False)])
def test_no_auto_crop_reaches_the_pipeline(
    tiny_pipeline_folder, tmp_path, capsys, monkeypatch, flags, auto_crop
):
    from facestudio.pipeline import FaceStudioPipeline

    calls = []
    original = FaceStudioPipeline.__call__

    def recording_call(self, *args, **kwargs):
        calls.append((kwargs["request"], kwargs["prepared"]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FaceStudioPipeline, "__call__", recording_call)
    out = tmp_path / "two.png"
    code, _, err = generate(
        capsys,
        tiny_pipeline_folder,
        "--face",
        str(shared_file(FACE)),
        "--person",
        str(shared_file("data/deepface/id03/img3.jpg")),
        "--style",
        str(shared_file("data/groups/couple.jpg")),
        "--seed",
        "1",
        *flags,
        "-o",
        str(out),
    )
    assert code == 0, err
    ((request, prepared),) = calls
    assert request.auto_crop is auto_crop
    assert (prepared.framing is not None) is auto_crop  # the style image cropped or as given
    settings = json.loads(Image.open(out).info["facestudio"])
    assert (settings["style_crop"] is not None) is auto_crop
