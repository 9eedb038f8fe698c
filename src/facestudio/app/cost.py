"""What one job may cost, in the worker's time: the limit a request is checked against.

One worker runs every job, so a job's cost is the time it holds that worker. The denoising
loop dominates it and grows with `denoising steps × images × width × height` (pixel-steps).
`JobBudget` turns `max_job_s`, the time one job may take, into a limit in pixel-steps using
`seconds_per_unit`, the speed the server measured on its own worker at start
(`Studio.seconds_per_pixel_step`, at the model's native size, where a pixel costs the most).
A request over the limit is refused before it is queued, in one line that says what it costs
and what is allowed; `/v1/models` advertises the limit. The estimate can be wrong (the
machine gets busier), so the job queue also stops any job that runs twice `max_job_s`.
"""

from __future__ import annotations

from dataclasses import dataclass

from facestudio.errors import FaceStudioError
from facestudio.pipeline.model_info import ModelInfo
from facestudio.pipeline.request import GenerationRequest

OVERRUN_FACTOR = 2.0
"""A running job is stopped at this many times `max_job_s`: room for an estimate that was
off, never an unbounded hold of the worker."""


@dataclass(frozen=True)
class JobBudget:
    """The most one job may cost on this server."""

    max_job_s: float
    seconds_per_unit: float

    @property
    def max_units(self) -> int:
        """The limit in pixel-steps."""
        return int(self.max_job_s / self.seconds_per_unit)

    @property
    def max_run_s(self) -> float:
        """When a running job is stopped."""
        return OVERRUN_FACTOR * self.max_job_s

    def units(self, request: GenerationRequest, info: ModelInfo) -> int:
        """The request's pixel-steps: denoising steps × images × width × height."""
        steps, images, width, height = _factors(request, info)
        return steps * images * width * height

    def check(self, request: GenerationRequest, info: ModelInfo) -> None:
        """Refuse a (validated) request that would hold the worker longer than `max_job_s`."""
        units = self.units(request, info)
        if units <= self.max_units:
            return
        steps, images, width, height = _factors(request, info)
        raise FaceStudioError(
            f"this job would take about {_duration(units * self.seconds_per_unit)} "
            f"({steps} steps × {images} images × {width}×{height} pixels); this server allows "
            f"{_duration(self.max_job_s)} per job (at most {self.max_units:,} pixel-steps): "
            "use fewer steps, images or pixels"
        )

    def describe(self) -> dict:
        """The limit as `/v1/models` advertises it."""
        return {
            "max_job_seconds": self.max_job_s,
            "max_job_pixel_steps": self.max_units,
            "job_cost": "denoising steps × images × width × height (pixel-steps)",
        }


def _factors(request: GenerationRequest, info: ModelInfo) -> tuple[int, int, int, int]:
    from facestudio.pipeline.pipeline import denoising_steps

    width, height = request.size(info)
    steps = denoising_steps(request.num_inference_steps, request.effective_strength)
    return steps, request.num_images, width, height


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"
