"""A run never keeps a random part frozen by mistake (it could never make an image), and the
smallest shipped recipe starts from the bundled model's trained autoencoder instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from facestudio import BUNDLED_MODEL
from facestudio.errors import FaceStudioError
from facestudio.interfaces.cli import main
from facestudio.training.config import (
    check_config,
    component_sizes,
    config_from_dict,
    load_config,
)
from facestudio.training.loop import initial_pipeline
from facestudio.training.run import RunFolder, check_frozen_parts_trained

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "train" / "tiny-cpu.toml"


def _config(model: dict | None = None, **train):
    return config_from_dict(
        {"output_dir": "run", "data": {"path": "data"}, "model": model or {}, "train": train}
    )


@pytest.mark.parametrize(
    ("model", "train", "named"),
    [
        ({}, {}, ["autoencoder", "style encoder"]),
        ({}, {"train_style_encoder": True}, ["autoencoder"]),
        ({"vae": "bundled"}, {}, ["style encoder"]),
        ({}, {"target": "decoder"}, ["autoencoder"]),  # its encoder stays random
    ],
)
def test_a_random_frozen_part_is_refused_by_name(model, train, named):
    with pytest.raises(FaceStudioError) as refused:
        check_frozen_parts_trained(_config(model, **train))
    message = str(refused.value)
    assert "\n" not in message and "never make an image" in message
    assert all(part in message for part in named)
    assert ("style encoder" in message) == ("style encoder" in named)


@pytest.mark.parametrize(
    ("model", "train"),
    [
        ({"vae": "bundled"}, {"train_style_encoder": True}),
        ({}, {"target": "autoencoder"}),  # trains the whole autoencoder
        ({"init": "pipeline", "pipeline": "some-export"}, {}),  # loaded, trained parts
        ({}, {"allow_untrained_frozen": True}),  # on purpose: speed, the code path
    ],
)
def test_trained_or_trained_parts_pass(model, train):
    check_frozen_parts_trained(_config(model, **train))


def test_the_cli_refuses_before_reading_data_or_writing(tmp_path, capsys):
    config = tmp_path / "c.toml"
    out = tmp_path / "run"
    config.write_text(f'output_dir = "{out}"\n[data]\npath = "{tmp_path / "no-data"}"\n')
    assert main(["train", str(config), "--cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "frozen autoencoder" in err and "model.vae" in err
    assert not out.exists()


def test_model_vae_is_checked_on_load(tmp_path):
    with pytest.raises(FaceStudioError, match="init = 'random'"):
        check_config(_config({"init": "pipeline", "pipeline": "p", "vae": "bundled"}))
    with pytest.raises(FaceStudioError, match="needs a pipeline folder with an autoencoder"):
        check_config(_config({"vae": str(tmp_path / "nothing")}))


def test_the_random_unet_works_in_the_loaded_autoencoders_latent_space():
    config = _config({"vae": "bundled", "sizes": {"with_text": False}})
    assert component_sizes(config.model).vae_channels == (32, 64, 128)
    pipeline = initial_pipeline(config.model)
    bundled = load_file(f"{BUNDLED_MODEL}/vae/diffusion_pytorch_model.safetensors")
    started = pipeline.vae.state_dict()
    assert all(bool((started[k] == v.float()).all()) for k, v in bundled.items())
    assert pipeline.unet.config.in_channels == pipeline.vae.config.latent_channels == 4
    assert pipeline.unet.config.sample_size == 16  # 64 px through the autoencoder's 4× steps


def test_the_smallest_recipe_starts_from_trained_parts():
    config = load_config(TINY)
    check_frozen_parts_trained(config)
    assert config.model.vae == "bundled" and config.train.train_style_encoder
    assert not config.train.allow_untrained_frozen
    assert not Path(config.output_dir).is_absolute() and not Path(config.data.path).is_absolute()


def test_a_run_started_before_a_model_setting_existed_resumes(tmp_path):
    """A setting added later counts as its default for a run whose record lacks it."""
    run = tmp_path / "run"
    (run / "initial_pipeline").mkdir(parents=True)
    (run / "initial_pipeline" / "model_index.json").write_text("{}")
    config = _config(allow_untrained_frozen=True)
    record = {k: v for k, v in config.model_settings().items() if k != "model.vae"}
    (run / "initial_pipeline" / "model_settings.json").write_text(json.dumps(record))
    RunFolder(run).check(config)
    config.model.num_tokens = 8
    with pytest.raises(FaceStudioError, match=r"model\.num_tokens = 4, now 8"):
        RunFolder(run).check(config)
