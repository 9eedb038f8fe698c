"""Training configuration files are checked key by key."""

from __future__ import annotations

import dataclasses
import functools
import typing

import pytest

from facestudio.configuration import Range
from facestudio.errors import FaceStudioError
from facestudio.interfaces.cli import main
from facestudio.training.config import TrainConfig, config_from_dict, load_config


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
            "'train.batch_size' .* must be a whole number",
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


def _numeric_fields(cls=TrainConfig, prefix=""):
    """(dotted key, Range or None) of every int and float field of the config, nested."""
    for f in dataclasses.fields(cls):
        kind = typing.get_type_hints(cls, include_extras=True)[f.name]
        if dataclasses.is_dataclass(kind):
            yield from _numeric_fields(kind, f"{prefix}{f.name}.")
        elif typing.get_origin(kind) is typing.Annotated:
            base, *marks = typing.get_args(kind)
            yield f"{prefix}{f.name}", base, next(m for m in marks if isinstance(m, Range))
        elif kind in (int, float):
            yield f"{prefix}{f.name}", kind, None


def _nested(key: str, value) -> dict:
    *tables, name = key.split(".")
    data = {name: value}
    for table in reversed(tables):
        data = {table: data}
    return data


NUMERIC = list(_numeric_fields())


def test_every_numeric_setting_declares_its_range():
    assert [key for key, _, bounds in NUMERIC if bounds is None] == []
    assert {"train.learning_rate", "train.batch_size", "train.max_steps"} <= {
        k for k, *_ in NUMERIC
    }


@pytest.mark.parametrize(("key", "base", "bounds"), NUMERIC, ids=[k for k, *_ in NUMERIC])
def test_every_numeric_setting_refuses_values_out_of_range(key, base, bounds):
    outside = [bounds.low - 1 if bounds.low is not None else None]
    if bounds.low_open:
        outside.append(bounds.low)
    if bounds.high is not None:
        outside.append(bounds.high + 1)
    for value in [v for v in outside if v is not None]:
        with pytest.raises(FaceStudioError, match=rf"'{key}' in .* must be"):
            config_from_dict(_nested(key, base(value)))
    default = functools.reduce(getattr, key.split("."), TrainConfig())
    assert bounds.admits(default)  # the defaults themselves are valid
    if base is float:
        with pytest.raises(FaceStudioError, match="finite"):
            config_from_dict(_nested(key, float("inf")))
