"""`train()`: the objective a config names, trained with accelerate in its run folder.

Everything a run needs is checked before the first write: the configuration's values, the
objective, optional packages, the data, and that `output_dir` was started with the same model
settings. Then the starting pipeline is written once (`RunFolder.start`), every process loads
it, and the loop runs, resuming from the latest checkpoint.

Randomness of each step (noise, timesteps, dropout) comes from a generator seeded by (seed,
step, micro-batch, process), and the sample order is a seeded permutation per epoch, so a
resumed run repeats exactly what an uninterrupted one would have done.
"""

from __future__ import annotations

import hashlib
import importlib.util
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration

from facestudio.data.dataset import ReconstructionDataset
from facestudio.errors import FaceStudioError
from facestudio.model.components import pretrained_components, random_components
from facestudio.pipeline import FaceStudioPipeline
from facestudio.training.config import (
    ModelConfig,
    OptimizationConfig,
    TrainConfig,
    check_config,
    component_sizes,
)
from facestudio.training.ema import EMA, trained_parameters
from facestudio.training.log import LossWindows, TrainingLog
from facestudio.training.objectives import Objective, Validation
from facestudio.training.run import RunFolder

StepCallback = Callable[[int, float], None]


@dataclass
class TrainResult:
    step: int
    final_loss: float  # mean of the session's latest logging interval of steps
    first_loss: float  # mean of its first logging interval
    checkpoint: Path | None
    seconds: float
    objective: Objective | None = None  # the trained module, as training left it
    losses: LossWindows | None = None


def train(
    config: TrainConfig,
    on_step: StepCallback | None = None,
    cpu: bool | None = None,
    restart: bool = False,
) -> TrainResult:
    """Train (or resume) as `config` says; checkpoints, logs and validation go to output_dir.

    `on_step(step, loss)` is called after every optimizer step; `cpu` forces the CPU (default:
    the GPU when there is one); `restart` starts output_dir's run over instead of resuming.
    """
    config = check_config(config)
    objective_class = Objective.lookup(config.train.target)
    objective_class.check(config)
    _check_packages(config.train, config.logging.format)
    run = RunFolder(config.output_dir)
    run.check(config, restart)
    if restart or not run.started():
        _check_model_source(config.model)
    dataset = ReconstructionDataset(config.data.path, config.data.resolution)
    accelerator = _accelerator(config.train, cpu)
    _check_batches(len(dataset), config.train, accelerator.num_processes)
    pipeline = _open(run, config, objective_class, dataset, accelerator, restart)
    objective = objective_class(pipeline, config)
    objective.train()
    objective.setup(dataset, accelerator.device, run.path, accelerator.is_main_process)
    loop = _Loop.prepare(accelerator, objective, pipeline, dataset, run, config)
    return loop.run(on_step)


def _open(run, config, objective_class, dataset, accelerator, restart) -> FaceStudioPipeline:
    """The run's starting pipeline, written first if the run is new (by the main process)."""
    if restart and accelerator.is_main_process:
        run.clear()
    accelerator.wait_for_everyone()
    started = run.started()
    accelerator.wait_for_everyone()  # every process has looked before anything is written
    if started:  # checked before train_config.json is replaced
        pipeline = run.initial_pipeline()
        objective_class.check_data(pipeline, dataset)
    if accelerator.is_main_process:
        run.start(config, lambda: _starting_pipeline(config, objective_class, dataset))
    accelerator.wait_for_everyone()
    if not started:
        pipeline = run.initial_pipeline()
        objective_class.check_data(pipeline, dataset)
    return pipeline


def _starting_pipeline(config, objective_class, dataset) -> FaceStudioPipeline:
    pipeline = initial_pipeline(config.model)
    objective_class.check_data(pipeline, dataset)
    objective_class.initialize(pipeline, config, dataset)
    return pipeline


def initial_pipeline(model: ModelConfig) -> FaceStudioPipeline:
    """The pipeline a new run starts from (frozen parts included), as `[model]` says."""
    if model.init == "random":
        parts = random_components(component_sizes(model), seed=model.seed)
        if model.vae:  # a trained latent space; the random one above only fixed the shapes
            parts["vae"] = FaceStudioPipeline.from_pretrained(model.vae).vae
        return FaceStudioPipeline(**parts)
    if model.init == "pretrained":
        parts = pretrained_components(
            model.base, model.clip_models or None, model.prior or None, num_tokens=model.num_tokens
        )
        return FaceStudioPipeline(**parts)
    return FaceStudioPipeline.from_pretrained(model.pipeline)


def _check_model_source(model: ModelConfig) -> None:
    """A new run's `init = "pipeline"` folder must hold a pipeline (a resumed run needs none)."""
    if model.init == "pipeline" and not Path(model.pipeline, "model_index.json").is_file():
        raise FaceStudioError(
            f"model.pipeline '{model.pipeline}' is not a FaceStudio pipeline folder (no "
            "model_index.json); export one with facestudio export"
        )


def _accelerator(opt: OptimizationConfig, cpu: bool | None) -> Accelerator:
    return Accelerator(
        mixed_precision=opt.mixed_precision,
        gradient_accumulation_steps=opt.gradient_accumulation_steps,
        cpu=not torch.cuda.is_available() if cpu is None else cpu,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )


def _check_packages(opt: OptimizationConfig, log_format: str) -> None:
    needs = {
        "bitsandbytes": ("train.use_8bit_adam", opt.use_8bit_adam),
        "tensorboard": ("logging.format = 'tensorboard'", log_format == "tensorboard"),
    }
    for package, (setting, used) in needs.items():
        if used and importlib.util.find_spec(package) is None:
            raise FaceStudioError(f"{setting} needs {package}; run: pip install {package}")


def _check_batches(samples: int, opt: OptimizationConfig, processes: int) -> None:
    batches = samples // (opt.batch_size * processes)
    if batches == 0:
        raise FaceStudioError(f"{samples} samples are fewer than one batch of {opt.batch_size}")
    if batches < opt.gradient_accumulation_steps:
        raise FaceStudioError(
            f"{samples} samples make {batches} batch(es) of {opt.batch_size} per process, fewer "
            f"than gradient_accumulation_steps = {opt.gradient_accumulation_steps}"
        )


def step_seed(seed: int, step: int, micro: int, rank: int) -> int:
    """The seed of one micro-batch's generator: a resumed run draws what the whole one did."""
    digest = hashlib.sha256(f"{seed}/{step}/{micro}/{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def _optimizer(parameters: list, opt: OptimizationConfig) -> torch.optim.Optimizer:
    if opt.use_8bit_adam:
        import bitsandbytes  # optional, checked in _check_packages

        return bitsandbytes.optim.AdamW8bit(parameters, lr=opt.learning_rate)
    return torch.optim.AdamW(parameters, lr=opt.learning_rate, weight_decay=1e-2)


@dataclass
class _Interval:
    """Loss and time since the last log line."""

    loss: float = 0.0
    count: int = 0
    start: float = field(default_factory=time.perf_counter)


@dataclass
class _Loop:
    accelerator: Accelerator
    model: torch.nn.Module  # the objective as accelerate prepared it
    optimizer: torch.optim.Optimizer
    loader: torch.utils.data.DataLoader
    parameters: list
    ema: EMA | None
    pipeline: FaceStudioPipeline
    dataset: ReconstructionDataset
    folder: RunFolder
    config: TrainConfig
    log: TrainingLog
    interval: _Interval = field(default_factory=_Interval)
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def prepare(cls, accelerator, objective, pipeline, dataset, run, config) -> _Loop:
        opt = config.train
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=opt.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=config.data.num_workers,
            generator=torch.Generator().manual_seed(opt.seed),
        )
        parameters = list(trained_parameters(objective).values())
        optimizer = _optimizer(parameters, opt)
        model, optimizer, loader = accelerator.prepare(objective, optimizer, loader)
        ema = EMA(objective, opt.ema_decay) if opt.use_ema else None
        tensorboard = config.logging.format == "tensorboard"
        log = TrainingLog(run.path, tensorboard, accelerator.is_main_process)
        return cls(
            accelerator,
            model,
            optimizer,
            loader,
            parameters,
            ema,
            pipeline,
            dataset,
            run,
            config,
            log,
        )

    def run(self, on_step: StepCallback | None) -> TrainResult:
        opt = self.config.train
        step = self.folder.resume(self.accelerator, self.ema)
        saved = self.folder.latest_checkpoint()
        steps_per_epoch = len(self.loader) // opt.gradient_accumulation_steps
        losses = LossWindows(self.config.logging.every_steps)
        while step < opt.max_steps:
            epoch = step // steps_per_epoch
            for loss in self._updates(step, epoch, steps_per_epoch):
                step += 1
                if self.ema is not None:
                    self.ema.step()
                last = self.accelerator.gather(loss.detach()[None]).mean().item()
                losses.add(step, last)
                saved = self._after_update(step, epoch) or saved
                if on_step is not None:
                    on_step(step, last)
                if step >= opt.max_steps:
                    break
        self.log.close()
        seconds = time.perf_counter() - self.started
        objective = self.accelerator.unwrap_model(self.model)
        return TrainResult(
            step, losses.latest_mean, losses.first_mean, saved, seconds, objective, losses
        )

    def _updates(self, step: int, epoch: int, steps_per_epoch: int) -> Iterator[torch.Tensor]:
        """One epoch from `step` on: the last micro-batch's loss after each optimizer step."""
        accumulation = self.config.train.gradient_accumulation_steps
        self.loader.set_epoch(epoch)
        skip = (step % steps_per_epoch) * accumulation
        batches = self.accelerator.skip_first_batches(self.loader, skip) if skip else self.loader
        micro = 0
        for batch in batches:
            loss = self._micro_step(batch, step, micro)
            micro += 1
            self.interval.loss += loss.detach().item()
            self.interval.count += 1
            if self.accelerator.sync_gradients:
                step, micro = step + 1, 0
                yield loss

    def _micro_step(self, batch: dict, step: int, micro: int) -> torch.Tensor:
        opt, accelerator = self.config.train, self.accelerator
        with accelerator.accumulate(self.model):
            seed = step_seed(opt.seed, step, micro, accelerator.process_index)
            with accelerator.autocast():
                loss = self.model(batch, torch.Generator().manual_seed(seed))
            accelerator.backward(loss)
            if accelerator.sync_gradients and opt.max_grad_norm > 0:
                accelerator.clip_grad_norm_(self.parameters, opt.max_grad_norm)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return loss

    def _after_update(self, step: int, epoch: int) -> Path | None:
        """Log, checkpoint and validate when due; the checkpoint written, if any."""
        config, last = self.config, step == self.config.train.max_steps
        if step % config.logging.every_steps == 0 or last:
            self._write_log(step, epoch)
        saved = None
        if step % config.checkpoints.every_steps == 0 or last:
            keep = config.checkpoints.keep_last
            saved = self.folder.save_checkpoint(self.accelerator, step, self.ema, keep)
        every = config.validation.every_steps
        if every and (step % every == 0 or last):
            self._validate(step)
        return saved

    def _write_log(self, step: int, epoch: int) -> None:
        now, interval = time.perf_counter(), self.interval
        samples = interval.count * self.config.train.batch_size * self.accelerator.num_processes
        mean_loss = interval.loss / interval.count
        self.log.write(step, epoch, mean_loss, samples / (now - interval.start), now - self.started)
        self.interval = _Interval()

    @torch.no_grad()
    def _validate(self, step: int) -> None:
        if not self.accelerator.is_main_process:
            return
        objective = self.accelerator.unwrap_model(self.model)
        folder = self.folder.validation_folder
        folder.mkdir(exist_ok=True)
        with self.ema.applied() if self.ema is not None else nullcontext():
            objective.eval()
            try:
                objective.validate(
                    self.pipeline, self.dataset, Validation(self.config.validation, step, folder)
                )
            finally:
                objective.train()
