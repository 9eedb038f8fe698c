"""Training by reconstruction: it learns, it resumes exactly after SIGKILL, it fails cleanly on
a full disk, and its checkpoints export to a working pipeline."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from facestudio.data.dataset import ReconstructionDataset
from facestudio.errors import FaceStudioError
from facestudio.interfaces.cli import main
from facestudio.pipeline import FaceStudioPipeline
from facestudio.training.latent_cache import encode_dataset
from facestudio.training.loop import train
from facestudio.training.objectives import Reconstruction, face_box_weights
from facestudio.training.run import RunFolder, export_checkpoint
from tests.conftest import launch_two_cpu_processes
from tests.training.conftest import tiny_config


def test_a_tiny_model_overfits_eight_images(tmp_path, eight_photos_prepared):
    losses = []
    config = tiny_config(tmp_path / "run", eight_photos_prepared, max_steps=150)
    config.validation.every_steps, config.validation.samples, config.validation.steps = 150, 2, 3
    result = train(config, on_step=lambda step, loss: losses.append(loss))
    grid = tmp_path / "run" / "validation" / "step-00000150.png"
    assert grid.is_file()  # rows of photo | style input | generated, for fixed identities and seeds
    gaps = (tmp_path / "run" / "validation" / "identity_gap.csv").read_text().splitlines()
    assert gaps[0] == "step,loss_own_face,loss_swapped_face,relative_gap"
    assert gaps[1].startswith("150,") and len(gaps) == 2
    assert result.step == 150 and len(losses) == 150
    start, end = np.mean(losses[:10]), np.mean(losses[-10:])
    assert end < start / 4, f"loss {start:.3f} -> {end:.3f}"
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,loss,samples_per_s")


def _weights(run):
    checkpoint = RunFolder(run).latest_checkpoint()
    return checkpoint.name, load_file(str(checkpoint / "model.safetensors"))


KILLER = """
import os, signal, sys
sys.path.insert(0, {root!r})
from facestudio.training.config import config_from_dict
from facestudio.training.loop import train
import json
config = config_from_dict(json.loads({config!r}))
def die(step, loss):
    if step == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)
train(config, on_step=die)
"""


def test_resume_after_sigkill_ends_with_the_same_weights(tmp_path, eight_photos_prepared):
    settings = dict(
        max_steps=10,
        batch_size=4,
        style_dropout=0.5,
        face_dropout=0.3,
        use_ema=True,
        cache_latents=True,
        snr_gamma=5.0,
    )
    whole = tiny_config(tmp_path / "whole", eight_photos_prepared, **settings)
    whole.checkpoints.every_steps = 3
    train(whole)

    broken = tiny_config(tmp_path / "broken", eight_photos_prepared, **settings)
    broken.checkpoints.every_steps = 3
    script = KILLER.format(root=os.getcwd(), config=json.dumps(broken.to_dict()), kill_at=5)
    killed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert RunFolder(tmp_path / "broken").latest_checkpoint().name == "checkpoint-00000003"
    train(broken)  # resumes from step 3: its data position, dropout and noise included

    name_a, a = _weights(tmp_path / "whole")
    name_b, b = _weights(tmp_path / "broken")
    assert name_a == name_b == "checkpoint-00000010"
    kept = [p.name for p in RunFolder(tmp_path / "broken").checkpoints()]
    assert kept == ["checkpoint-00000009", "checkpoint-00000010"]  # keep_last = 2
    for key in a:
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key
    # EMA weights are stored by parameter name (the names of model.safetensors), and resumed too.
    ema_a = load_file(str(tmp_path / "whole/checkpoints/checkpoint-00000010/ema.safetensors"))
    ema_b = load_file(str(tmp_path / "broken/checkpoints/checkpoint-00000010/ema.safetensors"))
    assert set(ema_a) <= set(a) and {"unet.conv_in.weight", "guidance.proj.weight"} <= set(ema_a)
    assert not any(k.startswith("style_encoder.") for k in ema_a)  # frozen: no average
    for key in ema_a:
        assert torch.equal(ema_a[key], ema_b[key]), key


def test_a_full_disk_keeps_the_last_checkpoint(tmp_path, eight_photos_prepared, monkeypatch):
    config = tiny_config(tmp_path / "run", eight_photos_prepared, max_steps=4, batch_size=4)
    config.checkpoints.every_steps = 2
    from accelerate import Accelerator

    original = Accelerator.save_state
    calls = []

    def filling_disk(self, output_dir=None, **kwargs):
        calls.append(output_dir)
        if len(calls) == 2:
            os.makedirs(output_dir, exist_ok=True)
            with open(os.path.join(output_dir, "model.safetensors"), "wb") as handle:
                handle.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, output_dir, **kwargs)

    monkeypatch.setattr(Accelerator, "save_state", filling_disk)
    with pytest.raises(FaceStudioError, match=r"no space left.*checkpoint-00000002, is intact"):
        train(config)
    folder = tmp_path / "run" / "checkpoints"
    assert [p.name for p in folder.iterdir()] == ["checkpoint-00000002"]
    # The kept checkpoint is whole: with space again the run resumes from it and finishes.
    monkeypatch.undo()
    steps = []
    result = train(config, on_step=lambda step, loss: steps.append(step))
    assert steps == [3, 4] and result.checkpoint.name == "checkpoint-00000004"


def test_export_gives_a_pipeline_that_generates_with_the_trained_weights(
    tmp_path, eight_photos_prepared, capsys
):
    config = tiny_config(tmp_path / "run", eight_photos_prepared, max_steps=6, use_ema=False)
    train(config)
    checkpoint = RunFolder(tmp_path / "run").latest_checkpoint()
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "model")]) == 0
    exported = FaceStudioPipeline.from_pretrained(tmp_path / "model")
    trained = load_file(str(checkpoint / "model.safetensors"))
    np.testing.assert_array_equal(
        exported.guidance.proj.weight.detach().numpy(), trained["guidance.proj.weight"].numpy()
    )
    initial = FaceStudioPipeline.from_pretrained(tmp_path / "run" / "initial_pipeline")
    assert not np.array_equal(
        initial.guidance.proj.weight.detach().numpy(), trained["guidance.proj.weight"].numpy()
    )
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "model")]) == 2
    assert "not empty" in capsys.readouterr().err
    # The run standardised face embeddings with the data's statistics, and the export keeps them.
    mean, std = ReconstructionDataset(eight_photos_prepared).face_statistics()
    np.testing.assert_allclose(exported.guidance.face_mean.numpy(), mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(exported.guidance.face_std.numpy(), std.numpy(), rtol=1e-6)


TWO_PROCESSES = """
import hashlib, pathlib, sys
from accelerate import PartialState
from facestudio.training.config import load_config
from facestudio.training.loop import train
result = train(load_config(sys.argv[1]), cpu=True)
digest = hashlib.sha256()
for name, tensor in sorted(result.objective.state_dict().items()):
    digest.update(name.encode() + tensor.detach().float().numpy().tobytes())
# Each rank writes its own file: on the two ranks' shared stdout, a report once went missing in CI.
rank = PartialState().process_index
report = f"rank {rank} step {result.step} weights {digest.hexdigest()}"
(pathlib.Path(sys.argv[2]) / f"rank-{rank}.txt").write_text(report)
"""


@pytest.mark.slow
def test_two_cpu_processes_stay_in_sync(tmp_path, eight_photos_prepared):
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        textwrap.dedent(
            f"""
            output_dir = "{tmp_path / "run"}"
            [data]
            path = "{eight_photos_prepared}"
            [train]
            allow_untrained_frozen = true
            batch_size = 2
            learning_rate = 1e-3
            max_steps = 4
            [checkpoints]
            every_steps = 2
            """
        )
    )
    script = tmp_path / "train_and_hash.py"
    script.write_text(TWO_PROCESSES)
    reports_dir = tmp_path / "reports"
    reports_dir.mkdir()
    launched = launch_two_cpu_processes(
        [str(config_path), str(reports_dir)], port=29517, script=str(script)
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    reports = [path.read_text() for path in sorted(reports_dir.glob("rank-*.txt"))]
    assert [r.split()[:4] for r in reports] == [
        ["rank", "0", "step", "4"],
        ["rank", "1", "step", "4"],
    ]
    assert reports[0].split()[-1] == reports[1].split()[-1]  # replicas hold equal weights
    trained = load_file(str(tmp_path / "run/checkpoints/checkpoint-00000004/model.safetensors"))
    initial = FaceStudioPipeline.from_pretrained(tmp_path / "run" / "initial_pipeline")
    assert not np.array_equal(  # and the weights really moved
        initial.guidance.proj.weight.detach().numpy(), trained["guidance.proj.weight"].numpy()
    )
    assert not (tmp_path / "run" / "ranks").exists()  # nothing for tests in a user's run


def test_lora_training_exports_a_plain_unet_with_the_adapters_fused(
    tmp_path, eight_photos_prepared
):
    pytest.importorskip("peft")

    config = tiny_config(
        tmp_path / "run", eight_photos_prepared, max_steps=5, trainable="lora", lora_rank=4
    )
    train(config)
    checkpoint = RunFolder(tmp_path / "run").latest_checkpoint()
    trained = load_file(str(checkpoint / "model.safetensors"))
    assert any("lora" in key for key in trained)

    export_checkpoint(checkpoint, tmp_path / "model")
    exported = FaceStudioPipeline.from_pretrained(tmp_path / "model").unet.state_dict()
    initial = FaceStudioPipeline.from_pretrained(
        tmp_path / "run" / "initial_pipeline"
    ).unet.state_dict()
    assert set(exported) == set(initial)  # no adapter weights left over
    changed = [
        k
        for k in initial
        if "to_q" in k and not np.array_equal(exported[k].numpy(), initial[k].numpy())
    ]
    unchanged = [k for k in initial if "conv_in" in k]
    assert changed and all(
        np.array_equal(exported[k].numpy(), initial[k].numpy()) for k in unchanged
    )


def test_gradient_accumulation_counts_optimizer_steps(tmp_path, eight_photos_prepared):
    config = tiny_config(
        tmp_path / "run",
        eight_photos_prepared,
        max_steps=3,
        batch_size=2,
        gradient_accumulation_steps=2,
    )
    seen = []
    result = train(config, on_step=lambda step, loss: seen.append(step))
    assert result.step == 3 and seen == [1, 2, 3]


def test_the_style_encoder_can_train_with_the_model_and_is_exported(
    tmp_path, eight_photos_prepared
):

    config = tiny_config(
        tmp_path / "run", eight_photos_prepared, max_steps=4, train_style_encoder=True
    )
    train(config)
    checkpoint = RunFolder(tmp_path / "run").latest_checkpoint()
    export_checkpoint(checkpoint, tmp_path / "model")
    model = FaceStudioPipeline.from_pretrained(tmp_path / "model")
    assert model.config.style_faces == "mask"  # it only ever saw style inputs without a face
    exported = model.style_encoder.state_dict()
    initial = FaceStudioPipeline.from_pretrained(
        tmp_path / "run" / "initial_pipeline"
    ).style_encoder.state_dict()
    changed = [k for k in initial if not np.array_equal(exported[k].numpy(), initial[k].numpy())]
    assert changed and any("visual_projection" in k for k in changed)


def test_the_autoencoder_stage_learns_and_exports_with_its_latent_scale(
    tmp_path, eight_photos_prepared
):

    losses = []
    config = tiny_config(
        tmp_path / "run",
        eight_photos_prepared,
        max_steps=60,
        target="autoencoder",
        learning_rate=2e-3,
    )
    config.validation.every_steps = 60
    train(config, on_step=lambda step, loss: losses.append(loss))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    assert (tmp_path / "run" / "validation" / "step-00000060.png").is_file()
    export_checkpoint(RunFolder(tmp_path / "run").latest_checkpoint(), tmp_path / "model")
    vae = FaceStudioPipeline.from_pretrained(tmp_path / "model").vae
    initial = FaceStudioPipeline.from_pretrained(tmp_path / "run" / "initial_pipeline").vae
    assert vae.config.scaling_factor != initial.config.scaling_factor
    assert not np.array_equal(
        vae.encoder.conv_in.weight.detach().numpy(), initial.encoder.conv_in.weight.detach().numpy()
    )


def _reconstruction(pipeline, **train):
    """The diffusion objective over `pipeline`'s parts, as a run with these settings builds it."""
    config = tiny_config("unused", "unused", **{"style_dropout": 0.0, "face_dropout": 0.0, **train})
    return Reconstruction(pipeline, config)


def test_cached_latents_give_the_loss_of_encoding_at_each_step(
    tiny_pipeline, eight_photos_prepared
):

    dataset = ReconstructionDataset(eight_photos_prepared)
    batch = torch.utils.data.default_collate([dataset[i] for i in (5, 2, 7)])
    model = _reconstruction(tiny_pipeline)
    with torch.no_grad():
        encoded = model(batch, torch.Generator().manual_seed(3))
        model.latent_cache = encode_dataset(tiny_pipeline.vae, dataset, batch_size=3)
        cached = model(batch, torch.Generator().manual_seed(3))
    assert torch.allclose(encoded, cached, rtol=1e-4), (encoded, cached)


def test_min_snr_weighting_only_lowers_the_weight_of_low_noise_steps(
    tiny_pipeline, eight_photos_prepared
):

    dataset = ReconstructionDataset(eight_photos_prepared)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(8)])
    losses = {}
    for gamma in (0.0, 1e9, 1.0):
        model = _reconstruction(tiny_pipeline, snr_gamma=gamma)
        with torch.no_grad():
            losses[gamma] = model(batch, torch.Generator().manual_seed(0)).item()
    assert losses[1e9] == pytest.approx(losses[0.0], rel=1e-5)  # γ above every SNR: plain MSE
    assert losses[1.0] < losses[0.0]  # some of the 8 timesteps have SNR > 1 and are down-weighted


def test_face_loss_weight_covers_the_face_box_in_latent_cells(tiny_pipeline, eight_photos_prepared):

    dataset = ReconstructionDataset(eight_photos_prepared)
    sample = dataset[0]
    x0, y0, x1, y1 = sample["face_box"].tolist()
    assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64  # the prepared face, in image pixels

    boxes = torch.tensor([[16.0, 8.0, 48.0, 40.0], [0.0, 0.0, 0.0, 0.0]])
    weights = face_box_weights(boxes, (16, 16), 64, 4.0)  # a 4× smaller latent grid
    assert weights.shape == (2, 1, 16, 16)
    assert torch.equal(weights[0, 0, 2:10, 4:12], torch.full((8, 8), 4.0))
    assert int((weights[0] == 4.0).sum()) == 64 and torch.all(weights[1] == 1.0)

    full = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    losses = {}
    for weight in (1.0, 4.0):
        model = _reconstruction(tiny_pipeline, face_loss_weight=weight)
        with torch.no_grad():
            losses[weight] = model(full, torch.Generator().manual_seed(0)).item()
    assert losses[4.0] > losses[1.0]


def test_identity_gap_is_zero_exactly_when_the_identity_is_unused(
    tiny_pipeline, eight_photos_prepared
):

    dataset = ReconstructionDataset(eight_photos_prepared)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(8)])
    model = _reconstruction(tiny_pipeline, style_dropout=0.5, face_dropout=0.5)
    own, swapped = model.identity_gap(batch)
    assert own != swapped
    assert (model.style_dropout, model.face_dropout) == (0.5, 0.5)
    face_columns = model.guidance.proj.weight[:, model.guidance.config.style_dim :]
    saved = face_columns.detach().clone()
    with torch.no_grad():
        face_columns.zero_()
    try:
        own, swapped = model.identity_gap(batch)
    finally:
        with torch.no_grad():
            face_columns.copy_(saved)
    assert own == swapped


def test_decoder_fine_tune_keeps_the_encoder_and_latent_scale_and_improves_the_decoder(
    tmp_path, eight_photos_prepared
):
    config = tiny_config(
        tmp_path / "run",
        eight_photos_prepared,
        target="decoder",
        max_steps=30,
        learning_rate=2e-3,
        face_loss_weight=3.0,
        cache_latents=True,
    )
    losses = []
    train(config, on_step=lambda step, loss: losses.append(loss))
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    checkpoint = RunFolder(tmp_path / "run").latest_checkpoint()
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "model")]) == 0
    before = FaceStudioPipeline.from_pretrained(tmp_path / "run" / "initial_pipeline").vae
    after = FaceStudioPipeline.from_pretrained(tmp_path / "model").vae
    assert after.config.scaling_factor == before.config.scaling_factor
    for name, tensor in before.state_dict().items():
        changed = not np.array_equal(tensor.numpy(), after.state_dict()[name].numpy())
        trained = name.startswith(("decoder.", "post_quant_conv."))
        assert changed == trained, name
