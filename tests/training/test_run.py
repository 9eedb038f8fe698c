"""The run folder: a start is all or nothing, and a run keeps the model it was started with."""

from __future__ import annotations

import errno

import pytest
import torch

from facestudio.errors import FaceStudioError
from facestudio.pipeline import FaceStudioPipeline
from facestudio.training.ema import by_name
from facestudio.training.loop import train
from facestudio.training.run import RunFolder
from tests.data.conftest import write_prepared
from tests.training.conftest import tiny_config


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return write_prepared(tmp_path_factory.mktemp("prepared"))


def test_a_start_that_cannot_be_written_leaves_nothing_and_a_later_one_works(
    tmp_path, prepared, monkeypatch
):
    config = tiny_config(tmp_path / "run", prepared, max_steps=1, batch_size=8)
    original = FaceStudioPipeline.save_pretrained

    def disk_full(self, folder, **kwargs):
        original(self, folder, **kwargs)  # half of it written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FaceStudioPipeline, "save_pretrained", disk_full)
    with pytest.raises(FaceStudioError, match="no space left"):
        train(config)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == []
    monkeypatch.undo()
    assert train(config).step == 1
    assert RunFolder(tmp_path / "run").started_with()["train.target"] == "diffusion"


def test_a_run_from_before_the_settings_record_is_judged_by_its_config(tmp_path, prepared):
    config = tiny_config(tmp_path / "run", prepared, max_steps=1, batch_size=8)
    train(config)
    run = RunFolder(tmp_path / "run")
    (run.initial_folder / "model_settings.json").unlink()
    assert run.started_with()["model.num_tokens"] == 4
    config.model.num_tokens = 8
    with pytest.raises(FaceStudioError, match=r"model.num_tokens = 4, now 8.*--restart"):
        run.check(config)
    run.check(config, restart=True)  # what --restart will replace is not refused


def test_ema_weights_of_earlier_versions_are_read_by_position():
    names = ["unet.a", "guidance.b"]
    tensors = {"p0": torch.zeros(1), "p1": torch.ones(1)}
    assert {k: float(v) for k, v in by_name(tensors, names).items()} == {
        "unet.a": 0.0,
        "guidance.b": 1.0,
    }
    with pytest.raises(FaceStudioError, match=r"lack 'guidance\.b'.*--no-ema"):
        by_name({"unet.a": torch.zeros(1)}, names)
