"""`prepare --ray`: the same shards, with the face work spread over a Ray cluster.

Ray tasks, not Ray Data: a shard's bytes must not depend on how the work was split, and
resuming works shard by shard, so the driver keeps `prepare`'s plan (the same sorted photos,
the same shards, finished ones skipped) and only the per-photo work moves to the workers. Each
shard is cut into tasks of `photos_per_task` photos, so a few large shards still keep every
worker busy and the progress bar moves photo batch by photo batch. The driver reads each
photo and sends its bytes with the task (the workers need no access to the sources); a worker
process builds its face analyzer once and returns each photo's encoded members or skip reason.
The driver writes every shard and its report with the same code as a one-machine run, in the
photos' order, so the shards are byte-identical to one made on one machine that computes the
same way (same face backend and settings, same library versions, same kind of device).
"""

from __future__ import annotations

import functools
import importlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Annotated

from tqdm import tqdm

from facestudio.configuration import NonNegativeFloat, Range, check_dataclass
from facestudio.data.prepare import (
    PREPARE,
    PrepareConfig,
    ShardPlan,
    check_prepare_folder,
    plan_shards,
    progress_bar,
    read_photo,
    sample_from_photo,
    write_shard,
)
from facestudio.data.sources import SourceItem
from facestudio.errors import FaceStudioError
from facestudio.faces.analyzer import FaceAnalyzer, FaceAnalyzerConfig
from facestudio.outputs import mark_folder

INSTALL = "pip install 'facestudio[cluster]'"
"""What installs Ray with the versions FaceStudio supports (pyproject's `cluster` extra)."""


@dataclass(frozen=True)
class RayConfig:
    """Where and how `prepare` runs on Ray.

    `address`: what `ray.init` connects to: `auto` (the cluster this machine belongs to, as
    started by `ray start`), `ray://HOST:10001` (Ray Client) or `local` (a new cluster of this
    machine's CPUs). `photos_per_task`: photos in one task (small: a smoother progress bar and
    load balance; large: less overhead per task). `cpus_per_task`, `gpus_per_task`: what each
    task reserves (a GPU share lets the `torch` backend run on a cluster's GPUs; without one,
    Ray hides the GPUs from the task). `tasks_per_cpu`: tasks kept queued per cluster CPU,
    which bounds the photos held in memory at once.
    """

    address: str = "auto"
    photos_per_task: Annotated[int, Range(1, 100_000)] = 32
    cpus_per_task: Annotated[float, Range(0, 1024, low_open=True)] = 1.0
    gpus_per_task: NonNegativeFloat = 0.0
    tasks_per_cpu: Annotated[int, Range(1, 64)] = 2


def import_ray() -> ModuleType:
    """Ray, or a one-line error saying how to install it (checked before any work)."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise FaceStudioError(
            f"--ray needs Ray, which is not installed; install it with {INSTALL}"
        ) from None


def prepare_on_ray(
    sources: list[str],
    out: str | Path,
    analyzer_config: FaceAnalyzerConfig,
    config: PrepareConfig | None = None,
    cluster: RayConfig | None = None,
    progress: bool = True,
) -> dict:
    """`prepare` with the photos analysed by Ray tasks; returns the same counts. Connects to
    `cluster.address` unless Ray is already initialised in this process (then that cluster is
    used and left running)."""
    config = check_dataclass(config or PrepareConfig(), "the prepare settings")
    cluster = check_dataclass(cluster or RayConfig(), "the Ray settings")
    ray = import_ray()
    out = check_prepare_folder(out, sources)
    plan = plan_shards(sources, out, config)
    connected = not ray.is_initialized()
    if connected:
        _connect(ray, cluster.address)
    try:
        mark_folder(out, PREPARE)
        start = time.perf_counter()
        with progress_bar(plan.photos_to_do(), "prepare[ray]", progress) as bar:
            for k, results in _finished_shards(ray, plan, analyzer_config, config, cluster, bar):
                write_shard(out, k, k * config.shard_size, results)
        return plan.counts(time.perf_counter() - start)
    finally:
        if connected:
            ray.shutdown()


def _connect(ray: ModuleType, address: str) -> None:
    try:
        ray.init(address=address, include_dashboard=False, logging_level="warning")
    except (ConnectionError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FaceStudioError(
            f"cannot use the Ray cluster '{address}' ({reason}); start one with `ray start "
            "--head` and give --ray auto, or give --ray local for one on this machine"
        ) from None


def _finished_shards(
    ray: ModuleType,
    plan: ShardPlan,
    analyzer_config: FaceAnalyzerConfig,
    config: PrepareConfig,
    cluster: RayConfig,
    bar: tqdm,
) -> Iterator[tuple[int, list[dict[str, bytes] | str]]]:
    """`(shard, results in photo order)` as each shard's last task finishes. Tasks are
    submitted in shard order, at most `tasks_per_cpu` per cluster CPU at a time; finished
    results wait in Ray's object store until their shard is whole."""
    task = ray.remote(prepare_photos).options(
        num_cpus=cluster.cpus_per_task, num_gpus=cluster.gpus_per_task
    )
    size = cluster.photos_per_task
    batches = [
        (k, plan.shards[k][i : i + size])
        for k in plan.todo
        for i in range(0, len(plan.shards[k]), size)
    ]
    left = {k: math.ceil(len(plan.shards[k]) / size) for k in plan.todo}
    parts: dict[int, list] = {k: [] for k in plan.todo}
    window = max(2, int(ray.cluster_resources().get("CPU", 1) * cluster.tasks_per_cpu))
    pending: dict = {}
    queue = iter(batches)

    def submit() -> None:
        for k, photos in queue:
            batch = [(item, read_photo(item, analyzer_config.image)) for item in photos]
            ref = task.remote(analyzer_config, config, batch)
            pending[ref] = (k, len(photos))
            parts[k].append(ref)
            if len(pending) >= window:
                return

    submit()
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        k, count = pending.pop(ref)
        bar.update(count)
        left[k] -= 1
        submit()
        if left[k] == 0:
            yield k, [result for part in parts.pop(k) for result in _result(ray, part)]


def _result(ray: ModuleType, ref) -> list[dict[str, bytes] | str]:
    """A task's results; a `FaceStudioError` raised on a worker is raised here as itself."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, FaceStudioError):
            raise exc.cause from None
        raise


def prepare_photos(
    analyzer_config: FaceAnalyzerConfig,
    config: PrepareConfig,
    batch: list[tuple[SourceItem, bytes | None]],
) -> list[dict[str, bytes] | str]:
    """On a worker: each photo's sample members or skip reason (`sample_from_photo`)."""
    analyzer = _analyzer(analyzer_config)
    return [sample_from_photo(item, data, analyzer, config) for item, data in batch]


@functools.lru_cache(maxsize=1)
def _analyzer(config: FaceAnalyzerConfig) -> FaceAnalyzer:
    """One analyzer per worker process (its models load once, not once per task)."""
    return FaceAnalyzer(config)
