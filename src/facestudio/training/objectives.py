"""What a run trains and how: one `Objective` class per config `train.target`.

An objective is the module accelerate prepares and checkpoints save: its submodules are the
parts it trains (their state dict is the checkpoint's `model.safetensors`), the parts it only
uses stay outside its parameters (`Frozen`). The same class builds the trained module for
training and for export, so the two cannot drift. A new objective is one subclass with a new
`target`; the loop, the run folder and export need no change:

    class IdentityLoss(Reconstruction):
        target = "identity"

        def loss(self, batch, generator):
            denoised = self.denoise(batch, generator)
            ...  # batch: image, latents via self.latents(batch), face, face_box, face_landmarks

Reconstruction (the paper's recipe, `target = "diffusion"`): each sample is a face-centred
photo; its style input is the same photo with the face masked out and its identity input the
face's embedding. The U-Net learns to denoise the photo from both, so it must take the face
from the identity. DDPM ε- or v-prediction (the scheduler's `prediction_type`) on the pipeline's own training schedule;
classifier-free-guidance dropout replaces the style and the face by their null embeddings.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from facestudio.data.dataset import ReconstructionDataset
from facestudio.errors import FaceStudioError
from facestudio.model import latent_space
from facestudio.model.multi_identity_attention import concat_identity_tokens, unet_levels
from facestudio.pipeline import FaceStudioPipeline
from facestudio.training.config import TrainConfig, ValidationConfig
from facestudio.training.identity_loss import IdentityLoss, IdentityLossSettings, select_samples
from facestudio.training.latent_cache import batch_latents, stored_latents
from facestudio.training.log import append_csv
from facestudio.training.lora import add_lora
from facestudio.training.paired_identity import SamePersonPhotos
from facestudio.training.pairs import pair_routing, partners, side_by_side
from facestudio.training.stylize import StylisedTwins

PREDICTION_TYPES = ("epsilon", "v_prediction")
"""What the U-Net may be trained to predict; the scheduler's `prediction_type` says which."""


class Frozen:
    """Parts an objective uses without training them: no gradients, eval mode, not parameters
    of the objective (so neither optimised nor saved in checkpoints)."""

    def __init__(self, **parts: nn.Module | None) -> None:
        self.parts = {name: part for name, part in parts.items() if part is not None}
        for part in self.parts.values():
            part.requires_grad_(False).eval()

    def __getattr__(self, name: str) -> nn.Module:
        try:
            return self.__dict__["parts"][name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device: torch.device | str) -> None:
        for part in self.parts.values():
            part.to(device)


class Objective(nn.Module):
    """The trained parts of a pipeline and their loss, for one config `train.target`.

    Subclasses set `target` (registering the class under it) and implement `__init__`
    (take the trained parts from the pipeline as submodules) and `loss`; the other hooks have
    defaults that do nothing.
    """

    target: ClassVar[str] = ""
    _by_target: ClassVar[dict[str, type[Objective]]] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.target:
            Objective._by_target[cls.target] = cls

    @classmethod
    def lookup(cls, target: str) -> type[Objective]:
        """The objective class of a config's `train.target`."""
        if target not in cls._by_target:
            known = ", ".join(repr(name) for name in cls._by_target)
            raise FaceStudioError(
                f"train.target {target!r} is not an objective; use one of {known}"
            )
        return cls._by_target[target]

    @classmethod
    def build(cls, pipeline: FaceStudioPipeline, config: TrainConfig) -> Objective:
        """The objective `config` names, over `pipeline`'s parts."""
        return cls.lookup(config.train.target)(pipeline, config)

    @classmethod
    def check(cls, config: TrainConfig) -> None:
        """Refuse a config this objective cannot train, before anything is built or written."""

    @classmethod
    def check_data(cls, pipeline: FaceStudioPipeline, dataset: ReconstructionDataset) -> None:
        """Refuse data the pipeline cannot train on (before anything is written)."""
        dataset.require_face_dim(pipeline.guidance.config.face_dim)
        if dataset.resolution % pipeline.vae_scale_factor:
            raise FaceStudioError(
                f"data resolution {dataset.resolution} must be a multiple of "
                f"{pipeline.vae_scale_factor}"
            )

    @classmethod
    def initialize(
        cls, pipeline: FaceStudioPipeline, config: TrainConfig, dataset: ReconstructionDataset
    ) -> None:
        """Changes to a new run's starting pipeline, made once before it is saved."""

    def setup(
        self,
        dataset: ReconstructionDataset,
        device: torch.device,
        folder: Path | None = None,
        main: bool = True,
    ) -> None:
        """Once before the first step, on every process: frozen parts to `device`, caches
        (kept in the run `folder` by the `main` process, when given)."""

    def forward(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        # Under data parallelism gradients are synchronised only through forward.
        return self.loss(batch, generator)

    def loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        """The batch's scalar loss; every random draw from `generator` (exact resume)."""
        raise NotImplementedError

    def validate(
        self, pipeline: FaceStudioPipeline, dataset: ReconstructionDataset, at: Validation
    ) -> None:
        """Write what shows progress into `at.folder` (main process, eval mode, EMA weights)."""

    def finalize(self, pipeline: FaceStudioPipeline) -> None:
        """Last changes to `pipeline`, holding the trained weights, before it is exported."""


@dataclass
class Validation:
    """Where and how one validation writes: `settings` from the config's [validation]."""

    settings: ValidationConfig
    step: int
    folder: Path

    def image_path(self) -> Path:
        return self.folder / f"step-{self.step:08d}.png"


@dataclass
class Denoising:
    """One noise prediction of a batch: what a diffusion loss is computed from."""

    latents: torch.Tensor  # (B, C, h, w) clean
    noise: torch.Tensor
    noisy: torch.Tensor
    timesteps: torch.Tensor  # (B,)
    alphas: torch.Tensor  # ᾱ_t, (B, 1, 1, 1)
    predicted: torch.Tensor  # the U-Net's output: ε, or v with `prediction_type` v_prediction
    face_given: torch.Tensor  # (B,) bool: the identity input was not dropped
    partner: torch.Tensor | None = None  # (B,) for two-person samples (training/pairs.py)
    prediction_type: str = "epsilon"

    def target(self) -> torch.Tensor:
        """What the U-Net should have predicted: ε, or v = √ᾱ·ε − √(1−ᾱ)·x₀."""
        if self.prediction_type == "v_prediction":
            return self.alphas.sqrt() * self.noise - (1 - self.alphas).sqrt() * self.latents
        return self.noise

    def predicted_latents(self) -> torch.Tensor:
        """The clean latents the prediction implies (x̂₀)."""
        if self.prediction_type == "v_prediction":
            return self.alphas.sqrt() * self.noisy - (1 - self.alphas).sqrt() * self.predicted
        return (self.noisy - (1 - self.alphas).sqrt() * self.predicted) / self.alphas.sqrt()

    def min_snr_weights(self, gamma: float) -> torch.Tensor:
        """(B,) Min-SNR-γ loss weights: min(SNR, γ)/SNR for ε, min(SNR, γ)/(SNR + 1) for v
        (the same weighting of the x₀ error, expressed for each target)."""
        a = self.alphas.flatten().float()
        snr = a / (1 - a)
        denominator = snr + 1 if self.prediction_type == "v_prediction" else snr
        return snr.clamp(max=gamma) / denominator


class Reconstruction(Objective):
    """The guidance Linear and the U-Net (or LoRA adapters on it), and the style encoder when
    `train_style_encoder`, by denoising the photo from its masked copy and its face."""

    target = "diffusion"

    def __init__(self, pipeline: FaceStudioPipeline, config: TrainConfig) -> None:
        super().__init__()
        opt = config.train
        self.lora = opt.trainable == "lora"
        if self.lora:
            add_lora(pipeline.unet, opt.lora_rank)
        if opt.gradient_checkpointing:
            pipeline.unet.enable_gradient_checkpointing()
        self.unet = pipeline.unet
        self.guidance = pipeline.guidance
        self.style_encoder = pipeline.style_encoder if opt.train_style_encoder else None
        self.frozen = Frozen(
            vae=pipeline.vae,
            style_encoder=None if opt.train_style_encoder else pipeline.style_encoder,
        )
        self.alphas = pipeline.scheduler.alphas_cumprod.clone()  # the schedule it samples with
        self.prediction_type = pipeline.scheduler.config.prediction_type
        self.style_dropout, self.face_dropout = opt.style_dropout, opt.face_dropout
        self.snr_gamma, self.face_loss_weight = opt.snr_gamma, opt.face_loss_weight
        self.cache_latents = opt.cache_latents
        self.latent_cache: torch.Tensor | None = None
        self.identity = _identity_loss(opt)
        self.pair_probability = opt.pair_probability
        self.paired_identity_probability = opt.paired_identity_probability
        self.same_person: SamePersonPhotos | None = None
        self.stylize_probability = opt.stylize_probability
        self.twins: StylisedTwins | None = None

    @classmethod
    def check(cls, config: TrainConfig) -> None:
        if config.train.trainable == "lora" and importlib.util.find_spec("peft") is None:
            raise FaceStudioError("train.trainable = 'lora' needs peft; run: pip install peft")
        if config.train.pair_probability > 0 and config.train.batch_size < 2:
            raise FaceStudioError(
                "train.pair_probability > 0 composes two portraits of a batch; set "
                "train.batch_size to 2 or more"
            )

    @classmethod
    def check_data(cls, pipeline: FaceStudioPipeline, dataset: ReconstructionDataset) -> None:
        if pipeline.style_encoder is None:
            raise FaceStudioError("training by reconstruction needs a style encoder in the model")
        prediction = pipeline.scheduler.config.get("prediction_type", "epsilon")
        if prediction not in PREDICTION_TYPES:
            raise FaceStudioError(
                f"the model's scheduler predicts {prediction!r}; training supports "
                f"{', '.join(PREDICTION_TYPES)} (set scheduler/scheduler_config.json)"
            )
        super().check_data(pipeline, dataset)

    @classmethod
    def initialize(
        cls, pipeline: FaceStudioPipeline, config: TrainConfig, dataset: ReconstructionDataset
    ) -> None:
        """Set the guidance's face statistics from the data, unless it already has some."""
        if config.train.standardize_face and not pipeline.guidance.has_face_statistics:
            pipeline.guidance.set_face_statistics(*dataset.face_statistics())

    def setup(
        self,
        dataset: ReconstructionDataset,
        device: torch.device,
        folder: Path | None = None,
        main: bool = True,
    ) -> None:
        self.frozen.to(device)
        if self.cache_latents:  # each process holds the whole table: the VAE is frozen
            self.latent_cache = stored_latents(self.frozen.vae, dataset, folder, main)
        if self.paired_identity_probability > 0:
            self.same_person = SamePersonPhotos(*dataset.identities())
            print(f"paired identity: {self.same_person.paired_samples} samples have another photo")
        if self.stylize_probability > 0:
            self.twins = StylisedTwins(self.frozen.vae, dataset, folder, main)

    def loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        if self.same_person is not None:
            faces = self.same_person.faces(
                batch["index"], batch["face"], self.paired_identity_probability, generator
            )
            batch = {**batch, "face": faces}
        if self.twins is not None:
            latents, style = self.twins.apply(
                batch, self.latents(batch), self.stylize_probability, generator
            )
            batch = {**batch, "latents": latents, "style_pixels": style}
        partner = self.draw_partners(batch, generator)
        denoised = self.denoise(batch, generator, self.style_dropout, self.face_dropout, partner)
        loss = self.weighted_error(denoised, batch)
        if self.identity is not None and partner is None:  # landmarks are one person's
            loss = loss + self.identity.settings.weight * self.identity_error(denoised, batch)
        return loss

    def draw_partners(self, batch: dict, generator: torch.Generator) -> torch.Tensor | None:
        """With `pair_probability`, this step's samples become two-person ones: each sample's
        partner (training/pairs.py); None for a one-person step. Draws nothing at 0."""
        if self.pair_probability == 0:
            return None
        if torch.rand(1, generator=generator).item() >= self.pair_probability:
            return None
        return partners(batch["face"].shape[0], generator)

    def identity_error(self, denoised: Denoising, batch: dict) -> torch.Tensor:
        """The identity loss of the clean estimates of the least-noised samples that show a
        face and were given its identity, decoded by the frozen VAE (gradients reach the U-Net
        through it)."""
        usable = batch["has_face"].to(denoised.timesteps.device) & denoised.face_given
        index = select_samples(denoised.timesteps, usable, self.identity.settings)
        if len(index) == 0:
            return denoised.predicted.sum() * 0.0  # no face to judge: no change, same graph
        images = latent_space.decode(self.frozen.vae, denoised.predicted_latents()[index])
        return self.identity(images, batch, index)

    def latents(self, batch: dict) -> torch.Tensor:
        """The batch's clean latents (given, from the cache when there is one, or encoded)."""
        if "latents" in batch:
            return batch["latents"]
        with torch.no_grad():
            return batch_latents(self.frozen.vae, batch, self.latent_cache)

    def style_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.style_encoder is not None:
            return self.style_encoder.embed_pixels(pixels)
        with torch.no_grad():
            return self.frozen.style_encoder.embed_pixels(pixels)

    def denoise(
        self,
        batch: dict,
        generator: torch.Generator,
        style_dropout: float | None = None,
        face_dropout: float | None = None,
        partner: torch.Tensor | None = None,
    ) -> Denoising:
        """Noise the batch's latents at random timesteps and predict the noise, the style and
        face inputs dropped to their null embeddings with the given probabilities. With a
        `partner`, each sample is composed with its partner's as a two-person sample and
        denoised with the identity routing on (training/pairs.py)."""
        style_dropout = self.style_dropout if style_dropout is None else style_dropout
        face_dropout = self.face_dropout if face_dropout is None else face_dropout
        latents, pixels = self.latents(batch), batch["style_pixels"]
        if partner is not None:
            latents, pixels = side_by_side(latents, partner), side_by_side(pixels, partner)
        style = self.style_embeddings(pixels)
        size, device = latents.shape[0], latents.device
        noise = torch.randn(latents.shape, generator=generator).to(latents)
        timesteps = torch.randint(0, len(self.alphas), (size,), generator=generator).to(device)
        drop_style = (torch.rand(size, generator=generator) < style_dropout).to(device)
        drop_face = (torch.rand(size, generator=generator) < face_dropout).to(device)
        alphas = self.alphas.to(device)[timesteps].view(-1, 1, 1, 1)
        noisy = alphas.sqrt() * latents + (1 - alphas).sqrt() * noise
        style = _dropped(style, drop_style, self.guidance.null_style)
        faces = _dropped(batch["face"], drop_face, self.guidance.null_face)
        tokens, attention_kwargs = self.guidance.tokens(style, faces), None
        if partner is not None:  # each half attends to its own person's tokens
            other = self.guidance.tokens(style, faces[partner.to(faces.device)])
            tokens, owner = concat_identity_tokens([tokens, other])
            routing = pair_routing(owner, latents.shape[-2:], unet_levels(self.unet))
            attention_kwargs = routing.to(device).attention_kwargs()
        predicted = self.unet(
            noisy,
            timesteps,
            encoder_hidden_states=tokens.to(noisy.dtype),
            cross_attention_kwargs=attention_kwargs,
        ).sample
        return Denoising(
            latents,
            noise,
            noisy,
            timesteps,
            alphas,
            predicted,
            ~drop_face,
            partner,
            self.prediction_type,
        )

    def weighted_error(self, denoised: Denoising, batch: dict) -> torch.Tensor:
        """MSE to the target (ε or v), `face_loss_weight` times inside the face box, Min-SNR
        weighted when set."""
        error = F.mse_loss(denoised.predicted.float(), denoised.target().float(), reduction="none")
        if self.face_loss_weight != 1.0:
            weights = face_box_weights(
                batch["face_box"],
                denoised.latents.shape[-2:],
                batch["image"].shape[-1],
                self.face_loss_weight,
            )
            if denoised.partner is not None:
                weights = side_by_side(weights, denoised.partner)
            error = error * weights.to(error.device)
        per_sample = error.mean((1, 2, 3))
        if self.snr_gamma > 0:
            per_sample = per_sample * denoised.min_snr_weights(self.snr_gamma).to(per_sample)
        return per_sample.mean()

    @torch.no_grad()
    def identity_gap(self, batch: dict, seed: int = 0) -> tuple[float, float]:
        """How much the model uses its identity input: its loss on `batch` with each sample's
        own face embedding, and with the faces rolled by one (same noise, timesteps; no
        dropout). `(swapped − own) / swapped` is 0 for a model that ignores the identity; it
        shows identity being learned long before a recogniser can see it in generated images.
        """
        losses = []
        for faces in (batch["face"], batch["face"].roll(1, 0)):
            generator = torch.Generator().manual_seed(seed)
            denoised = self.denoise({**batch, "face": faces}, generator, 0.0, 0.0)
            losses.append(self.weighted_error(denoised, batch).item())
        return losses[0], losses[1]

    def validate(
        self, pipeline: FaceStudioPipeline, dataset: ReconstructionDataset, at: Validation
    ) -> None:
        """Rows of photo | style input | generated for fixed identities and seeds, and the
        identity gap on a spread of samples (identity_gap.csv)."""
        generated_grid(pipeline, dataset, at.settings).save(at.image_path())
        spread = range(0, len(dataset), max(1, len(dataset) // 128))
        faces = [s for s in map(dataset.__getitem__, spread) if bool(s["has_face"])]
        if len(faces) < 2:
            return
        device = next(self.parameters()).device
        batch = {
            key: value.to(device) if torch.is_tensor(value) else value
            for key, value in torch.utils.data.default_collate(faces).items()
        }
        own, swapped = self.identity_gap(batch)
        gap = (swapped - own) / swapped
        append_csv(
            at.folder / "identity_gap.csv",
            ["step", "loss_own_face", "loss_swapped_face", "relative_gap"],
            [at.step, f"{own:.6f}", f"{swapped:.6f}", f"{gap:.4f}"],
        )
        print(f"step {at.step}: identity gap {gap:+.2%}")

    def finalize(self, pipeline: FaceStudioPipeline) -> None:
        if self.style_encoder is not None:
            # The style encoder only ever saw style inputs with the face masked out.
            pipeline.register_to_config(style_faces="mask")
        if self.lora:
            pipeline.unet.fuse_lora()
            pipeline.unet.unload_lora()


class Autoencoder(Objective):
    """The first stage of a model trained from scratch: the VAE, by reconstruction. L1 between
    the photo and its reconstruction from a sampled latent, plus `kl_weight`·KL, which keeps
    the latent space smooth (no perceptual or adversarial loss)."""

    target = "autoencoder"

    def __init__(self, pipeline: FaceStudioPipeline, config: TrainConfig) -> None:
        super().__init__()
        self.vae = pipeline.vae
        self.kl_weight = config.train.kl_weight
        self.data = config.data

    def loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        images = batch["image"].to(self.vae.dtype)
        posterior = self.vae.encode(images).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=generator).to(posterior.mean)
        reconstruction = self.vae.decode(posterior.mean + posterior.std * noise).sample
        l1 = F.l1_loss(reconstruction.float(), images.float())
        return l1 + self.kl_weight * posterior.kl().mean()

    @torch.no_grad()
    def validate(
        self, pipeline: FaceStudioPipeline, dataset: ReconstructionDataset, at: Validation
    ) -> None:
        """Rows of photo | reconstruction (from the latent mean) for the first samples."""
        count = min(at.settings.samples, len(dataset))
        vae = self.vae
        images = torch.stack([dataset[i]["image"] for i in range(count)]).to(vae.device, vae.dtype)
        rebuilt = vae.decode(vae.encode(images).latent_dist.mean).sample
        pairs = torch.cat([images, rebuilt], dim=3).clamp(-1, 1)
        rows = ((pairs.float().permute(0, 2, 3, 1).cpu().numpy() + 1) * 127.5).astype(np.uint8)
        Image.fromarray(np.concatenate(list(rows), axis=0)).save(at.image_path())

    @torch.no_grad()
    def finalize(self, pipeline: FaceStudioPipeline) -> None:
        """Set the latent scaling factor to 1 / latent std (of up to 256 training images), so
        the U-Net trained next sees latents of unit variance (as SD's 0.18215 for its VAE)."""
        dataset = ReconstructionDataset(self.data.path, self.data.resolution)
        images = torch.stack([dataset[i]["image"] for i in range(min(len(dataset), 256))])
        latents = torch.cat([self.vae.encode(b).latent_dist.mean for b in images.split(32)])
        pipeline.vae.register_to_config(scaling_factor=float(1.0 / latents.std()))


class Decoder(Autoencoder):
    """A sharper decoder for a fixed latent space: the encoder is frozen and the decoder learns
    to rebuild photos from the posterior means (the latents a U-Net trained on this VAE
    produces), L1 counting `face_loss_weight` times inside the face box. The latent space and
    its scaling factor stay, so a U-Net trained on them stays valid."""

    target = "decoder"

    def __init__(self, pipeline: FaceStudioPipeline, config: TrainConfig) -> None:
        super().__init__(pipeline, config)
        for part in (self.vae.encoder, self.vae.quant_conv):
            if part is not None:
                part.requires_grad_(False)
        self.face_loss_weight = config.train.face_loss_weight
        self.cache_latents = config.train.cache_latents
        self.latent_cache: torch.Tensor | None = None
        self.identity = _identity_loss(config.train)

    def setup(
        self,
        dataset: ReconstructionDataset,
        device: torch.device,
        folder: Path | None = None,
        main: bool = True,
    ) -> None:
        if self.cache_latents:
            self.vae.to(device)
            self.latent_cache = stored_latents(self.vae, dataset, folder, main)

    def loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        images = batch["image"].to(self.vae.dtype)
        with torch.no_grad():
            latents = batch_latents(self.vae, batch, self.latent_cache)
        reconstruction = latent_space.decode(self.vae, latents)
        error = (reconstruction.float() - images.float()).abs()
        if self.face_loss_weight != 1.0:
            error = error * face_box_weights(
                batch["face_box"], error.shape[-2:], images.shape[-1], self.face_loss_weight
            ).to(error.device)
        if self.identity is None:
            return error.mean()
        # Every face the batch has (up to identity_max_samples): a decoder sees no noise level.
        unnoised = torch.zeros(len(images), dtype=torch.long, device=images.device)
        index = select_samples(
            unnoised, batch["has_face"].to(images.device), self.identity.settings
        )
        identity = self.identity(reconstruction[index], batch, index)
        return error.mean() + self.identity.settings.weight * identity

    def finalize(self, pipeline: FaceStudioPipeline) -> None:
        """Nothing: the latent scaling factor stays the one the U-Net was trained with."""


@torch.no_grad()
def generated_grid(
    pipeline: FaceStudioPipeline, dataset: ReconstructionDataset, settings: ValidationConfig
) -> Image.Image:
    """Rows of photo | style input | generated, for the first samples' identities and styles
    with fixed seeds (`settings.seed` + row)."""
    pipeline.set_progress_bar_config(disable=True)
    size = dataset.resolution
    count = min(settings.samples, len(dataset))
    grid = Image.new("RGB", (3 * size, count * size))
    for i in range(count):
        sample = dataset[i]
        style = _picture(sample["style_pixels"].permute(1, 2, 0).numpy() * 255)
        photo = _picture((sample["image"].permute(1, 2, 0).numpy() + 1) * 127.5)
        generated = pipeline(
            identities=[sample["face"].numpy()] if bool(sample["has_face"]) else None,
            style_image=style,
            num_inference_steps=settings.steps,
            seed=settings.seed + i,
            height=size,
            width=size,
        ).images[0]
        for column, picture in enumerate([photo, style, generated]):
            grid.paste(picture, (column * size, i * size))
    return grid


def _identity_loss(options) -> IdentityLoss | None:
    """The identity loss a config's `[train]` asks for (None when its weight is 0)."""
    settings = IdentityLossSettings.from_options(options)
    return IdentityLoss(settings) if settings.enabled else None


def _picture(values: np.ndarray) -> Image.Image:
    """(H, W, 3) values in [0, 255] -> an 8-bit image."""
    return Image.fromarray(values.astype(np.uint8))


def _dropped(values: torch.Tensor, drop: torch.Tensor, null: torch.Tensor) -> torch.Tensor:
    """`values` with the rows where `drop` is true replaced by the null embedding."""
    return torch.where(drop[:, None], null.to(values.dtype).expand_as(values), values)


def face_box_weights(
    boxes: torch.Tensor, size: tuple[int, int], image_size: int, weight: float
) -> torch.Tensor:
    """(B, 1, h, w): `weight` in the cells of an h×w grid inside each face box (x0, y0, x1, y1,
    in pixels of an `image_size` image; zeros = no face), 1 elsewhere."""
    height, width = size
    box = boxes.float() * (width / image_size)
    rows = torch.arange(height, device=box.device).float() + 0.5
    cols = torch.arange(width, device=box.device).float() + 0.5
    inside_rows = (rows[None] >= box[:, 1:2]) & (rows[None] <= box[:, 3:4])
    inside_cols = (cols[None] >= box[:, 0:1]) & (cols[None] <= box[:, 2:3])
    inside = inside_rows[:, :, None] & inside_cols[:, None, :]
    return (1.0 + (weight - 1.0) * inside.float())[:, None]
