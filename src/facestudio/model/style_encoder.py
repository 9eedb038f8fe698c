"""The style encoder: one or more CLIP vision towers whose image embeddings are concatenated.

The paper concatenates three CLIP models' image embeddings. Each tower here is a transformers
`CLIPVisionModelWithProjection`; preprocessing (resize, centre crop, CLIP normalisation) runs
in torch so the whole encoder is one module saved as one safetensors file.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from PIL import Image
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class StyleEncoder(ModelMixin, ConfigMixin):
    """CLIP image embeddings of a style image, concatenated over `vision_configs` towers."""

    @register_to_config
    def __init__(self, vision_configs: list[dict]) -> None:
        super().__init__()
        if not vision_configs:
            raise ValueError("a style encoder needs at least one CLIP vision configuration")
        self.towers = nn.ModuleList(
            CLIPVisionModelWithProjection(CLIPVisionConfig(**config)) for config in vision_configs
        )

    @property
    def embedding_dim(self) -> int:
        return sum(tower.config.projection_dim for tower in self.towers)

    @classmethod
    def from_clip_models(cls, names_or_paths: list[str], **kwargs) -> StyleEncoder:
        """Assemble from pretrained CLIP checkpoints (hub ids or folders, safetensors only)."""
        kwargs.setdefault("use_safetensors", True)
        towers = [
            CLIPVisionModelWithProjection.from_pretrained(name, **kwargs) for name in names_or_paths
        ]
        encoder = cls([tower.config.to_dict() for tower in towers])
        for target, tower in zip(encoder.towers, towers, strict=True):
            target.load_state_dict(tower.state_dict())
        return encoder

    def embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, embedding_dim) image embeddings of a (B, 3, H, W) batch in [0, 1] (differentiable)."""
        pixels = pixels.to(self.towers[0].device, torch.float32)
        embeddings = []
        for tower in self.towers:
            inputs = clip_preprocess(pixels, tower.config.image_size).to(dtype=tower.dtype)
            embeddings.append(tower(pixel_values=inputs).image_embeds)
        return torch.cat(embeddings, dim=-1)

    @torch.no_grad()
    def forward(self, images: list[Image.Image | np.ndarray]) -> torch.Tensor:
        """(B, embedding_dim) concatenated image embeddings (each tower's projection output)."""
        return torch.cat([self.embed_pixels(image_to_tensor(image)) for image in images])


def clip_preprocess(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """A (B, 3, H, W) batch in [0, 1] resized (shortest side), centre-cropped, CLIP-normalised."""
    height, width = pixels.shape[-2:]
    scale = size / min(height, width)
    new_size = (max(size, round(height * scale)), max(size, round(width * scale)))
    resized = F.interpolate(
        pixels, size=new_size, mode="bicubic", align_corners=False, antialias=True
    )
    top, left = (new_size[0] - size) // 2, (new_size[1] - size) // 2
    cropped = resized[..., top : top + size, left : left + size].clamp(0, 1)
    mean = torch.tensor(CLIP_MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=pixels.device).view(1, 3, 1, 1)
    return (cropped - mean) / std


def image_to_tensor(image: Image.Image | np.ndarray) -> torch.Tensor:
    """A PIL image or RGB array as a (1, 3, H, W) float batch in [0, 1]."""
    array = np.array(image.convert("RGB") if isinstance(image, Image.Image) else image)
    return torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255.0
