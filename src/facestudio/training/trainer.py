"""Training by reconstruction (the paper's recipe) with accelerate.

Each sample is a face-centred photo; its style input is the same photo with the face masked
out and its identity input the face's embedding. The U-Net learns to denoise the photo from
both: it must take the face from the identity. Trainable: the guidance Linear and the whole
U-Net (or LoRA adapters). DDPM, 1,000 steps, ε-prediction; classifier-free-guidance dropout
replaces the style (p = 0.64) and the face (p = 0.1) by their null embeddings.

Randomness of each step (noise, timesteps, dropout) comes from a generator seeded by (seed,
step, micro-batch, process), and the sample order is a seeded permutation per epoch, so a
resumed run repeats exactly what an uninterrupted one would have done.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facestudio.errors import FaceStudioError
from facestudio.outputs import write_bytes_atomic
from facestudio.training import checkpoints
from facestudio.training.config import TrainConfig
from facestudio.training.dataset import ReconstructionDataset


class TrainableModel(nn.Module):
    """The trained parts as one module, so accelerate prepares (and saves) them together.

    `forward` computes the whole reconstruction loss of a batch: under data parallelism,
    gradients are synchronised only through `forward`. Frozen parts (VAE, and the style encoder
    unless it trains) are kept out of the module's parameters.
    """

    def __init__(
        self,
        unet: nn.Module,
        guidance: nn.Module,
        style_encoder: nn.Module | None = None,
        frozen: dict | None = None,
        alphas: torch.Tensor | None = None,
        style_dropout: float = 0.0,
        face_dropout: float = 0.0,
        snr_gamma: float = 0.0,
        face_loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.unet = unet
        self.guidance = guidance
        self.style_encoder = style_encoder  # trained too when given (no pretrained CLIP at hand)
        self.frozen = frozen or {}  # a plain dict: not registered, not saved, not optimised
        self.alphas = alphas
        self.style_dropout = style_dropout
        self.face_dropout = face_dropout
        self.snr_gamma = snr_gamma
        self.face_loss_weight = face_loss_weight

    def forward(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        vae = self.frozen["vae"]
        with torch.no_grad():
            latents = batch_latents(vae, batch, self.frozen.get("latents"))
            if self.style_encoder is None:
                style = self.frozen["style_encoder"].embed_pixels(batch["style_pixels"])
        if self.style_encoder is not None:
            style = self.style_encoder.embed_pixels(batch["style_pixels"])
        size, device = latents.shape[0], latents.device
        noise = torch.randn(latents.shape, generator=generator).to(latents)
        timesteps = torch.randint(0, len(self.alphas), (size,), generator=generator).to(device)
        drop_style = (torch.rand(size, generator=generator) < self.style_dropout).to(device)
        drop_face = (torch.rand(size, generator=generator) < self.face_dropout).to(device)
        a = self.alphas.to(device)[timesteps].view(-1, 1, 1, 1)
        noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
        guidance = self.guidance
        style = torch.where(
            drop_style[:, None], guidance.null_style.to(style.dtype).expand_as(style), style
        )
        face = batch["face"]
        face = torch.where(
            drop_face[:, None], guidance.null_face.to(face.dtype).expand_as(face), face
        )
        tokens = guidance.tokens(style, face)
        predicted = self.unet(noisy, timesteps, encoder_hidden_states=tokens.to(noisy.dtype)).sample
        error = F.mse_loss(predicted.float(), noise.float(), reduction="none")
        if self.face_loss_weight != 1.0:
            error = error * face_box_weights(
                batch["face_box"],
                latents.shape[-2:],
                batch["image"].shape[-1],
                self.face_loss_weight,
            ).to(error.device)
        per_sample = error.mean((1, 2, 3))
        if self.snr_gamma > 0:
            snr = a.flatten().float() / (1 - a.flatten().float())
            per_sample = per_sample * snr.clamp(max=self.snr_gamma) / snr
        return per_sample.mean()


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


@torch.no_grad()
def identity_gap(model: TrainableModel, batch: dict, seed: int = 0) -> tuple[float, float]:
    """How much `model` uses its identity input: its loss on `batch` with each sample's own face
    embedding, and with the faces rolled by one (same noise, timesteps; no dropout).

    `(swapped − own) / swapped` is 0 for a model that ignores the identity. It shows identity
    being learned long before a recogniser can see it in generated images.
    """
    dropouts = model.style_dropout, model.face_dropout
    model.style_dropout = model.face_dropout = 0.0
    try:
        own = model(batch, torch.Generator().manual_seed(seed)).item()
        rolled = {**batch, "face": batch["face"].roll(1, 0)}
        swapped = model(rolled, torch.Generator().manual_seed(seed)).item()
    finally:
        model.style_dropout, model.face_dropout = dropouts
    return own, swapped


def encode_latents(vae: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The U-Net's training target: the VAE posterior mean, scaled, of images in [-1, 1]."""
    images = images.to(vae.device, vae.dtype)
    return vae.encode(images).latent_dist.mean * vae.config.scaling_factor


def batch_latents(vae: nn.Module, batch: dict, cache: torch.Tensor | None) -> torch.Tensor:
    """A batch's latents: looked up in `cache` (`encode_dataset`) by sample index, or encoded."""
    if cache is not None:
        return cache[batch["index"].cpu()].to(batch["image"].device)
    return encode_latents(vae, batch["image"])


@torch.no_grad()
def encode_dataset(vae: nn.Module, dataset, batch_size: int = 64) -> torch.Tensor:
    """Every training image's latent (`encode_latents`), in dataset order."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    return torch.cat([encode_latents(vae, batch["image"]).cpu() for batch in loader])


class AutoencoderModel(nn.Module):
    """The first stage of a model trained from scratch: the VAE, by reconstruction.

    Loss: L1 between the photo and its reconstruction from a sampled latent, plus a small KL
    term that keeps the latent space smooth (no perceptual or adversarial loss).
    `decoder_only`: the encoder is frozen and the decoder learns to rebuild photos from the
    posterior means, the latents a U-Net trained on this VAE produces; the latent space stays
    the same, so such a U-Net stays valid (as Stable Diffusion's fine-tuned decoders). The L1
    counts `face_loss_weight` times inside the face box.
    """

    def __init__(
        self,
        vae: nn.Module,
        kl_weight: float,
        decoder_only: bool = False,
        face_loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.vae = vae
        self.kl_weight = kl_weight
        self.decoder_only = decoder_only
        self.face_loss_weight = face_loss_weight
        self.frozen: dict = {}  # a plain dict: the optional latent cache, never saved
        if decoder_only:
            for part in (vae.encoder, vae.quant_conv):
                if part is not None:
                    part.requires_grad_(False)

    def forward(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        images = batch["image"].to(self.vae.dtype)
        if self.decoder_only:
            with torch.no_grad():
                latents = batch_latents(self.vae, batch, self.frozen.get("latents"))
            reconstruction = self.vae.decode(latents / self.vae.config.scaling_factor).sample
            error = (reconstruction.float() - images.float()).abs()
            if self.face_loss_weight != 1.0:
                error = error * face_box_weights(
                    batch["face_box"], error.shape[-2:], images.shape[-1], self.face_loss_weight
                ).to(error.device)
            return error.mean()
        posterior = self.vae.encode(images).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=generator).to(posterior.mean)
        reconstruction = self.vae.decode(posterior.mean + posterior.std * noise).sample
        return (
            F.l1_loss(reconstruction.float(), images.float())
            + self.kl_weight * posterior.kl().mean()
        )


@dataclass
class TrainResult:
    step: int
    final_loss: float
    first_loss: float
    checkpoint: Path | None
    seconds: float


def initial_pipeline(config: TrainConfig):
    """The pipeline training starts from (frozen parts included), as the config says."""
    from facestudio.model.components import ComponentSizes, pretrained_components, random_components
    from facestudio.pipeline import FaceStudioPipeline

    model = config.model
    if model.init == "random":
        preset = ComponentSizes.tiny if model.preset == "tiny" else ComponentSizes.sd15
        sizes = preset(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in model.sizes.items()}
        )
        return FaceStudioPipeline(**random_components(sizes, seed=model.seed))
    if model.init == "pretrained":
        parts = pretrained_components(
            model.base, model.clip_models or None, model.prior or None, num_tokens=model.num_tokens
        )
        return FaceStudioPipeline(**parts)
    return FaceStudioPipeline.from_pretrained(model.pipeline)


def add_lora(unet: nn.Module, rank: int) -> None:
    try:
        from peft import LoraConfig
    except ImportError:
        raise FaceStudioError(
            "train.trainable = 'lora' needs peft; run: pip install peft"
        ) from None
    unet.requires_grad_(False)
    unet.add_adapter(
        LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights="gaussian",
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
    )


def train(
    config: TrainConfig,
    on_step: Callable[[int, float], None] | None = None,
    cpu: bool | None = None,
) -> TrainResult:
    """Train (or resume) as `config` says; checkpoints, logs and validation go to output_dir."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration
    from diffusers import DDPMScheduler

    from facestudio.pipeline import FaceStudioPipeline

    opt = config.train
    cpu = not torch.cuda.is_available() if cpu is None else cpu
    accelerator = Accelerator(
        mixed_precision=opt.mixed_precision,
        gradient_accumulation_steps=opt.gradient_accumulation_steps,
        cpu=cpu,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    out = Path(config.output_dir)
    checkpoint_dir = out / "checkpoints"
    start_folder = out / "initial_pipeline"
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(
            out / "train_config.json", json.dumps(config.to_dict(), indent=2).encode()
        )
        if not (start_folder / "model_index.json").is_file():
            start = initial_pipeline(config)
            if opt.target == "diffusion" and opt.standardize_face:
                _standardize_face(start.guidance, config.data)
            start.save_pretrained(start_folder)
    accelerator.wait_for_everyone()
    pipeline = FaceStudioPipeline.from_pretrained(start_folder)
    unet, guidance, vae, style_encoder = (
        pipeline.unet,
        pipeline.guidance,
        pipeline.vae,
        pipeline.style_encoder,
    )
    if style_encoder is None:
        raise FaceStudioError("training by reconstruction needs a style encoder in the model")
    noise_scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )
    if opt.target in ("autoencoder", "decoder"):
        model = AutoencoderModel(
            vae,
            opt.kl_weight,
            decoder_only=opt.target == "decoder",
            face_loss_weight=opt.face_loss_weight if opt.target == "decoder" else 1.0,
        )
    else:
        vae.requires_grad_(False).eval().to(accelerator.device)
        if not opt.train_style_encoder:
            style_encoder.requires_grad_(False).eval().to(accelerator.device)
        if opt.trainable == "lora":
            add_lora(unet, opt.lora_rank)
        if opt.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        model = TrainableModel(
            unet,
            guidance,
            style_encoder if opt.train_style_encoder else None,
            frozen={"vae": vae, "style_encoder": style_encoder},
            alphas=noise_scheduler.alphas_cumprod,
            style_dropout=opt.style_dropout,
            face_dropout=opt.face_dropout,
            snr_gamma=opt.snr_gamma,
            face_loss_weight=opt.face_loss_weight,
        )
    model.train()

    dataset = ReconstructionDataset(
        config.data.path, config.data.resolution, guidance.config.face_dim
    )
    if dataset.resolution % pipeline.vae_scale_factor:
        raise FaceStudioError(
            f"data resolution {dataset.resolution} must be a multiple of {pipeline.vae_scale_factor}"
        )
    if opt.cache_latents and opt.target in ("diffusion", "decoder"):
        # Each process encodes the whole set: the VAE is frozen, so every rank gets the same table.
        # On the accelerator, which the decoder target's VAE only reaches in prepare() below.
        vae.to(accelerator.device)
        model.frozen["latents"] = encode_dataset(vae, dataset)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=opt.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=config.data.num_workers,
        generator=torch.Generator().manual_seed(opt.seed),
    )
    if len(loader) == 0:
        raise FaceStudioError(
            f"{len(dataset)} samples are fewer than one batch of {opt.batch_size}"
        )
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(parameters, opt)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    ema = _ema(parameters, opt)

    step = 0
    latest = checkpoints.latest_checkpoint(checkpoint_dir)
    if latest is not None:
        accelerator.load_state(str(latest))
        step = json.loads((latest / "trainer_state.json").read_text())["step"]
        if ema is not None and (latest / "ema.safetensors").is_file():
            _load_ema(ema, latest / "ema.safetensors")
        accelerator.print(f"resumed from {latest.name} at step {step}")
    steps_per_epoch = len(loader) // opt.gradient_accumulation_steps
    log = _Log(out, config, accelerator.is_main_process)
    first_loss = last_loss = math.nan
    started = time.perf_counter()
    interval_loss, interval_count, interval_start = 0.0, 0, time.perf_counter()
    saved: Path | None = latest

    while step < opt.max_steps:
        epoch = step // steps_per_epoch
        loader.set_epoch(epoch)
        skip = (step % steps_per_epoch) * opt.gradient_accumulation_steps
        batches = accelerator.skip_first_batches(loader, skip) if skip else loader
        micro = 0
        for batch in batches:
            with accelerator.accumulate(model):
                generator = torch.Generator().manual_seed(
                    _step_seed(opt.seed, step, micro, accelerator.process_index)
                )
                with accelerator.autocast():
                    loss = model(batch, generator)
                accelerator.backward(loss)
                if accelerator.sync_gradients and opt.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(parameters, opt.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            micro += 1
            interval_loss += loss.detach().item()
            interval_count += 1
            if not accelerator.sync_gradients:
                continue
            step += 1
            micro = 0
            if ema is not None:
                ema.step(parameters)
            last_loss = accelerator.gather(loss.detach()[None]).mean().item()
            first_loss = last_loss if math.isnan(first_loss) else first_loss
            if step % config.logging.every_steps == 0 or step == opt.max_steps:
                seconds = time.perf_counter() - interval_start
                samples = interval_count * opt.batch_size * accelerator.num_processes
                log.write(
                    step,
                    epoch,
                    interval_loss / interval_count,
                    samples / seconds,
                    time.perf_counter() - started,
                )
                interval_loss, interval_count, interval_start = 0.0, 0, time.perf_counter()
            if step % config.checkpoints.every_steps == 0 or step == opt.max_steps:
                saved = _save(accelerator, checkpoint_dir, step, ema, config.checkpoints.keep_last)
            if config.validation.every_steps and (
                step % config.validation.every_steps == 0 or step == opt.max_steps
            ):
                validate = _validate if opt.target == "diffusion" else _validate_autoencoder
                validate(accelerator, pipeline, model, ema, parameters, dataset, config, step, out)
            if on_step is not None:
                on_step(step, last_loss)
            if step >= opt.max_steps:
                break
    _write_rank_fingerprint(out, accelerator, model, step)
    log.close()
    return TrainResult(step, last_loss, first_loss, saved, time.perf_counter() - started)


def _standardize_face(guidance: nn.Module, data) -> None:
    """Set the guidance's face statistics from the training data, unless it already has some."""
    if guidance.has_face_statistics:
        return
    dataset = ReconstructionDataset(data.path, data.resolution, guidance.config.face_dim)
    guidance.set_face_statistics(*dataset.face_statistics())


def _step_seed(seed: int, step: int, micro: int, rank: int) -> int:
    digest = hashlib.sha256(f"{seed}/{step}/{micro}/{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def _optimizer(parameters, opt) -> torch.optim.Optimizer:
    if opt.use_8bit_adam:
        try:
            import bitsandbytes
        except ImportError:
            raise FaceStudioError(
                "train.use_8bit_adam needs bitsandbytes (and a GPU); run: pip install bitsandbytes"
            ) from None
        return bitsandbytes.optim.AdamW8bit(parameters, lr=opt.learning_rate)
    return torch.optim.AdamW(parameters, lr=opt.learning_rate, weight_decay=1e-2)


def _ema(parameters, opt):
    if not opt.use_ema:
        return None
    from diffusers.training_utils import EMAModel

    return EMAModel(parameters, decay=opt.ema_decay)


def _load_ema(ema, path: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    for i, shadow in enumerate(ema.shadow_params):
        shadow.data.copy_(tensors[f"p{i}"])


def _save(accelerator, folder: Path, step: int, ema, keep_last: int) -> Path:
    from safetensors.torch import save_file

    temporary = (
        checkpoints.temporary_folder(folder, step)
        if accelerator.is_main_process
        else folder / f".{checkpoints.checkpoint_name(step)}.tmp"
    )
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(temporary))
        # Steps draw no global randomness (see _step_seed), so the pickled RNG states
        # accelerate adds are not needed; dropping them leaves nothing to unpickle on resume.
        for pickled in temporary.glob("random_states_*.pkl"):
            pickled.unlink()
        if accelerator.is_main_process:
            if ema is not None:
                save_file(
                    {
                        f"p{i}": p.detach().contiguous().cpu()
                        for i, p in enumerate(ema.shadow_params)
                    },
                    str(temporary / "ema.safetensors"),
                )
            (temporary / "trainer_state.json").write_text(json.dumps({"step": step}))
    except OSError as error:
        raise checkpoints.save_failed(temporary, step, error) from None
    accelerator.wait_for_everyone()
    final = folder / checkpoints.checkpoint_name(step)
    if accelerator.is_main_process:
        final = checkpoints.publish(temporary, step, keep_last)
    accelerator.wait_for_everyone()
    return final


@torch.no_grad()
def _validate(accelerator, pipeline, model, ema, parameters, dataset, config, step, out) -> None:
    if not accelerator.is_main_process:
        return
    from PIL import Image

    validation = config.validation
    unwrapped = accelerator.unwrap_model(model)
    if ema is not None:
        ema.store(parameters)
        ema.copy_to(parameters)
    unwrapped.eval()
    try:
        pipeline.set_progress_bar_config(disable=True)
        rows = []
        for i in range(min(validation.samples, len(dataset))):
            sample = dataset[i]
            style = Image.fromarray(
                (sample["style_pixels"].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
            )
            original = Image.fromarray(
                ((sample["image"].permute(1, 2, 0).numpy() + 1) * 127.5).astype(np.uint8)
            )
            identities = [sample["face"].numpy()] if bool(sample["has_face"]) else None
            generated = pipeline(
                identities=identities,
                style_image=style,
                num_inference_steps=validation.steps,
                seed=validation.seed + i,
                height=dataset.resolution,
                width=dataset.resolution,
            ).images[0]
            rows.append([original, style, generated])
        size = dataset.resolution
        grid = Image.new("RGB", (3 * size, len(rows) * size))
        for r, row in enumerate(rows):
            for c, picture in enumerate(row):
                grid.paste(picture, (c * size, r * size))
        (out / "validation").mkdir(exist_ok=True)
        grid.save(out / "validation" / f"step-{step:08d}.png")
        _log_identity_gap(accelerator, unwrapped, dataset, step, out / "validation")
    finally:
        unwrapped.train()
        if ema is not None:
            ema.restore(parameters)


def _log_identity_gap(accelerator, model, dataset, step: int, folder: Path) -> None:
    """Append `identity_gap` on a fixed spread of samples (different people) to identity_gap.csv."""
    spread = range(0, len(dataset), max(1, len(dataset) // 128))
    samples = [sample for sample in map(dataset.__getitem__, spread) if bool(sample["has_face"])]
    if len(samples) < 2:
        return
    batch = {
        key: value.to(accelerator.device) if torch.is_tensor(value) else value
        for key, value in torch.utils.data.default_collate(samples).items()
    }
    own, swapped = identity_gap(model, batch)
    gap = (swapped - own) / swapped
    path = folder / "identity_gap.csv"
    fresh = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.writer(handle)
        if fresh:
            writer.writerow(["step", "loss_own_face", "loss_swapped_face", "relative_gap"])
        writer.writerow([step, f"{own:.6f}", f"{swapped:.6f}", f"{gap:.4f}"])
    accelerator.print(f"step {step}: identity gap {gap:+.2%}")


@torch.no_grad()
def _validate_autoencoder(
    accelerator, pipeline, model, ema, parameters, dataset, config, step, out
) -> None:
    """Rows of photo | reconstruction (from the latent mean) for the first samples."""
    if not accelerator.is_main_process:
        return
    from PIL import Image

    vae = accelerator.unwrap_model(model).vae
    if ema is not None:
        ema.store(parameters)
        ema.copy_to(parameters)
    vae.eval()
    try:
        count = min(config.validation.samples, len(dataset))
        images = torch.stack([dataset[i]["image"] for i in range(count)]).to(vae.device, vae.dtype)
        rebuilt = vae.decode(vae.encode(images).latent_dist.mean).sample
        pairs = torch.cat([images, rebuilt], dim=3).clamp(-1, 1)
        rows = ((pairs.float().permute(0, 2, 3, 1).cpu().numpy() + 1) * 127.5).astype(np.uint8)
        (out / "validation").mkdir(exist_ok=True)
        Image.fromarray(np.concatenate(list(rows), axis=0)).save(
            out / "validation" / f"step-{step:08d}.png"
        )
    finally:
        vae.train()
        if ema is not None:
            ema.restore(parameters)


def _write_rank_fingerprint(out: Path, accelerator, model, step: int) -> None:
    """Each process records a hash of its trained weights: replicas in sync have equal hashes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(accelerator.unwrap_model(model).state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    (out / "ranks").mkdir(exist_ok=True)
    (out / "ranks" / f"rank-{accelerator.process_index}.json").write_text(
        json.dumps({"step": step, "weights_sha256": digest.hexdigest()})
    )


class _Log:
    """Loss and throughput per logging interval: log.csv, and TensorBoard when chosen."""

    def __init__(self, out: Path, config: TrainConfig, active: bool) -> None:
        self.active = active
        self.writer = None
        if not active:
            return
        path = out / "log.csv"
        fresh = not path.exists()
        self.file = open(path, "a", newline="")  # noqa: SIM115 - open for the whole run
        self.csv = csv.writer(self.file)
        if fresh:
            self.csv.writerow(
                ["step", "epoch", "loss", "samples_per_s", "seconds", "peak_memory_mb"]
            )
        if config.logging.format == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise FaceStudioError(
                    "logging.format = 'tensorboard' needs tensorboard; run: pip install tensorboard"
                ) from None
            self.writer = SummaryWriter(str(out / "tensorboard"))

    def write(self, step, epoch, loss, samples_per_s, seconds) -> None:
        if not self.active:
            return
        import resource

        peak = (
            torch.cuda.max_memory_allocated() / 2**20
            if torch.cuda.is_available()
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        self.csv.writerow(
            [step, epoch, f"{loss:.6f}", f"{samples_per_s:.2f}", f"{seconds:.1f}", f"{peak:.0f}"]
        )
        self.file.flush()
        if self.writer is not None:
            self.writer.add_scalar("loss", loss, step)
            self.writer.add_scalar("samples_per_s", samples_per_s, step)

    def close(self) -> None:
        if self.active:
            self.file.close()
            if self.writer is not None:
                self.writer.close()
