"""`facestudio generate` on hostile and mistaken input: every case is one line, exit 2, nothing
written, and refused before the model loads (the loader is never called)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from facestudio.interfaces import generate_command
from facestudio.interfaces.cli import main
from tests.conftest import shared_file

FACE = "data/deepface/id04/img16.jpg"


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The models the CLI tried to load: none, for input refused before the model."""
    calls: list[str] = []

    def refuse(model, device, dtype):
        calls.append(model)
        raise AssertionError("the model was loaded although the input is invalid")

    monkeypatch.setattr(generate_command, "load_pipeline", refuse)
    return calls


def _configs_only(source, target, relative, **changes):
    for path in source.rglob("*.json"):
        (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.relative_to(source))
    data = json.loads((target / relative).read_text())
    data.update(changes)
    (target / relative).write_text(json.dumps(data))
    return target


def _refused(capsys, tmp_path, loads, args, message):
    out = tmp_path / "out" / "image.png"
    out.parent.mkdir(exist_ok=True)
    code = main(["generate", *args, "-o", str(out)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("facestudio: error:")]
    assert code == 2, err
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err
    assert list(out.parent.iterdir()) == []  # nothing written, not even a temporary file
    assert loads == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "1180591620717411303424"], "seed must be a whole number from 0"),
        (["--seed", "-3"], "seed must be a whole number from 0"),
        (["--strength", "0.5"], "strength was given without a content image"),
        (["--width", "100000"], "makes one 64×64 tile per person, side by side: 64×64 for 1 person, not 100000×64"),
        (["--height", "100000", "--width", "64"], "not 64×100000"),
        (["--steps", "100000"], "more than the scheduler's 1000 training timesteps"),
        (["--num", "100000"], "number of images must be 1 to"),
        (["--prompt", "a cat"], "has no text prior"),
        (["--mix", "1", "2"], "2 mix weight(s) for 1 people"),
        (["--regions", "0,0,1"], "region 0 has 3 numbers"),
        (["--style-scale", "nan"], "style guidance scale must be a number"),
        (["--device", "banana"], "is not a torch device"),
        (["--fp16"], "--fp16 needs a GPU"),
    ],
)
def test_bad_arguments_fail_before_the_model_loads(capsys, tmp_path, loads, args, message):
    _refused(capsys, tmp_path, loads, ["--face", str(shared_file(FACE)), *args], message)


def test_cuda_on_a_cpu_only_torch_is_one_line(capsys, tmp_path, loads):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _refused(
        capsys,
        tmp_path,
        loads,
        ["--face", str(shared_file(FACE)), "--device", "cuda"],
        "--device cuda: this torch",
    )


@pytest.mark.parametrize(
    ("relative", "changes", "message"),
    [
        ("unet/config.json", {"sample_size": 100000}, "unet sample_size 100000"),
        ("model_index.json", {"unet": ["onnxruntime.training", "ORTModule"]}, "not installed"),
        ("model_index.json", {"vae": ["subprocess", "Popen"]}, "loads components only from"),
    ],
)
def test_hostile_model_configs_fail_before_anything_is_allocated(
    capsys, tmp_path, loads, tiny_pipeline_folder, relative, changes, message
):
    model = _configs_only(tiny_pipeline_folder, tmp_path / "model", relative, **changes)
    args = ["--model", str(model), "--face", str(shared_file(FACE))]
    _refused(capsys, tmp_path, loads, args, message)


def test_photos_that_are_not_files_or_have_no_face_fail_before_the_model(
    capsys, tmp_path, loads
):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    white = str(shared_file("data/misc/white.png"))
    for photo, message in (
        (fifo, "it is a FIFO (named pipe), not an image file"),
        (tmp_path, "it is a folder, not an image file"),
        (tmp_path / "missing.jpg", "no such file"),
        (white, "no face found"),
    ):
        _refused(capsys, tmp_path, loads, ["--face", str(photo)], message)


def test_a_check_that_needs_the_model_does_not_wait_for_it(capsys, tmp_path, loads):
    """A prompt to the bundled model (no text prior) needs the model's capabilities: they are
    read from its configs, so the CLI fails without loading it."""
    _refused(
        capsys,
        tmp_path,
        loads,
        ["--model", "bundled", "--example", "--prompt", "a cat"],
        "model 'bundled' has no text prior",
    )
