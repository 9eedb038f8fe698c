"""`export`: a training checkpoint -> a FaceStudio pipeline folder (safetensors only)."""

from __future__ import annotations

import json
from pathlib import Path

from facestudio.errors import FaceStudioError
from facestudio.training.config import config_from_dict


def export_pipeline(checkpoint: str | Path, out: str | Path, use_ema: bool = True) -> Path:
    """Write the pipeline with the checkpoint's trained weights (EMA weights when present)."""
    from safetensors.torch import load_file

    from facestudio.pipeline import FaceStudioPipeline
    from facestudio.training.trainer import TrainableModel, add_lora

    checkpoint = Path(checkpoint)
    run = checkpoint.parent.parent
    weights = checkpoint / "model.safetensors"
    if not (checkpoint / "trainer_state.json").is_file() or not weights.is_file():
        raise FaceStudioError(
            f"'{checkpoint}' is not a complete training checkpoint (no trainer_state.json or model.safetensors)"
        )
    if not (run / "initial_pipeline" / "model_index.json").is_file():
        raise FaceStudioError(
            f"'{run}' lacks initial_pipeline/; export needs the run folder the checkpoint belongs to"
        )
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FaceStudioError(f"output folder '{out}' is not empty; choose a new folder")
    config = config_from_dict(
        json.loads((run / "train_config.json").read_text()), source=str(run / "train_config.json")
    )
    pipeline = FaceStudioPipeline.from_pretrained(run / "initial_pipeline")
    if config.train.target in ("autoencoder", "decoder"):
        return _export_autoencoder(pipeline, config, checkpoint, out, use_ema)
    if config.train.trainable == "lora":
        add_lora(pipeline.unet, config.train.lora_rank)
    style_encoder = pipeline.style_encoder if config.train.train_style_encoder else None
    if config.train.train_style_encoder:
        # The style encoder only ever saw style inputs with the face masked out.
        pipeline.register_to_config(style_faces="mask")
    model = TrainableModel(pipeline.unet, pipeline.guidance, style_encoder)
    model.load_state_dict(load_file(str(weights)))
    ema = checkpoint / "ema.safetensors"
    if use_ema and ema.is_file():
        shadow = load_file(str(ema))
        trainable = [p for p in model.parameters() if p.requires_grad]
        for i, parameter in enumerate(trainable):
            parameter.data.copy_(shadow[f"p{i}"])
    if config.train.trainable == "lora":
        pipeline.unet.fuse_lora()
        pipeline.unet.unload_lora()
    pipeline.save_pretrained(out)
    return out


def _export_autoencoder(pipeline, config, checkpoint: Path, out: Path, use_ema: bool) -> Path:
    """The pipeline with the trained VAE. After stage 1 its latent scaling factor is set to
    1 / latent std, so the U-Net trained next sees latents of unit variance (as SD's 0.18215
    for its VAE); a decoder fine-tune keeps the factor, and the U-Net, it was given.
    """
    import torch
    from safetensors.torch import load_file

    from facestudio.training.dataset import ReconstructionDataset
    from facestudio.training.trainer import AutoencoderModel

    decoder_only = config.train.target == "decoder"
    model = AutoencoderModel(pipeline.vae, config.train.kl_weight, decoder_only=decoder_only)
    model.load_state_dict(load_file(str(checkpoint / "model.safetensors")))
    ema = checkpoint / "ema.safetensors"
    if use_ema and ema.is_file():
        shadow = load_file(str(ema))
        for i, parameter in enumerate(p for p in model.parameters() if p.requires_grad):
            parameter.data.copy_(shadow[f"p{i}"])
    if decoder_only:
        pipeline.save_pretrained(out)
        return out
    dataset = ReconstructionDataset(config.data.path, config.data.resolution)
    count = min(len(dataset), 256)
    with torch.no_grad():
        images = torch.stack([dataset[i]["image"] for i in range(count)])
        latents = torch.cat([pipeline.vae.encode(b).latent_dist.mean for b in images.split(32)])
    pipeline.vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    pipeline.save_pretrained(out)
    return out
