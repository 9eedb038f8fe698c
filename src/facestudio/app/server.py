"""One server: the HTTP API and the web page on one FastAPI app, one model, one job queue.

`create_app` assembles it (used by `facestudio serve` and by tests, in-process);
`serve` checks the settings, loads the model and runs it with uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facestudio import __version__
from facestudio.app.api import build_router
from facestudio.app.auth import TokenGuard
from facestudio.app.budget import BodyBudget, BodyLimits, Refusal, Route
from facestudio.app.config import ServeConfig, check_device
from facestudio.app.cost import JobBudget
from facestudio.app.forms import MalformedBodyError, PayloadTooLargeError, max_body_bytes
from facestudio.app.jobs import Job, JobQueue, JobStore, QueueFullError
from facestudio.app.messages import one_line
from facestudio.app.studio import Studio
from facestudio.app.uploads import UploadFolder, UploadsFullError
from facestudio.errors import FaceStudioError

if TYPE_CHECKING:
    from facestudio.app.redis_queue import RedisJobQueue

logger = logging.getLogger("facestudio.server")

UPLOAD_ROUTE = "/gradio_api/upload"
"""Where the page uploads files (gradio's route), into the server's `UploadFolder`."""


def create_app(config: ServeConfig, studio: Studio, ui: bool = True) -> FastAPI:
    """The API under /v1 (docs at /docs), the page at /, guarded by the token if one is set.

    With `config.redis_url`, jobs go to the shared queue in Redis (`studio` may then be
    `Studio.described`, without weights) and `/v1/workers` lists the live workers; this waits
    until a worker has measured the model's speed, which sets the job budget."""
    if config.redis_url is not None:
        jobs, budget = _shared_queue(config, studio)
    else:
        budget = JobBudget(config.max_job_s, studio.seconds_per_pixel_step)
        jobs = JobQueue(
            studio.run,
            max_queued=config.queue_size,
            retention_s=config.retention_s,
            max_kept_bytes=config.max_kept_bytes,
            on_unexpected_error=_log_failure,
            max_run_s=budget.max_run_s,
            max_waiting_bytes=config.max_waiting_bytes,
        )
    uploads = (
        UploadFolder.create(config.max_upload_folder_bytes, config.upload_ttl_s) if ui else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        cleaner = asyncio.create_task(uploads.keep_clean()) if uploads is not None else None
        try:
            yield
        finally:
            if cleaner is not None:
                cleaner.cancel()
            if uploads is not None:
                uploads.remove()  # first: jobs hold their photos in memory, not here
            jobs.close()

    app = FastAPI(
        title="FaceStudio",
        version=__version__,
        description=(
            "Identity-preserving image generation. Submit a multipart form to "
            "`POST /v1/generations`, poll `GET /v1/jobs/{id}`, download "
            "`GET /v1/jobs/{id}/images/{n}`. Uploaded photos are kept in memory only, for the "
            "job's duration; results are deleted after the retention time. `GET /v1/models` "
            "gives the limits, the cost a job may have among them."
        ),
        lifespan=lifespan,
    )
    app.state.jobs = jobs
    app.state.studio = studio
    app.state.uploads = uploads
    _add_error_handlers(app)
    app.include_router(build_router(studio, jobs, budget))
    if config.redis_url is not None:
        _add_workers_route(app, jobs)
    if uploads is not None:
        _mount_page(app, studio, jobs, uploads, budget)
    routes = {"/v1/generations": Route(max_body_bytes)}
    if uploads is not None:
        routes[UPLOAD_ROUTE] = Route(max_body_bytes, _admit_upload(uploads))
    limits = BodyLimits(config.max_in_flight_bytes, config.body_idle_s, routes=routes)
    app.add_middleware(BodyBudget, limits=limits)
    app.add_middleware(TokenGuard, token=config.token)  # outermost: strangers get 401 first
    return app


def _shared_queue(config: ServeConfig, studio: Studio) -> tuple[RedisJobQueue, JobBudget]:
    """The queue in Redis with this server's bounds, and the budget of the slowest worker."""
    from facestudio.app.redis_queue import RedisJobQueue, wait_for_speed
    from facestudio.app.redis_store import connect

    store = connect(config.redis_url)
    budget = JobBudget(config.max_job_s, wait_for_speed(store, studio.info.name))
    jobs = RedisJobQueue(
        store,
        max_queued=config.queue_size,
        retention_s=config.retention_s,
        max_kept_bytes=config.max_kept_bytes,
        max_run_s=budget.max_run_s,
        max_waiting_bytes=config.max_waiting_bytes,
    )
    return jobs, budget


def _add_workers_route(app: FastAPI, jobs: RedisJobQueue) -> None:
    @app.get("/v1/workers", summary="The live workers (heartbeats) and the shared queue")
    def workers() -> dict:
        return {"workers": jobs.workers(), "queue": jobs.stats()}


def _mount_page(
    app: FastAPI, studio: Studio, jobs: JobStore, uploads: UploadFolder, budget: JobBudget
) -> None:
    """The gradio page at /, keeping its uploads in `uploads` (gradio reads the folder from
    $GRADIO_TEMP_DIR when its components are built)."""
    os.environ["GRADIO_TEMP_DIR"] = str(uploads.path)
    import gradio

    from facestudio.app.ui import CSS, build_ui

    gradio.mount_gradio_app(
        app,
        build_ui(studio, jobs, uploads, budget),
        path="",
        css=CSS,
        footer_links=[],
        run_history=False,
        max_file_size=_upload_limit(),
        show_error=False,
    )


def _admit_upload(uploads: UploadFolder):
    def admit(size: int) -> None:
        try:
            uploads.admit(size)
        except UploadsFullError as exc:
            raise Refusal(429, str(exc), exc.retry_after) from None

    return admit


def serve(config: ServeConfig) -> None:
    """Check the settings, load the model (only its configs with a shared queue: workers run
    the jobs), and serve until interrupted."""
    config.check()
    import uvicorn

    if config.redis_url is not None:
        studio = Studio.described(config.model)
    else:
        check_device(config.device)
        studio = Studio.load(config.model, config.device)
    app = create_app(config, studio)
    where = f"http://{config.host}:{config.port}"
    queue = " (jobs in Redis, run by facestudio worker)" if config.redis_url else ""
    print(
        f"FaceStudio: model '{studio.info.name}' on {where}{queue} (API docs: {where}/docs)",
        flush=True,
    )
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")


def _upload_limit() -> int:
    from facestudio.pipeline import limits

    return limits.MAX_UPLOAD_BYTES


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is one line in `{"detail": ...}`: never a traceback."""

    @app.exception_handler(QueueFullError)
    async def busy(_request: Request, exc: QueueFullError) -> JSONResponse:
        return _answer(exc, 429, {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(PayloadTooLargeError)
    async def too_large(_request: Request, exc: PayloadTooLargeError) -> JSONResponse:
        return _answer(exc, 413, {"Connection": "close"})

    @app.exception_handler(MalformedBodyError)
    async def malformed(_request: Request, exc: MalformedBodyError) -> JSONResponse:
        return _answer(exc, 400)

    @app.exception_handler(Refusal)
    async def refused(_request: Request, exc: Refusal) -> JSONResponse:
        retry = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
        return _answer(exc, exc.status, {"Connection": "close", **retry})

    @app.exception_handler(FaceStudioError)
    async def bad_input(_request: Request, exc: FaceStudioError) -> JSONResponse:
        return _answer(exc, 422)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "path")
        return _answer(f"{where or 'request'}: {first.get('msg', 'invalid')}", 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _answer(exc.detail, exc.status_code, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": "internal error; the server log has the details"}, status_code=500
        )


def _answer(message: object, status: int, headers: dict | None = None) -> JSONResponse:
    """An error as every route gives it: `{"detail": "<one bounded line>"}`."""
    return JSONResponse({"detail": one_line(str(message))}, status_code=status, headers=headers)


def _log_failure(job: Job, exc: BaseException) -> None:
    logger.error("job %s failed", job.id, exc_info=exc)
