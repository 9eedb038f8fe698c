"""`FaceStudioPipeline`: hybrid guidance and multi-identity cross-attention on a diffusers U-Net."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from facestudio.errors import FaceStudioError, ModelLoadError
from facestudio.faces.analyzer import FaceAnalyzer, FaceAnalyzerConfig
from facestudio.fields import field_ref
from facestudio.model import latent_space
from facestudio.model.hybrid_guidance import HybridGuidance
from facestudio.model.multi_identity_attention import (
    concat_identity_tokens,
    install_identity_routing,
    routes_identities,
    unet_levels,
)
from facestudio.model.style_encoder import StyleEncoder
from facestudio.model.text_encoder import WordVectorEncoder, unknown_words
from facestudio.model.text_prior import prompt_embeddings
from facestudio.model.tiny_autoencoder import TinyAutoencoder
from facestudio.pipeline.generic_loading import class_name_of, write_generic_loader
from facestudio.pipeline.identities import Person
from facestudio.pipeline.inputs import PreparedRequest, prepare_request
from facestudio.pipeline.model_info import PICKLE_SUFFIXES, ModelInfo, resolve_model
from facestudio.pipeline.request import GenerationRequest, ImageInput
from facestudio.pipeline.sizes import SizePolicy
from facestudio.provenance import watermark
from facestudio.provenance.metadata import image_metadata, label_image
from facestudio.structured_files import quote

STYLE_FACES = ("keep", "mask")
OUTPUT_TYPES = ("pil", "np", "latent")
MAX_WORDS_SHOWN = 10
"""Unknown prompt words a warning names; the rest are counted."""


@dataclass
class FaceStudioPipelineOutput(BaseOutput):
    """Generated images and, for each, the settings that made it (also written into PNGs)."""

    images: list[Image.Image] | np.ndarray
    metadata: list[dict]

    def save(self, index: int, path: str | os.PathLike, force: bool = False, signing=None) -> Path:
        """Write image `index` as a PNG with its label, settings and signed content
        credentials (`signing`: a `facestudio.provenance.credentials.SigningConfig`; default
        the configured key or a test key). Refuses to overwrite unless `force`."""
        from facestudio.provenance.save import save_image

        image = self.images[index]
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        return save_image(image, path, self.metadata[index], force, signing)


class FaceStudioPipeline(DiffusionPipeline):
    """Identity-preserving generation from face photos, a style image and (optionally) text.

    Components: `unet`, `vae` (`AutoencoderKL` or the tiny TAESD-layout `TinyAutoencoder`;
    `model.latent_space` converts for either), `scheduler` (Euler Ancestral by default), `guidance`
    (`HybridGuidance`), `style_encoder` (CLIP vision towers), and for text the optional
    `tokenizer`, `text_encoder`, `prior`, `prior_scheduler`. The face backend is frozen and not
    a torch module: its configuration is stored with the pipeline (`face_analysis`).
    `style_faces`: "keep" the style image as given, or "mask" the faces found in it (grey
    boxes, as in training by reconstruction) for models whose style encoder never saw a face.
    """

    model_cpu_offload_seq = "text_encoder->prior->style_encoder->guidance->unet->vae"
    _callback_tensor_inputs: ClassVar[list[str]] = ["latents"]
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
        vae: AutoencoderKL | TinyAutoencoder,
        scheduler,
        guidance: HybridGuidance,
        style_encoder: StyleEncoder | None = None,
        tokenizer=None,
        text_encoder=None,
        prior=None,
        prior_scheduler=None,
        face_analysis: dict | None = None,
        style_faces: str = "keep",
        sizes: dict | None = None,
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
        self.vae_scale_factor = latent_space.scale_factor(vae)
        policy = SizePolicy.from_config(sizes, self.vae_scale_factor, "sizes")  # fails here
        self.register_to_config(
            face_analysis=face_analysis or FaceAnalyzerConfig().to_dict(),
            style_faces=style_faces,
            sizes=policy.to_config() if policy is not None else None,
        )
        self._face_analyzer: FaceAnalyzer | None = None
        # Once, here: each call passes its routing in `cross_attention_kwargs`.
        install_identity_routing(unet)

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs
    ) -> FaceStudioPipeline:
        """Load a pipeline folder, a hub id, or "bundled" (`facestudio.BUNDLED_MODEL`: the small
        model shipped in the package).

        Only safetensors weights are read; pickles are refused. A local folder's configs are
        checked first (`ModelInfo`: importable component modules, sane sizes), so a damaged
        or hostile folder fails in one line before anything is built.
        """
        pretrained_model_name_or_path = resolve_model(pretrained_model_name_or_path)
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
            ModelInfo.from_folder(path)
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

    @classmethod
    def load_config(cls, *args, **kwargs):
        """diffusers' config reader, with a `[file, class]` `_class_name` (the entry that lets
        diffusers' generic loader open the folder) read as the class name, so that this class
        never runs code from a model folder."""
        loaded = super().load_config(*args, **kwargs)
        config = loaded[0] if isinstance(loaded, tuple) else loaded
        if "_class_name" in config:
            config["_class_name"] = class_name_of(config["_class_name"])
        return loaded

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """diffusers' save (safetensors), plus what lets `DiffusionPipeline.from_pretrained(
        folder, trust_remote_code=True)` open the folder (see `generic_loading`)."""
        super().save_pretrained(save_directory, *args, **kwargs)
        write_generic_loader(save_directory)

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
        style_image: ImageInput | None = None,
        image: ImageInput | None = None,
        strength: float | None = None,
        regions="auto",
        alpha: float | None = None,
        mix_weights: list[float] | None = None,
        face_index: int | None = None,
        style_guidance_scale: float = 5.0,
        face_guidance_scale: float = 5.0,
        prior_guidance_scale: float | None = None,
        num_inference_steps: int = 25,
        prior_num_inference_steps: int = 25,
        height: int | None = None,
        width: int | None = None,
        num_images_per_prompt: int = 1,
        seed: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        background: str = "random",
        auto_crop: bool = True,
        output_type: str = "pil",
        return_dict: bool = True,
        request: GenerationRequest | None = None,
        prepared: PreparedRequest | None = None,
        callback_on_step_end: Callable[[FaceStudioPipeline, int, torch.Tensor, dict], dict]
        | PipelineCallback
        | MultiPipelineCallbacks
        | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 (diffusers' API)
    ) -> FaceStudioPipelineOutput | tuple:
        """Generate images of the given people.

        Args:
            prompt: text, through the prior into CLIP-image space (models with a text prior).
            identities: one entry per person: a photo (path, PIL, RGB array), a face embedding,
                or a list of them (several photos of that person).
            style_image: the style/content reference (CLIP vision branch): a path, PIL image
                or RGB array.
            image, strength: image-to-image: start from `image` (path, PIL, array) noised to
                `strength` (0–1], default 0.8; `strength` without `image` is an error.
            regions: "auto"/None (people found in `image` or `style_image`, else an even
                split), boxes (x0, y0, x1, y1) in output pixels, or masks (N, H, W).
            height, width: default the size the model declares for this many people (the
                bundled model: one 64×64 portrait per person, side by side); a model that
                declares its sizes refuses any other (`facestudio.pipeline.sizes`).
            alpha: weight of the image branch against the text branch (`e_g = α·e_i +
                (1−α)·e_p`); default 1 without a prompt, 0 with a prompt only, 0.5 with both.
            mix_weights: blend all people into one identity with these weights (β).
            style_guidance_scale, face_guidance_scale: classifier-free guidance on the style
                (and text) and on the identity separately; equal values are ordinary CFG.
            seed: image i uses seed + i, so every image can be remade alone (identical up to
                float rounding between batch sizes); `generator` overrides it.
            background: what queries outside every person region see: "random" (one person,
                drawn once per call) or "all".
            auto_crop: with several people placed automatically from `style_image`, crop it
                around its faces to the output's shape first (`facestudio.pipeline.framing`).
            request: a `GenerationRequest` (as the CLI and the server build) instead of the
                arguments above; `prepared`: its inputs already loaded by
                `facestudio.pipeline.inputs.prepare_request` (e.g. before this model loaded).
            callback_on_step_end: diffusers' step callback, called after every denoising step
                as `callback_on_step_end(pipeline, step_index, timestep, callback_kwargs)`
                (step_index from 0; `callback_kwargs` holds the tensors named below). It
                returns a dict; a `latents` entry in it replaces the latents the loop goes on
                with, so it can report progress or edit the latents. It belongs to this call
                only (a server, for one, reports each job's progress through it).
            callback_on_step_end_tensor_inputs: the tensors passed in `callback_kwargs`, from
                `FaceStudioPipeline._callback_tensor_inputs` (`latents`); a diffusers
                `PipelineCallback` brings its own list.

        Every request is checked against `facestudio.pipeline.limits` and this model's
        capabilities before any work. Output images carry their label and settings: a plain
        `out.images[0].save("x.png")` writes them; `out.save(0, "x.png")` adds signed content
        credentials.
        """
        if request is None:
            request = prepared.request if prepared is not None else GenerationRequest(
                people=identities,
                style_image=style_image,
                image=image,
                strength=strength,
                prompt=prompt,
                regions=regions,
                width=width,
                height=height,
                num_inference_steps=num_inference_steps,
                prior_num_inference_steps=prior_num_inference_steps,
                seed=seed,
                num_images=num_images_per_prompt,
                style_guidance_scale=style_guidance_scale,
                face_guidance_scale=face_guidance_scale,
                prior_guidance_scale=prior_guidance_scale,
                alpha=alpha,
                mix_weights=mix_weights,
                face_index=face_index,
                background=background,
                auto_crop=auto_crop,
            )
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        info = self._check_arguments(
            request,
            generator,
            output_type,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
        )
        if prepared is None:
            prepared = prepare_request(request, lambda: self.face_analyzer, info)
        prompt, alpha, background = request.prompt, request.effective_alpha, request.background
        style_image, image = prepared.style_image, prepared.image
        strength = request.effective_strength
        height, width, batch = prepared.height, prepared.width, request.num_images
        people, layout = prepared.people, prepared.layout
        style_guidance_scale = request.style_guidance_scale
        face_guidance_scale = request.face_guidance_scale
        prior_guidance_scale = request.prior_guidance_scale
        prior_num_inference_steps = request.prior_num_inference_steps
        num_inference_steps = request.num_inference_steps
        device = self._execution_device
        seeds, generators = _generators(prepared.seeds, generator, batch)

        contexts, coefficients, token_owner = self._guidance_contexts(
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

        routing = None
        if layout is not None:
            if not routes_identities(self.unet):
                raise FaceStudioError(
                    "this U-Net's attention processors were replaced, so it cannot keep people "
                    "apart; call facestudio.model.install_identity_routing(pipeline.unet)"
                )
            latent_size = (latents.shape[-2], latents.shape[-1])
            routing = layout.routing(
                token_owner, latent_size, unet_levels(self.unet), background, generators[0]
            ).to(device)
        latents = self._denoise(
            latents,
            timesteps,
            contexts,
            coefficients,
            generators,
            routing,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
        )

        images = self._decode(latents, output_type)
        settings = {
            "prompt": prompt,
            "alpha": alpha,
            "style_image": style_image is not None,
            "image_to_image": image is not None,
            "strength": strength,
            "style_guidance_scale": style_guidance_scale,
            "face_guidance_scale": face_guidance_scale,
            "steps": num_inference_steps,
            "scheduler": type(self.scheduler).__name__,
            "height": height,
            "width": width,
            "background": background if layout else None,
            "people": [{"sources": p.sources} for p in people],
            "mix_weights": request.mix_weights,
            "regions": layout.describe() if layout else None,
            "style_crop": prepared.framing.describe() if prepared.framing else None,
            "watermark": watermark.method_for(width, height) if output_type != "latent" else None,
            "warnings": [*prepared.warnings, *self._prompt_warnings(prompt, alpha)],
            "model": info.name,
        }
        metadata = [image_metadata(settings, s, i) for i, s in enumerate(seeds)]
        if output_type == "pil":
            images = [label_image(picture, m) for picture, m in zip(images, metadata, strict=True)]
        if not return_dict:
            return images, metadata
        return FaceStudioPipelineOutput(images=images, metadata=metadata)

    def _prompt_warnings(self, prompt: str | None, alpha: float) -> list[str]:
        """Words of `prompt` that a word-vector text encoder does not know: they change nothing,
        so the user is told which (a CLIP tokenizer splits any word, and knows them all)."""
        if prompt is None or alpha >= 1.0 or not isinstance(self.text_encoder, WordVectorEncoder):
            return []
        unknown = list(dict.fromkeys(unknown_words(prompt, self.tokenizer)))
        if not unknown:
            return []
        shown = ", ".join(quote(word, 40) for word in unknown[:MAX_WORDS_SHOWN])
        more = f" and {len(unknown) - MAX_WORDS_SHOWN} more" if len(unknown) > MAX_WORDS_SHOWN else ""
        return [
            f"{len(unknown)} word(s) of {field_ref('prompt')} are not in the model's vocabulary "
            f"and are ignored: {shown}{more}; say it with other words"
        ]

    def _check_arguments(
        self,
        request: GenerationRequest,
        generator,
        output_type,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs=("latents",),
    ) -> ModelInfo:
        """Check the request against the limits and this model, before any work."""
        info = ModelInfo.from_pipeline(self)
        request.validate(info)
        if output_type not in OUTPUT_TYPES:
            raise FaceStudioError(
                f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}"
            )
        if isinstance(generator, list) and len(generator) != request.num_images:
            raise FaceStudioError(
                f"{len(generator)} generators for {request.num_images} images; give one per image"
            )
        if callback_on_step_end is not None and not callable(callback_on_step_end):
            raise FaceStudioError(
                "callback_on_step_end must be a function (pipeline, step_index, timestep, "
                f"callback_kwargs) -> dict, got {type(callback_on_step_end).__name__}"
            )
        allowed = self._callback_tensor_inputs
        names = callback_on_step_end_tensor_inputs
        if not isinstance(names, list | tuple) or not all(name in allowed for name in names):
            raise FaceStudioError(
                "callback_on_step_end_tensor_inputs must be a list of names from "
                f"{', '.join(allowed)}; got {names!r}"
            )
        return info

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
    ) -> tuple[torch.Tensor, list[float], torch.Tensor]:
        """Context tokens of each guidance term, stacked on the batch axis, their weights, and
        the token layout (which person each context token belongs to; the same in every term).

        ε = (1 − s_style)·ε(∅, ∅) + (s_style − s_face)·ε(style, ∅) + s_face·ε(style, face);
        terms with weight 0 are not computed.
        """
        style = self.style_encoder([style_image]).to(device) if style_image is not None else None
        prior = None
        if prompt is not None and alpha < 1.0:  # at alpha 1 the text branch has no weight
            prior = prompt_embeddings(
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

        def context(with_content: bool, with_face: bool) -> tuple[torch.Tensor, torch.Tensor]:
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
            return concat_identity_tokens(tokens)  # (1, ΣK, D) and its token layout

        weights = {
            (False, False): 1.0 - style_scale,
            (True, False): style_scale - face_scale,
            (True, True): face_scale,
        }
        if (style is None or alpha == 0.0) and (prior is None or alpha == 1.0):
            # No content input takes part, so ε(style, ∅) is ε(∅, ∅): two terms suffice.
            weights = {(False, False): 1.0 - face_scale, (True, True): face_scale}
        terms = [(key, w) for key, w in weights.items() if w != 0.0]
        built = [context(*key) for key, _ in terms]
        contexts = torch.cat([tokens.expand(batch, -1, -1) for tokens, _ in built])
        return contexts.to(self.unet.dtype), [w for _, w in terms], built[0][1]

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
        start = steps - denoising_steps(steps, strength)
        timesteps = timesteps[start:]
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(start)
        encoded = latent_space.encode(self.vae, to_pixels(image, width, height))
        encoded = encoded.expand(batch, -1, -1, -1).to(dtype)
        return self.scheduler.add_noise(encoded, noise, timesteps[:1].repeat(batch)), timesteps

    def _denoise(
        self,
        latents,
        timesteps,
        contexts,
        coefficients,
        generators,
        routing=None,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs=("latents",),
    ):
        terms = len(coefficients)
        # The guidance terms stack as torch.cat([x] * terms), the batch layout routing expects.
        attention_kwargs = None if routing is None else routing.attention_kwargs()
        for i, t in enumerate(self.progress_bar(timesteps)):
            model_input = self.scheduler.scale_model_input(torch.cat([latents] * terms), t)
            predicted = self.unet(
                model_input,
                t,
                encoder_hidden_states=contexts,
                cross_attention_kwargs=attention_kwargs,
            ).sample
            parts = predicted.chunk(terms)
            noise = sum(w * part for w, part in zip(coefficients, parts, strict=True))
            latents = self.scheduler.step(noise, t, latents, generator=generators).prev_sample
            if callback_on_step_end is not None:
                tensors = {"latents": latents}
                names = callback_on_step_end_tensor_inputs
                outputs = callback_on_step_end(self, i, t, {k: tensors[k] for k in names})
                latents = outputs.pop("latents", latents)
        return latents

    def _decode(self, latents, output_type):
        if output_type == "latent":
            return latents
        decoded = latent_space.decode(self.vae, latents)
        pixels = ((decoded.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
        # The invisible watermark goes into the pixels here, where the image is large enough.
        array = np.stack([watermark.embed(a) for a in pixels.permute(0, 2, 3, 1).cpu().numpy()])
        if output_type == "np":
            return array
        return [Image.fromarray(a) for a in array]


def denoising_steps(num_inference_steps: int, strength: float | None) -> int:
    """How many denoising steps a call runs: all of them, or for image-to-image (`strength`
    given) the last `round(steps · strength)`, at least one."""
    if strength is None:
        return num_inference_steps
    return max(1, min(num_inference_steps, round(num_inference_steps * strength)))


def _generators(seeds: list[int], generator, batch) -> tuple[list, list[torch.Generator]]:
    """One generator per image: from `generator` when given (seeds unknown), else the seeds."""
    if generator is not None:
        generators = generator if isinstance(generator, list) else [generator] * batch
        return [None] * batch, generators
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
