"""Denoising progress of a running generation, for the job queue (an adapter).

`FaceStudioPipeline.__call__` takes no step callback yet (diffusers' `callback_on_step_end`).
Until it does, the server loads the pipeline as `StepReportingPipeline`, which differs only in
its progress bar: every denoising step it reports (steps done, steps in all) to the callback
that `reporting_steps` installs for the current call. The callback lives in a context
variable, so it belongs to the calling thread's call, not to the shared pipeline object.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterable, Iterator

from facestudio.pipeline.pipeline import FaceStudioPipeline

StepCallback = Callable[[int, int], None]

_current: contextvars.ContextVar[StepCallback | None] = contextvars.ContextVar(
    "facestudio_step_callback", default=None
)


class StepReportingPipeline(FaceStudioPipeline):
    """A `FaceStudioPipeline` whose denoising loop reports its steps (see module doc)."""

    def progress_bar(self, iterable: Iterable | None = None, total: int | None = None):
        bar = super().progress_bar(iterable=iterable, total=total)
        callback = _current.get()
        if callback is None or iterable is None:
            return bar
        return _reporting(bar, len(iterable), callback)


def _reporting(bar: Iterable, total: int, callback: StepCallback) -> Iterator:
    callback(0, total)
    for done, item in enumerate(bar, start=1):
        yield item  # the step runs while this generator waits here
        callback(done, total)


@contextlib.contextmanager
def reporting_steps(callback: StepCallback):
    """Within this block, this thread's pipeline calls report their steps to `callback`."""
    token = _current.set(callback)
    try:
        yield
    finally:
        _current.reset(token)
