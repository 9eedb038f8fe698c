"""`facestudio generate` with the bundled model: the size follows the people (two people make
two 64-px portraits side by side), a size the model was not trained for is refused in one
line before any work, and every message names this command's options, never field names."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from facestudio.interfaces.cli import main
from facestudio.interfaces.generate_command import CLI_NAMES
from facestudio.pipeline.request import GenerationRequest
from tests.conftest import shared_file

ME = "data/deepface/id04/img16.jpg"
FRIEND = "data/deepface/id05/img13.jpg"
GROUP = "data/groups/couple.jpg"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESTUDIO_CACHE", str(tmp_path / "cache"))


def generate(capsys, *args: str) -> tuple[int, str]:
    code = main(["generate", "--steps", "2", "--seed", "1", *args])
    return code, capsys.readouterr().err


def test_two_people_with_a_group_style_make_two_portraits_side_by_side(tmp_path, capsys):
    out = tmp_path / "us.png"
    code, err = generate(
        capsys,
        "--face",
        str(shared_file(ME)),
        "--person",
        str(shared_file(FRIEND)),
        "--style",
        str(shared_file(GROUP)),
        "-o",
        str(out),
    )
    assert code == 0, err
    image = Image.open(out)
    settings = json.loads(image.info["facestudio"])
    assert image.size == (128, 64) and (settings["width"], settings["height"]) == (128, 64)
    regions = settings["regions"]
    assert len(settings["people"]) == 2 and regions["source"] in ("segmented", "detected")
    assert regions.get("masks") == 2 or len(regions.get("boxes", [])) == 2


@pytest.mark.parametrize(
    ("size", "says"),
    [
        (["--width", "256", "--height", "256"], "128×64 for 2 people, not 256×256"),
        (["--width", "100"], "128×64 for 2 people, not 100×64"),
    ],
)
def test_a_size_the_model_was_not_trained_for_exits_2_naming_the_options(
    tmp_path, capsys, size, says
):
    out = tmp_path / "us.png"
    face, friend = str(shared_file(ME)), str(shared_file(FRIEND))
    code, err = generate(capsys, "--face", face, "--person", friend, *size, "-o", str(out))
    lines = [line for line in err.splitlines() if line.startswith("facestudio: error:")]
    assert code == 2 and len(lines) == 1 and says in lines[0]
    assert "leave out --width and --height" in lines[0] and "`" not in lines[0]
    assert not out.exists() and "loading the model" not in err  # refused before any work


def test_a_prompt_for_the_bundled_model_names_the_style_option(tmp_path, capsys):
    code, err = generate(capsys, "--example", "--prompt", "a cat", "-o", str(tmp_path / "x.png"))
    assert code == 2 and "give a style image instead (--style IMAGE)" in err


def test_warnings_from_shared_code_name_the_options(tmp_path, capsys):
    code, err = generate(capsys, "--face", str(shared_file(GROUP)), "-o", str(tmp_path / "x.png"))
    warnings = [line for line in err.splitlines() if line.startswith("facestudio: warning:")]
    assert code == 0 and warnings and "choose another with --face-index N" in warnings[0]


def test_every_request_field_has_an_option_name():
    from dataclasses import fields

    assert {f.name for f in fields(GenerationRequest)} - set(CLI_NAMES) == {
        "prior_num_inference_steps",  # no option: the prior's own default
        "prior_guidance_scale",
    }
