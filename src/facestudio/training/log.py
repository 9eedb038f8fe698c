"""Loss and throughput per logging interval: `log.csv` in the run folder, and TensorBoard when
the config's `logging.format` chooses it (main process only)."""

from __future__ import annotations

import csv
import math
import resource
from collections import deque
from pathlib import Path

import torch

from facestudio.errors import FaceStudioError

COLUMNS = ["step", "epoch", "loss", "samples_per_s", "seconds", "peak_memory_mb"]


class TrainingLog:
    def __init__(self, folder: Path, tensorboard: bool, active: bool) -> None:
        self.active = active
        self.writer = None
        if not active:
            return
        path = folder / "log.csv"
        fresh = not path.exists()
        self.file = open(path, "a", newline="")  # noqa: SIM115 - open for the whole run
        self.csv = csv.writer(self.file)
        if fresh:
            self.csv.writerow(COLUMNS)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # optional: the train extra
            except ImportError:
                raise FaceStudioError(
                    "logging.format = 'tensorboard' needs tensorboard; run: pip install tensorboard"
                ) from None
            self.writer = SummaryWriter(str(folder / "tensorboard"))

    def write(
        self, step: int, epoch: int, loss: float, samples_per_s: float, seconds: float
    ) -> None:
        if not self.active:
            return
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


class LossWindows:
    """The mean loss over the first and over the latest `window` optimizer steps of a session.

    One batch's loss swings by tens of percent with its timesteps and noise, so comparing the
    first batch with the last says little; means over a logging interval compare like with like.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.first: list[tuple[int, float]] = []
        self.latest: deque[tuple[int, float]] = deque(maxlen=window)

    def add(self, step: int, loss: float) -> None:
        if len(self.first) < self.window:
            self.first.append((step, loss))
        self.latest.append((step, loss))

    @property
    def first_mean(self) -> float:
        return _mean(self.first)

    @property
    def latest_mean(self) -> float:
        return _mean(self.latest)

    def describe(self) -> str:
        """E.g. "mean loss 0.0861 over steps 1-20 -> 0.0555 over steps 1181-1200"."""
        if not self.first:
            return "no steps trained"
        return (
            f"mean loss {self.first_mean:.4f} over steps {_span(self.first)} -> "
            f"{self.latest_mean:.4f} over steps {_span(self.latest)}"
        )


def _mean(losses) -> float:
    return sum(loss for _, loss in losses) / len(losses) if losses else math.nan


def _span(losses) -> str:
    return f"{losses[0][0]}-{losses[-1][0]}"


def append_csv(path: Path, header: list[str], row: list) -> None:
    """Append `row` to a CSV file of the run, writing `header` first when the file is new."""
    fresh = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.writer(handle)
        if fresh:
            writer.writerow(header)
        writer.writerow(row)
