"""Prompt alignment (CLIP-T): cosine between CLIP's text and image embeddings."""

from __future__ import annotations

import torch
from PIL import Image

from facestudio.errors import ModelLoadError
from facestudio.model.style_encoder import clip_preprocess, image_to_tensor


class ClipTextImageScorer:
    """CLIP-T with a CLIP checkpoint (hub id or folder; ViT-L/14 is the field's choice)."""

    def __init__(self, name_or_path: str) -> None:
        from transformers import CLIPModel, CLIPTokenizer

        try:
            self.model = CLIPModel.from_pretrained(name_or_path, use_safetensors=True).eval()
            self.tokenizer = CLIPTokenizer.from_pretrained(name_or_path)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"cannot load CLIP from '{name_or_path}': {str(exc).splitlines()[0][:200]}"
            ) from None

    @torch.no_grad()
    def __call__(self, image: Image.Image, prompt: str) -> float:
        tokens = self.tokenizer([prompt], padding=True, truncation=True, return_tensors="pt")
        text = self.model.get_text_features(**tokens)
        size = self.model.config.vision_config.image_size
        pixels = clip_preprocess(image_to_tensor(image), size)
        picture = self.model.get_image_features(pixel_values=pixels)
        text = text if isinstance(text, torch.Tensor) else text.pooler_output
        picture = picture if isinstance(picture, torch.Tensor) else picture.pooler_output
        return float(torch.nn.functional.cosine_similarity(text, picture).item())
