"""Training configuration files are checked key by key."""

from __future__ import annotations

import pytest

from facestudio.errors import FaceStudioError
from facestudio.interfaces.cli import main
from facestudio.training.config import load_config


def _write(tmp_path, text: str, name: str = "config.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_typo_names_the_key_and_suggests_the_right_one(tmp_path):
    path = _write(tmp_path, 'output_dir = "o"\n[data]\npath = "d"\n[train]\nlearnig_rate = 0.1\n')
    with pytest.raises(
        FaceStudioError,
        match=r"unknown key 'train\.learnig_rate'.*did you mean 'train\.learning_rate'",
    ):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'output_dir = "o"\n[data]\npath = "d"\n[train]\nbatch_size = "eight"\n',
            "'train.batch_size' .* must be int",
        ),
        (
            'output_dir = "o"\n[data]\npath = "d"\n[train]\nmixed_precision = "fp8"\n',
            "must be one of 'no', 'fp16', 'bf16'",
        ),
        ('output_dir = "o"\nmodel = 3\n[data]\npath = "d"\n', "'model' .* must be a table"),
        ('[data]\npath = "d"\n', "needs output_dir"),
        ('output_dir = "o"\n', "needs data.path"),
        ("output_dir = \n", "not valid TOML"),
    ],
)
def test_bad_values_are_named(tmp_path, text, message):
    with pytest.raises(FaceStudioError, match=message):
        load_config(_write(tmp_path, text))


def test_yaml_works_too(tmp_path):
    path = _write(
        tmp_path,
        "output_dir: o\ndata: {path: d}\ntrain: {learning_rate: 0.5, use_ema: true}\n",
        "c.yaml",
    )
    config = load_config(path)
    assert (
        config.train.learning_rate == 0.5
        and config.train.use_ema
        and config.train.style_dropout == 0.64
    )


def test_cli_reports_a_typo_in_one_line(tmp_path, capsys):
    path = _write(tmp_path, 'output_dir = "o"\n[data]\npath = "d"\n[checkpoint]\nevery_steps = 5\n')
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and "unknown key 'checkpoint'" in err
        and "did you mean 'checkpoints'" in err
    )
