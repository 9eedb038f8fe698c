"""An objective is one class: a new one, defined here only, trains, resumes and exports through
the same run folder and loop as the shipped ones."""

from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import load_file

from facestudio.data.dataset import ReconstructionDataset
from facestudio.pipeline import FaceStudioPipeline
from facestudio.training.loop import train
from facestudio.training.objectives import Frozen, Objective, Validation
from facestudio.training.run import RunFolder, export_checkpoint
from tests.training.conftest import tiny_config


class FaceTokens(Objective):
    """A toy: the guidance maps each face to tokens that match the style's null tokens."""

    target = "toy-face-tokens"

    def __init__(self, pipeline, config) -> None:
        super().__init__()
        self.guidance = pipeline.guidance
        self.frozen = Frozen(vae=pipeline.vae)

    def loss(self, batch, generator):
        faces = batch["face"] + 0.01 * torch.randn(batch["face"].shape, generator=generator)
        null_style = self.guidance.null_style.expand(len(faces), -1)
        tokens = self.guidance.tokens(null_style, faces)
        return tokens.pow(2).mean()

    def validate(self, pipeline, dataset: ReconstructionDataset, at: Validation) -> None:
        (at.folder / f"toy-{at.step}.txt").write_text(str(len(dataset)))

    def finalize(self, pipeline) -> None:
        pipeline.register_to_config(style_faces="mask")


def test_a_toy_objective_trains_and_exports(tmp_path, eight_photos_prepared):
    config = tiny_config(
        tmp_path / "run", eight_photos_prepared, target="toy-face-tokens", max_steps=3
    )
    config.validation.every_steps = 3
    losses = []
    result = train(config, on_step=lambda step, loss: losses.append(loss))
    assert result.step == 3 and losses[-1] < losses[0]
    assert (tmp_path / "run" / "validation" / "toy-3.txt").read_text() == "8"

    checkpoint = RunFolder(tmp_path / "run").latest_checkpoint()
    trained = load_file(str(checkpoint / "model.safetensors"))
    assert set(trained) == {f"guidance.{k}" for k in result.objective.guidance.state_dict()}
    export_checkpoint(checkpoint, tmp_path / "model")
    exported = FaceStudioPipeline.from_pretrained(tmp_path / "model")
    initial = FaceStudioPipeline.from_pretrained(tmp_path / "run" / "initial_pipeline")
    assert exported.config.style_faces == "mask"  # finalize ran
    np.testing.assert_array_equal(
        exported.guidance.proj.weight.detach().numpy(), trained["guidance.proj.weight"].numpy()
    )
    assert not np.array_equal(
        exported.guidance.proj.weight.detach().numpy(),
        initial.guidance.proj.weight.detach().numpy(),
    )
    for name, tensor in initial.vae.state_dict().items():  # frozen: untouched
        assert torch.equal(tensor, exported.vae.state_dict()[name]), name
