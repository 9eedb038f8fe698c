"""The starting pipeline of the bundled model v2: TAEF2's latent space, v1's other parts.

    python recipes/bundled_model_v2/make_initial.py --taef2 RUN/taef2 --data RUN/prepared-128 \
        --out RUN/initial [--unet v1|random] [--prediction v_prediction|epsilon]

- `vae`: the converted TAEF2 (recipes/taef2/convert.py) with per-channel latent statistics
  of up to 1,024 training portraits registered in its config, so the U-Net sees
  standardised latents (unit variance in every channel, not only overall).
- `unet`: v1's layout with 32 input and output channels; `--unet v1` starts every weight
  whose shape is unchanged from v1 (all but the first and last convolution), `random` none.
- `guidance`, `style_encoder`: v1's (the identity and style inputs keep their meaning).
- `scheduler`: v1's schedule, predicting `--prediction`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from diffusers import EulerAncestralDiscreteScheduler, UNet2DConditionModel

from facestudio import FaceStudioPipeline
from facestudio.data.dataset import ReconstructionDataset
from facestudio.model import latent_space
from facestudio.model.tiny_autoencoder import TinyAutoencoder


def standardised_vae(taef2: Path, data: Path, count: int = 1024) -> TinyAutoencoder:
    vae = TinyAutoencoder.from_pretrained(taef2)
    dataset = ReconstructionDataset(data)
    step = max(1, len(dataset) // count)
    images = torch.stack([dataset[i]["image"] for i in range(0, len(dataset), step)][:count])
    mean, std = latent_space.raw_statistics(vae, images)
    vae.register_to_config(latents_mean=mean, latents_std=std)
    print(f"latent statistics from {len(images)} portraits: std {min(std):.3f}..{max(std):.3f}")
    return vae


def unet_for(vae: TinyAutoencoder, v1: UNet2DConditionModel, start: str) -> UNet2DConditionModel:
    channels = latent_space.latent_channels(vae)
    unet = UNet2DConditionModel.from_config(
        {**v1.config, "in_channels": channels, "out_channels": channels}
    )
    if start == "v1":
        own = unet.state_dict()
        kept = {k: v for k, v in v1.state_dict().items() if own[k].shape == v.shape}
        unet.load_state_dict(kept, strict=False)
        print(f"U-Net: {len(kept)} of {len(own)} tensors from v1")
    return unet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taef2", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--unet", choices=["v1", "random"], default="v1")
    parser.add_argument("--prediction", choices=["v_prediction", "epsilon"], default="v_prediction")
    args = parser.parse_args()
    v1 = FaceStudioPipeline.from_pretrained("bundled")
    side = ReconstructionDataset(args.data).resolution
    vae = standardised_vae(args.taef2, args.data)
    scheduler = EulerAncestralDiscreteScheduler.from_config(
        v1.scheduler.config, prediction_type=args.prediction
    )
    pipeline = FaceStudioPipeline(
        unet=unet_for(vae, v1.unet, args.unet),
        vae=vae,
        scheduler=scheduler,
        guidance=v1.guidance,
        style_encoder=v1.style_encoder,
        face_analysis=v1.config.face_analysis,
        style_faces=v1.config.style_faces,
        # What v2 makes well (pipeline/sizes.py): one portrait per person at the training
        # resolution, side by side.
        sizes={"trained": [side, side], "people": "side_by_side"},
    )
    pipeline.save_pretrained(args.out)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
