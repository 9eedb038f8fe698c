"""`FaceStudioPipeline`: hybrid guidance and multi-identity cross-attention on a diffusers U-Net."""

from __future__ import annotations

import json
import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from facestudio import __version__
from facestudio.errors import FaceStudioError, ModelLoadError
from facestudio.faces.analyzer import FaceAnalyzer, FaceAnalyzerConfig
from facestudio.faces.regions import mask_faces
from facestudio.model.hybrid_guidance import HybridGuidance
from facestudio.model.multi_identity_attention import (
    IdentityRouting,
    install_multi_identity_processors,
)
from facestudio.model.style_encoder import StyleEncoder
from facestudio.model.text_prior import sample_prior_embeddings
from facestudio.pipeline.identities import Person, mix_people, resolve_people
from facestudio.pipeline.layout import resolve_layout

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
STYLE_FACES = ("keep", "mask")


@dataclass
class FaceStudioPipelineOutput(BaseOutput):
    """Generated images and, for each, the settings that made it (also written into PNGs)."""

    images: list[Image.Image] | np.ndarray
    metadata: list[dict]


class FaceStudioPipeline(DiffusionPipeline):
    """Identity-preserving generation from face photos, a style image and (optionally) text.

    Components: `unet`, `vae`, `scheduler` (Euler Ancestral by default), `guidance`
    (`HybridGuidance`), `style_encoder` (CLIP vision towers), and for text the optional
    `tokenizer`, `text_encoder`, `prior`, `prior_scheduler`. The face backend is frozen and not
    a torch module: its configuration is stored with the pipeline (`face_analysis`).
    `style_faces`: "keep" the style image as given, or "mask" the faces found in it (grey
    boxes, as in training by reconstruction) for models whose style encoder never saw a face.
    """

    model_cpu_offload_seq = "text_encoder->prior->style_encoder->guidance->unet->vae"
    _optional_components: ClassVar[list[str]] = [
        "style_encoder",
        "tokenizer",
        "text_encoder",
        "prior",
        "prior_scheduler",
    ]

    def __init__(
        self,
        unet: UNet2DConditionModel,
        vae: AutoencoderKL,
        scheduler,
        guidance: HybridGuidance,
        style_encoder: StyleEncoder | None = None,
        tokenizer=None,
        text_encoder=None,
        prior=None,
        prior_scheduler=None,
        face_analysis: dict | None = None,
        style_faces: str = "keep",
    ) -> None:
        super().__init__()
        self.register_modules(
            unet=unet,
            vae=vae,
            scheduler=scheduler,
            guidance=guidance,
            style_encoder=style_encoder,
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            prior=prior,
            prior_scheduler=prior_scheduler,
        )
        if style_faces not in STYLE_FACES:
            raise ModelLoadError(
                f"style_faces must be one of {', '.join(STYLE_FACES)}, got '{style_faces}'"
            )
        self.register_to_config(
            face_analysis=face_analysis or FaceAnalyzerConfig().to_dict(), style_faces=style_faces
        )
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self._face_analyzer: FaceAnalyzer | None = None

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs
    ) -> FaceStudioPipeline:
        """Load a pipeline folder (or hub id). Only safetensors weights are read; pickles are refused."""
        path = Path(pretrained_model_name_or_path)
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise ModelLoadError(
                f"'{path}' is a pickle checkpoint, which can run arbitrary code and is never loaded; "
                "convert it to safetensors in a pipeline folder"
            )
        if path.exists() and not path.is_dir():
            raise ModelLoadError(
                f"'{path}' is a file; give a FaceStudio pipeline folder (with model_index.json)"
            )
        if path.is_dir():
            if not (path / "model_index.json").is_file():
                raise ModelLoadError(
                    f"'{path}' is not a pipeline folder: it has no model_index.json"
                )
            pickles = [p for p in path.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES]
            if pickles:
                raise ModelLoadError(
                    f"'{pickles[0]}' is a pickle file; FaceStudio loads safetensors only, "
                    "so convert or remove it"
                )
        kwargs.setdefault("use_safetensors", True)
        try:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except (OSError, ValueError, RuntimeError, json.JSONDecodeError) as exc:
            reason = (
                str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            )
            raise ModelLoadError(
                f"cannot load the pipeline from '{pretrained_model_name_or_path}': {reason}"
            ) from None
        except Exception as exc:  # safetensors raises its own error type for damaged files
            if type(exc).__name__ != "SafetensorError":
                raise
            raise ModelLoadError(
                f"cannot load the pipeline from '{pretrained_model_name_or_path}': damaged weights ({exc})"
            ) from None

    @property
    def face_analyzer(self) -> FaceAnalyzer:
        """The frozen face backend, built from the stored configuration on first use."""
        if self._face_analyzer is None:
            self._face_analyzer = FaceAnalyzer(
                FaceAnalyzerConfig.from_dict(dict(self.config.face_analysis))
            )
        return self._face_analyzer

    def set_face_analyzer(self, analyzer: FaceAnalyzer) -> None:
        """Use another analyzer (e.g. with a cache folder); its backend must match the model's."""
        self._face_analyzer = analyzer

    # -- generation ------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | None = None,
        identities=None,
        style_image: Image.Image | np.ndarray | None = None,
        image: Image.Image | np.ndarray | None = None,
        strength: float = 0.8,
        regions=None,
        alpha: float | None = None,
        mix_weights: list[float] | None = None,
        face_index: int | None = None,
        style_guidance_scale: float = 5.0,
        face_guidance_scale: float = 5.0,
        prior_guidance_scale: float = 4.0,
        num_inference_steps: int = 25,
        prior_num_inference_steps: int = 25,
        height: int | None = None,
        width: int | None = None,
        num_images_per_prompt: int = 1,
        seed: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        background: str = "random",
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> FaceStudioPipelineOutput | tuple:
        """Generate images of the given people.

        Args:
            prompt: text, through the prior into CLIP-image space (models with a text prior).
            identities: one entry per person: a photo (path, PIL, RGB array), a face embedding,
                or a list of them (several photos of that person).
            style_image: the style/content reference (CLIP vision branch).
            image, strength: image-to-image: start from `image` noised to `strength` (0–1].
            regions: None/"auto" (people found in `image` or `style_image`, else an even
                split), boxes (x0, y0, x1, y1) in output pixels, or masks (N, H, W).
            alpha: weight of the image branch against the text branch (`e_g = α·e_i +
                (1−α)·e_p`); default 1 without a prompt, 0 with a prompt only, 0.5 with both.
            mix_weights: blend all people into one identity with these weights (β).
            style_guidance_scale, face_guidance_scale: classifier-free guidance on the style
                (and text) and on the identity separately; equal values are ordinary CFG.
            seed: image i uses seed + i, so every image can be remade alone (identical up to
                float rounding between batch sizes); `generator` overrides it.
            background: what queries outside every person region see: "random" (one person,
                drawn once per call) or "all".
        """
        height = height or self.unet.config.sample_size * self.vae_scale_factor
        width = width or self.unet.config.sample_size * self.vae_scale_factor
        self._check_arguments(
            prompt,
            style_image,
            image,
            strength,
            alpha,
            height,
            width,
            num_inference_steps,
            num_images_per_prompt,
            style_guidance_scale,
            face_guidance_scale,
        )
        if alpha is None:
            alpha = 1.0 if prompt is None else (0.0 if style_image is None else 0.5)
        if prompt is not None and alpha < 1.0 and prior_num_inference_steps < 2:
            raise FaceStudioError(
                f"the prior needs at least 2 steps, got {prior_num_inference_steps}"
            )
        device = self._execution_device
        batch = num_images_per_prompt
        seeds, generators = _generators(seed, generator, batch)

        face_dim = self.guidance.config.face_dim
        people = resolve_people(identities, lambda: self.face_analyzer, face_dim, face_index)
        if mix_weights is not None:
            if not people:
                raise FaceStudioError("mix weights were given but no identities to mix")
            people = [mix_people(people, mix_weights)]
        layout_image = image if image is not None else style_image
        layout = resolve_layout(
            regions, len(people), width, height, layout_image, lambda: self.face_analyzer
        )
        if style_image is not None and self.config.style_faces == "mask":
            style_image = self._mask_style_faces(style_image)

        contexts, coefficients = self._guidance_contexts(
            people,
            prompt,
            style_image,
            alpha,
            style_guidance_scale,
            face_guidance_scale,
            prior_guidance_scale,
            prior_num_inference_steps,
            generators[0],
            batch,
            device,
        )
        latents, timesteps = self._initial_latents(
            image,
            strength,
            num_inference_steps,
            height,
            width,
            batch,
            generators,
            device,
            contexts.dtype,
        )

        restore = None
        if layout is not None:
            background_identity = int(torch.randint(len(people), (1,), generator=generators[0]))
            routing = IdentityRouting(
                layout.masks_at,
                len(people),
                self.guidance.config.num_tokens,
                (width // self.vae_scale_factor, height // self.vae_scale_factor),
                background,
                background_identity,
            )
            restore = install_multi_identity_processors(self.unet, routing)
        try:
            latents = self._denoise(latents, timesteps, contexts, coefficients, generators)
        finally:
            if restore is not None:
                self.unet.set_attn_processor(restore)

        images = self._decode(latents, output_type)
        settings = {
            "prompt": prompt,
            "alpha": alpha,
            "style_image": style_image is not None,
            "image_to_image": image is not None,
            "strength": strength if image is not None else None,
            "style_guidance_scale": style_guidance_scale,
            "face_guidance_scale": face_guidance_scale,
            "steps": num_inference_steps,
            "scheduler": type(self.scheduler).__name__,
            "height": height,
            "width": width,
            "background": background if layout else None,
            "people": [{"sources": p.sources} for p in people],
            "mix_weights": mix_weights,
            "regions": layout.describe() if layout else None,
            "warnings": [w for p in people for w in p.warnings],
            "model": str(getattr(self.config, "_name_or_path", "") or ""),
        }
        metadata = [
            {
                "generated": True,
                "generator": f"FaceStudio {__version__}",
                "seed": s,
                "index": i,
                **settings,
            }
            for i, s in enumerate(seeds)
        ]
        if not return_dict:
            return images, metadata
        return FaceStudioPipelineOutput(images=images, metadata=metadata)

    def _mask_style_faces(self, style_image: Image.Image | np.ndarray) -> Image.Image:
        picture = np.asarray(
            style_image.convert("RGB") if isinstance(style_image, Image.Image) else style_image
        )
        boxes = [face.box for face in self.face_analyzer.analyze(picture).faces]
        return Image.fromarray(mask_faces(picture, boxes))

    def _check_arguments(
        self,
        prompt,
        style_image,
        image,
        strength,
        alpha,
        height,
        width,
        steps,
        batch,
        style_scale,
        face_scale,
    ) -> None:
        factor = self.vae_scale_factor
        if height % factor or width % factor or height <= 0 or width <= 0:
            raise FaceStudioError(
                f"height and width must be positive multiples of {factor} for this model, "
                f"got {width}×{height}; try {max(factor, round(width / factor) * factor)}×"
                f"{max(factor, round(height / factor) * factor)}"
            )
        if not isinstance(steps, int) or steps <= 0:
            raise FaceStudioError(
                f"the number of steps must be a positive whole number, got {steps}"
            )
        if not isinstance(batch, int) or batch <= 0:
            raise FaceStudioError(f"the number of images must be at least 1, got {batch}")
        if prompt is not None and self.prior is None:
            raise FaceStudioError(
                "this model has no text prior, so it cannot follow a prompt; give a style image "
                "instead (--style IMAGE)"
            )
        if style_image is not None and self.style_encoder is None:
            raise FaceStudioError("this model has no style encoder, so it cannot use a style image")
        if alpha is not None:
            if not 0.0 <= alpha <= 1.0:
                raise FaceStudioError(f"alpha must be between 0 and 1, got {alpha}")
            if alpha < 1.0 and prompt is None:
                raise FaceStudioError(
                    f"alpha {alpha} gives weight to the text branch; give a prompt or use alpha 1"
                )
        if image is not None and not 0.0 < strength <= 1.0:
            raise FaceStudioError(f"strength must be in (0, 1], got {strength}")
        for name, value in (
            ("style guidance scale", style_scale),
            ("face guidance scale", face_scale),
        ):
            if not math.isfinite(value) or value < 0:
                raise FaceStudioError(f"the {name} must be a non-negative number, got {value}")

    def _guidance_contexts(
        self,
        people: list[Person],
        prompt,
        style_image,
        alpha,
        style_scale,
        face_scale,
        prior_scale,
        prior_steps,
        generator,
        batch,
        device,
    ) -> tuple[torch.Tensor, list[float]]:
        """Context tokens of each guidance term, stacked on the batch axis, and their weights.

        ε = (1 − s_style)·ε(∅, ∅) + (s_style − s_face)·ε(style, ∅) + s_face·ε(style, face);
        terms with weight 0 are not computed.
        """
        style = self.style_encoder([style_image]).to(device) if style_image is not None else None
        prior = None
        if prompt is not None and alpha < 1.0:  # at alpha 1 the text branch has no weight
            prior = sample_prior_embeddings(
                [prompt],
                self.tokenizer,
                self.text_encoder,
                self.prior,
                self.prior_scheduler,
                prior_steps,
                prior_scale,
                generator,
            ).to(device)
        faces = [torch.from_numpy(p.embedding)[None].to(device) for p in people] or [None]

        def context(with_content: bool, with_face: bool) -> torch.Tensor:
            tokens = [
                self.guidance(
                    face if with_face else None,
                    style if with_content else None,
                    prior if with_content else None,
                    alpha,
                    batch_size=1,
                )
                for face in faces
            ]
            return torch.cat(tokens, dim=1)  # (1, N·K, D): the people's tokens one after another

        weights = {
            (False, False): 1.0 - style_scale,
            (True, False): style_scale - face_scale,
            (True, True): face_scale,
        }
        if (style is None or alpha == 0.0) and (prior is None or alpha == 1.0):
            # No content input takes part, so ε(style, ∅) is ε(∅, ∅): two terms suffice.
            weights = {(False, False): 1.0 - face_scale, (True, True): face_scale}
        terms = [(key, w) for key, w in weights.items() if w != 0.0]
        contexts = torch.cat([context(*key).expand(batch, -1, -1) for key, _ in terms])
        return contexts.to(self.unet.dtype), [w for _, w in terms]

    def _initial_latents(
        self, image, strength, steps, height, width, batch, generators, device, dtype
    ):
        self.scheduler.set_timesteps(steps, device=device)
        timesteps = self.scheduler.timesteps
        shape = (
            batch,
            self.unet.config.in_channels,
            height // self.vae_scale_factor,
            width // self.vae_scale_factor,
        )
        noise = randn_tensor(shape, generator=generators, device=device, dtype=dtype)
        if image is None:
            return noise * self.scheduler.init_noise_sigma, timesteps
        start = steps - max(1, min(steps, round(steps * strength)))
        timesteps = timesteps[start:]
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(start)
        pixels = to_pixels(image, width, height).to(device=device, dtype=self.vae.dtype)
        encoded = self.vae.encode(pixels).latent_dist.mean * self.vae.config.scaling_factor
        encoded = encoded.expand(batch, -1, -1, -1).to(dtype)
        return self.scheduler.add_noise(encoded, noise, timesteps[:1].repeat(batch)), timesteps

    def _denoise(self, latents, timesteps, contexts, coefficients, generators):
        terms = len(coefficients)
        for t in self.progress_bar(timesteps):
            model_input = self.scheduler.scale_model_input(torch.cat([latents] * terms), t)
            predicted = self.unet(model_input, t, encoder_hidden_states=contexts).sample
            parts = predicted.chunk(terms)
            noise = sum(w * part for w, part in zip(coefficients, parts, strict=True))
            latents = self.scheduler.step(noise, t, latents, generator=generators).prev_sample
        return latents

    def _decode(self, latents, output_type):
        if output_type == "latent":
            return latents
        decoded = self.vae.decode(
            latents.to(self.vae.dtype) / self.vae.config.scaling_factor
        ).sample
        pixels = ((decoded.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
        array = pixels.permute(0, 2, 3, 1).cpu().numpy()
        if output_type == "np":
            return array
        return [Image.fromarray(a) for a in array]


def _generators(seed, generator, batch) -> tuple[list[int | None], list[torch.Generator]]:
    if generator is not None:
        generators = generator if isinstance(generator, list) else [generator] * batch
        if len(generators) != batch:
            raise FaceStudioError(
                f"{len(generators)} generators for {batch} images; give one per image"
            )
        return [None] * batch, generators
    if seed is None:
        seed = secrets.randbelow(2**31)
    seeds = [seed + i for i in range(batch)]
    return seeds, [torch.Generator().manual_seed(s) for s in seeds]


def to_pixels(image, width: int, height: int) -> torch.Tensor:
    """A PIL image or RGB array resized to (width, height) as a (1, 3, H, W) batch in [-1, 1]."""
    picture = (
        image.convert("RGB")
        if isinstance(image, Image.Image)
        else Image.fromarray(np.asarray(image))
    )
    array = np.asarray(picture.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1)[None] / 127.5 - 1.0
