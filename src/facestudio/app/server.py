"""One server: the HTTP API and the web page on one FastAPI app, one model, one job queue.

`create_app` assembles it (used by `facestudio serve` and by tests, in-process);
`serve` checks the settings, loads the model and runs it with uvicorn.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facestudio import __version__
from facestudio.app.api import build_router
from facestudio.app.auth import TokenGuard
from facestudio.app.config import ServeConfig
from facestudio.app.forms import PayloadTooLargeError
from facestudio.app.jobs import Job, JobQueue, QueueFullError
from facestudio.app.studio import Studio
from facestudio.errors import FaceStudioError

logger = logging.getLogger("facestudio.server")

MEMORY_FOLDER = Path("/dev/shm")
"""A memory-backed file system (Linux): where the page's uploads are held, if it exists."""


def create_app(config: ServeConfig, studio: Studio, ui: bool = True) -> FastAPI:
    """The API under /v1 (docs at /docs), the page at /, guarded by the token if one is set."""
    jobs = JobQueue(
        studio.run,
        max_queued=config.queue_size,
        retention_s=config.retention_s,
        max_kept_bytes=config.max_kept_bytes,
        on_unexpected_error=_log_failure,
    )

    upload_folder = private_upload_folder() if ui else None

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        jobs.close()
        if upload_folder is not None:
            shutil.rmtree(upload_folder, ignore_errors=True)

    app = FastAPI(
        title="FaceStudio",
        version=__version__,
        description=(
            "Identity-preserving image generation. Submit a multipart form to "
            "`POST /v1/generations`, poll `GET /v1/jobs/{id}`, download "
            "`GET /v1/jobs/{id}/images/{n}`. Uploaded photos are kept in memory only, for the "
            "job's duration; results are deleted after the retention time."
        ),
        lifespan=lifespan,
    )
    app.state.jobs = jobs
    app.state.studio = studio
    _add_error_handlers(app)
    app.include_router(build_router(studio, jobs))
    if ui:
        import gradio

        from facestudio.app.ui import CSS, build_ui

        blocks = build_ui(studio, jobs)
        gradio.mount_gradio_app(
            app,
            blocks,
            path="",
            css=CSS,
            footer_links=[],
            run_history=False,
            max_file_size=_upload_limit(),
            show_error=False,
        )
    app.add_middleware(TokenGuard, token=config.token)
    return app


def serve(config: ServeConfig) -> None:
    """Check the settings, load the model, and serve until interrupted."""
    config.check()
    import uvicorn

    studio = Studio.load(config.model, config.device)
    app = create_app(config, studio)
    where = f"http://{config.host}:{config.port}"
    print(f"FaceStudio: model '{studio.info.name}' on {where} (API docs: {where}/docs)", flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")


def private_upload_folder() -> Path:
    """A folder only this user can read, in memory where the system has /dev/shm, for the
    files the page uploads (gradio writes each upload to a file before the handler runs).
    Gradio finds it through $GRADIO_TEMP_DIR, read when its components are built; the folder
    is removed when the server stops."""
    parent = MEMORY_FOLDER if MEMORY_FOLDER.is_dir() and os.access(MEMORY_FOLDER, os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="facestudio-uploads-", dir=parent))
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return folder


def _upload_limit() -> int:
    from facestudio.pipeline import limits

    return limits.MAX_UPLOAD_BYTES


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is one line in `{"detail": ...}`: never a traceback."""

    @app.exception_handler(QueueFullError)
    async def busy(_request: Request, exc: QueueFullError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)}
        )

    @app.exception_handler(PayloadTooLargeError)
    async def too_large(_request: Request, exc: PayloadTooLargeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413, headers={"Connection": "close"})

    @app.exception_handler(FaceStudioError)
    async def bad_input(_request: Request, exc: FaceStudioError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "path")
        return JSONResponse(
            {"detail": f"{where or 'request'}: {first.get('msg', 'invalid')}"}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": "internal error; the server log has the details"}, status_code=500
        )


def _log_failure(job: Job, exc: BaseException) -> None:
    logger.error("job %s failed", job.id, exc_info=exc)
