"""A training run's folder: the one owner of its layout, its checkpoints and its export.

    output_dir/
      .facestudio-folder.json          the mark: this folder is a FaceStudio run (outputs.py)
      train_config.json                the configuration of the latest start
      initial_pipeline/                the starting model, frozen parts included (export
        model_settings.json            needs nothing else), and the model settings it was
                                       started with
      checkpoints/checkpoint-NNNNNNNN/ accelerate state (model.safetensors: the objective's
                                       weights; optimizer), ema.safetensors (by parameter
                                       name), trainer_state.json
      log.csv, tensorboard/, validation/

The starting model is written under a temporary name and renamed with its settings record,
so a start either happened completely or left nothing. A run keeps training only under the
model settings it was started with; checkpoints are published by rename, the last good one
never damaged. Export rebuilds the trained module with the objective's own code.

Training writes, appends to or deletes files only in a folder that is new, empty, marked as a
run, or a run made before the mark (recognised by its starting pipeline and its settings);
and among the run's own names only what training made: a link or another kind of file there
is refused, never followed.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from accelerate import Accelerator
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from facestudio.errors import FaceStudioError
from facestudio.files import kind_of
from facestudio.outputs import (
    check_new_folder,
    check_own_folder,
    mark_folder,
    staged_folder,
    unmark_folder,
    write_bytes_atomic,
)
from facestudio.pipeline import FaceStudioPipeline
from facestudio.training.config import TrainConfig, config_from_dict
from facestudio.training.ema import EMA, apply_average
from facestudio.training.objectives import Autoencoder, Objective, Reconstruction

CONFIG = "train_config.json"
INITIAL = "initial_pipeline"
SETTINGS = "model_settings.json"
CHECKPOINTS = "checkpoints"
WEIGHTS = "model.safetensors"  # accelerate's name for the prepared model's weights
EMA_WEIGHTS = "ema.safetensors"
STATE = "trainer_state.json"
RUN_OUTPUTS = (CONFIG, INITIAL, CHECKPOINTS, "log.csv", "tensorboard", "validation")
_FOLDERS = (INITIAL, CHECKPOINTS, "tensorboard", "validation")  # the rest are files
RUN = "run"  # the kind of folder, in its mark
_CHECKPOINT = re.compile(r"^checkpoint-(\d{8})$")


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:08d}"


class RunFolder:
    """The folder `output_dir` of a training run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunFolder:
        return cls(Path(checkpoint).resolve().parent.parent)

    @property
    def initial_folder(self) -> Path:
        return self.path / INITIAL

    @property
    def checkpoint_folder(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def validation_folder(self) -> Path:
        return self.path / "validation"

    # -- starting ---------------------------------------------------------------------------

    def started(self) -> bool:
        return (self.initial_folder / "model_index.json").is_file()

    def check(self, config: TrainConfig, restart: bool = False) -> None:
        """Refuse to train `config` here: not a folder, a folder that is not a run, a run
        output that training did not make, or (unless the run is to `restart`) a run started
        with other model settings or a latest checkpoint that cannot be read."""
        check_own_folder(self.path, RUN, _run_before_marks)
        self._check_outputs()
        if not restart and self.latest_checkpoint() is not None:
            _check_weights(self.latest_checkpoint())
        started = None if restart else self.started_with()
        if started is None:
            check_frozen_parts_trained(config)
            return
        current = _plain(config.model_settings())
        defaults = _plain(TrainConfig().model_settings())  # settings added after the start
        differ = [
            k
            for k in sorted(set(started) | set(current))
            if started.get(k, defaults.get(k)) != current.get(k)
        ]
        if differ:
            changes = "; ".join(f"{k} = {started.get(k)!r}, now {current.get(k)!r}" for k in differ)
            raise FaceStudioError(
                f"'{self.path}' was started with other model settings ({changes}); choose a new "
                "output_dir, or run with --restart to start this run over"
            )

    def started_with(self) -> dict | None:
        """The model settings of the run's start (None: not started)."""
        if not self.started():
            return None
        record = self.initial_folder / SETTINGS
        if record.is_file():
            return json.loads(record.read_text())
        # A run started before the record existed: its config file says.
        return _plain(self.config().model_settings()) if (self.path / CONFIG).is_file() else None

    def _check_outputs(self) -> None:
        """Each of the run's own names holds what training makes there (a real folder or a
        regular file), so nothing is written through a link or into a user's node."""
        for name in RUN_OUTPUTS:
            path = self.path / name
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                continue
            if not (stat.S_ISDIR(mode) if name in _FOLDERS else stat.S_ISREG(mode)):
                raise FaceStudioError(
                    f"'{path}' is {kind_of(mode)}, which training did not make; remove it or "
                    "choose a new output_dir"
                )

    def start(self, config: TrainConfig, build: Callable[[], FaceStudioPipeline]) -> None:
        """Write the starting pipeline `build()` makes, with its settings (once per run), and
        mark the folder as a run; a start that fails leaves nothing, the mark included."""
        if not self.started():
            pipeline = build()  # checked and complete before anything is written
            marked = mark_folder(self.path, RUN)
            try:
                self._remove_unfinished_starts()
                settings = json.dumps(_plain(config.model_settings()), indent=2)
                _save_whole(pipeline, self.initial_folder, {SETTINGS: settings})
            except BaseException:
                if marked:
                    unmark_folder(self.path)
                raise
        mark_folder(self.path, RUN)  # a run made before the mark gets it now
        write_bytes_atomic(self.path / CONFIG, json.dumps(config.to_dict(), indent=2).encode())

    def _remove_unfinished_starts(self) -> None:
        """An incomplete starting pipeline, and the temporary folders of starts that were
        killed (links are not followed: `rmtree` refuses them)."""
        for stale in [self.initial_folder, *self.path.glob(f".{INITIAL}*.tmp")]:
            shutil.rmtree(stale, ignore_errors=True)

    def clear(self) -> None:
        """Remove what training wrote here (`--restart`); other files, and the mark, stay."""
        self._check_outputs()
        for name in RUN_OUTPUTS:
            path = self.path / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.is_file() and not path.is_symlink():
                path.unlink()

    def config(self) -> TrainConfig:
        path = self.path / CONFIG
        return config_from_dict(json.loads(path.read_text()), source=f"'{path}'")

    def initial_pipeline(self) -> FaceStudioPipeline:
        """The starting pipeline as saved: every process, and export, start from these bytes."""
        return FaceStudioPipeline.from_pretrained(self.initial_folder)

    # -- checkpoints ------------------------------------------------------------------------

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first (unfinished saves are ignored)."""
        if not self.checkpoint_folder.is_dir():
            return []
        found = [
            p
            for p in self.checkpoint_folder.iterdir()
            if p.is_dir() and _CHECKPOINT.match(p.name) and (p / STATE).is_file()
        ]
        return sorted(found, key=lambda p: int(_CHECKPOINT.match(p.name).group(1)))

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def save_checkpoint(
        self, accelerator: Accelerator, step: int, ema: EMA | None, keep_last: int
    ) -> Path:
        """Write a checkpoint under a temporary name, rename it into place when complete, then
        drop the oldest beyond `keep_last`. A failed save leaves the last good one intact."""
        temporary = self.checkpoint_folder / f".{checkpoint_name(step)}.tmp"
        if accelerator.is_main_process:
            shutil.rmtree(temporary, ignore_errors=True)
        accelerator.wait_for_everyone()
        try:
            accelerator.save_state(str(temporary))
            # Steps draw no global randomness (each has its own generator), so the pickled RNG
            # states accelerate adds are not needed; without them nothing is unpickled on resume.
            for pickled in temporary.glob("random_states_*.pkl"):
                pickled.unlink()
            if accelerator.is_main_process:
                if ema is not None:
                    ema.save(temporary / EMA_WEIGHTS)
                (temporary / STATE).write_text(json.dumps({"step": step}))
        except OSError as error:
            raise self._save_failed(temporary, step, error) from None
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            self._publish(temporary, step, keep_last)
        accelerator.wait_for_everyone()
        return self.checkpoint_folder / checkpoint_name(step)

    def resume(self, accelerator: Accelerator, ema: EMA | None) -> int:
        """Load the latest checkpoint into the prepared objects; the step it was saved at."""
        latest = self.latest_checkpoint()
        if latest is None:
            return 0
        _check_weights(latest)
        accelerator.load_state(str(latest))
        if ema is not None and (latest / EMA_WEIGHTS).is_file():
            ema.load(latest / EMA_WEIGHTS)
        step = json.loads((latest / STATE).read_text())["step"]
        accelerator.print(f"resumed from {latest.name} at step {step}")
        return step

    def _publish(self, temporary: Path, step: int, keep_last: int) -> None:
        final = self.checkpoint_folder / checkpoint_name(step)
        if final.exists():
            shutil.rmtree(final)
        temporary.rename(final)
        complete = self.checkpoints()
        for old in complete[: max(0, len(complete) - keep_last)]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in self.checkpoint_folder.glob(".checkpoint-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)

    def _save_failed(self, temporary: Path, step: int, error: OSError) -> FaceStudioError:
        shutil.rmtree(temporary, ignore_errors=True)
        previous = self.latest_checkpoint()
        kept = (
            f"the last checkpoint, {previous.name}, is intact"
            if previous
            else "no earlier checkpoint exists"
        )
        if error.errno == errno.ENOSPC:
            return FaceStudioError(
                f"no space left on the device while saving checkpoint {step} in "
                f"'{self.checkpoint_folder}'; {kept}; free some space and run again to resume"
            )
        return FaceStudioError(
            f"saving checkpoint {step} failed ({error.strerror or error}); {kept}"
        )

    # -- export -----------------------------------------------------------------------------

    def export(self, checkpoint: str | Path, out: str | Path, use_ema: bool = True) -> Path:
        """A pipeline folder with `checkpoint`'s trained weights (its EMA weights when present
        and `use_ema`), made by the run's objective as in training; written whole or not at all."""
        checkpoint, out = Path(checkpoint), Path(out)
        if not (checkpoint / STATE).is_file() or not (checkpoint / WEIGHTS).is_file():
            raise FaceStudioError(
                f"'{checkpoint}' is not a complete training checkpoint (no {STATE} or {WEIGHTS})"
            )
        if not self.started() or not (self.path / CONFIG).is_file():
            raise FaceStudioError(
                f"'{self.path}' lacks {INITIAL}/ or {CONFIG}; export needs the run folder the "
                "checkpoint belongs to"
            )
        check_new_folder(out)
        _check_weights(checkpoint)
        config = self.config()
        pipeline = self.initial_pipeline()
        objective = Objective.build(pipeline, config)
        _load_into(objective, checkpoint / WEIGHTS, Objective.load_state_dict)
        if use_ema and (checkpoint / EMA_WEIGHTS).is_file():
            _load_into(objective, checkpoint / EMA_WEIGHTS, apply_average)
        objective.finalize(pipeline)
        _save_whole(pipeline, out)  # an empty folder there is replaced, nothing else
        return out


def check_frozen_parts_trained(config: TrainConfig) -> None:
    """Refuse a new run whose objective would keep a random part frozen: a random autoencoder's
    latents decode to noise and a random style encoder's embeddings mean nothing, whatever the
    U-Net learns (unless `train.allow_untrained_frozen` asks for such a run on purpose)."""
    if config.model.init != "random" or config.train.allow_untrained_frozen:
        return
    objective = Objective.lookup(config.train.target)
    untrained = []
    if objective is not Autoencoder and not config.model.vae:
        untrained.append('autoencoder (set model.vae = "bundled" or a trained model folder)')
    if issubclass(objective, Reconstruction) and not config.train.train_style_encoder:
        untrained.append("style encoder (set train.train_style_encoder = true)")
    if untrained:
        raise FaceStudioError(
            f"with model.init = 'random' the run would keep a random, frozen {' and a '.join(untrained)}"
            " and never make an image; or start from a trained model (init = 'pipeline')"
        )


def export_checkpoint(checkpoint: str | Path, out: str | Path, use_ema: bool = True) -> Path:
    """`RunFolder.export` of the run `checkpoint` belongs to (`facestudio export`)."""
    return RunFolder.of_checkpoint(checkpoint).export(checkpoint, out, use_ema)


def _save_whole(pipeline: FaceStudioPipeline, folder: Path, extra: dict | None = None) -> None:
    """Save `pipeline` (and `extra` files) under a new temporary name and rename it to `folder`
    when complete: a full disk or a crash leaves no half-written pipeline at `folder`, and no
    existing file is taken for the temporary one."""
    try:
        with staged_folder(folder) as temporary:
            pipeline.save_pretrained(temporary)
            for name, text in (extra or {}).items():
                (temporary / name).write_text(text)
    except OSError as error:
        reason = "no space left on the device" if error.errno == errno.ENOSPC else error.strerror
        raise FaceStudioError(f"could not write '{folder}': {reason or error}") from None


def _check_weights(checkpoint: Path) -> None:
    """Every weights file of `checkpoint` has a header that agrees with the file (safetensors
    checks each tensor's offsets against the file's size), before anything is loaded."""
    for path in sorted(checkpoint.glob("*.safetensors")):
        try:
            with safe_open(str(path), "pt"):
                pass
        except (SafetensorError, OSError) as error:
            raise FaceStudioError(
                f"checkpoint '{checkpoint}' is damaged: {path.name} cannot be read ({error}); "
                "use an earlier checkpoint (delete this one to resume from it) or --restart"
            ) from None


def _load_into(objective: Objective, path: Path, load: Callable) -> None:
    """`load(objective, tensors)` with the weights in `path`; weights of other names or shapes
    (a header that lies within the file) are one line."""
    try:
        load(objective, load_file(str(path)))
    except RuntimeError as error:  # torch's report of missing, unexpected or misshapen weights
        first = str(error).strip().splitlines()[0]
        raise FaceStudioError(
            f"'{path}' is damaged or from another model: its weights do not fit this run "
            f"({first}); export a checkpoint of this run"
        ) from None


def _run_before_marks(folder: Path) -> bool:
    """A run made before runs were marked: its starting pipeline with the run's settings record
    or config beside it (a layout only training makes)."""
    initial = folder / INITIAL
    return (initial / "model_index.json").is_file() and (
        (initial / SETTINGS).is_file() or (folder / CONFIG).is_file()
    )


def _plain(settings: dict) -> dict:
    """Settings as JSON holds them (tuples as lists), so a record and a config compare."""
    return json.loads(json.dumps(settings))
