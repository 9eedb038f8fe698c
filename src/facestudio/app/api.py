"""The HTTP API (`/v1`): submit a generation, follow its job, download its images.

Every route speaks JSON except the image route, which returns the PNG exactly as it was made
(labels and content credentials included). Errors are `{"detail": "<one line>"}` with the
status that says whose move it is: 400 a malformed body, 422 bad input (the CLI's messages,
naming this API's form fields where the CLI names its options), 413 too large, 429 busy (with `Retry-After`), 408 a body that stalled, 404 unknown
or expired job, 409 not finished yet.
"""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from facestudio.app.cost import JobBudget
from facestudio.app.forms import read_form, upload_bytes
from facestudio.app.jobs import Job, JobQueue, JobStatus
from facestudio.app.messages import one_line
from facestudio.app.studio import Studio
from facestudio.pipeline import limits
from facestudio.pipeline.request import GenerationRequest

FIELD_HELP = {
    "strength": "image-to-image noise strength (0, 1]; needs image",
    "prompt": "text (models with a text prior only)",
    "regions": "'auto' or boxes 'x0,y0,x1,y1;...' in output pixels, one per person",
    "width": "output width in pixels (default: what the model makes for this many people; "
    "a model that declares its sizes refuses others: see `sizes` in /v1/models)",
    "height": "output height in pixels (default: as for width)",
    "num_inference_steps": "denoising steps",
    "seed": "seed of the first image (image i uses seed + i); empty draws one",
    "num_images": f"images to make (1 to {limits.MAX_IMAGES_PER_CALL})",
    "style_guidance_scale": "guidance scale for style and text",
    "face_guidance_scale": "guidance scale for identity",
    "alpha": "image-branch weight against text (0 to 1)",
    "mix_weights": "blend all people into one with these weights, e.g. '0.7,0.3'",
    "face_index": "which face of each photo (0 = the largest)",
    "background": "'random' or 'all': what areas outside every person see",
    "auto_crop": "'true': centre-crop the content image to the output's aspect ratio",
}
"""Help for the form fields in the OpenAPI document; the fields themselves are
`GenerationRequest`'s (it refuses unknown names)."""

FILE_HELP = {
    "person_0": "photos of person 1 (repeat the field for several photos: multi-shot)",
    "person_1": f"photos of person 2; person_2 ... up to person_{limits.MAX_PEOPLE - 1} likewise",
    "style_image": "style / composition image",
    "image": "content image for image-to-image",
}


def _form_schema() -> dict:
    photos = {"type": "array", "items": {"type": "string", "format": "binary"}}
    properties = {
        name: {
            **(photos if name.startswith("person_") else {"type": "string", "format": "binary"}),
            "description": text,
        }
        for name, text in FILE_HELP.items()
    }
    for field in dataclasses.fields(GenerationRequest):
        if field.name not in ("people", "style_image", "image"):
            properties[field.name] = {
                "type": "string",
                "description": FIELD_HELP.get(field.name, ""),
            }
    schema = {"type": "object", "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


def build_router(studio: Studio, jobs: JobQueue, budget: JobBudget | None = None) -> APIRouter:
    """The `/v1` routes and `/healthz`, served from one model and one job queue, with jobs
    limited to `budget`."""
    router = APIRouter()

    @router.post(
        "/v1/generations",
        status_code=202,
        openapi_extra=_form_schema(),
        summary="Queue a generation",
        responses={400: {}, 408: {}, 413: {}, 422: {}, 429: {}},
    )
    async def create_generation(request: Request, response: Response) -> dict:
        """Validate the form at once (422 with one line); queue the job (429 when full)."""
        fields, files = await read_form(request)
        generation = GenerationRequest.from_mapping(fields, files)
        await run_in_threadpool(studio.check, generation, budget)
        job = jobs.submit(generation, size=upload_bytes(files))
        response.headers["Location"] = f"/v1/jobs/{job.id}"
        return job_view(job, jobs)

    @router.get("/v1/jobs/{job_id}", summary="A job's status, progress and result URLs")
    def get_job(job_id: str) -> dict:
        return job_view(_job(jobs, job_id), jobs)

    @router.delete(
        "/v1/jobs/{job_id}",
        status_code=204,
        summary="Cancel a job (a running one stops at its next step), delete its images",
    )
    def delete_job(job_id: str) -> Response:
        if not jobs.delete(job_id):
            raise HTTPException(404, _unknown(job_id))
        return Response(status_code=204)

    @router.get(
        "/v1/jobs/{job_id}/images/{index}",
        summary="One image, the PNG exactly as made (labels, credentials)",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, 404: {}, 409: {}},
    )
    def get_image(job_id: str, index: int) -> Response:
        job = _job(jobs, job_id)
        if job.status is not JobStatus.SUCCEEDED:
            reason = job.error if job.status is JobStatus.FAILED else f"it is {job.status}"
            raise HTTPException(409, f"job {job_id} has no images: {reason}")
        if not 0 <= index < len(job.results):
            raise HTTPException(
                404, f"job {job_id} has images 0 to {len(job.results) - 1}, not {index}"
            )
        return Response(
            job.results[index].data,
            media_type="image/png",
            headers={
                "Content-Disposition": f'attachment; filename="{job.image_name(index)}"',
                "Cache-Control": "private, no-store",
            },
        )

    @router.get(
        "/v1/models",
        summary="The model this server runs and its limits, with the sizes it makes (`sizes`)",
    )
    def get_models() -> dict:
        return {"models": [studio.describe(budget)]}

    @router.get("/healthz", summary="Liveness, the model, the queue and the worker")
    def healthz() -> dict:
        return {"status": "ok", "model": studio.info.name, "queue": jobs.stats()}

    return router


def job_view(job: Job, jobs: JobQueue) -> dict:
    """The JSON of a job: what a client polls."""
    view = {
        "id": job.id,
        "status": str(job.status),
        "progress": round(job.progress, 4),
        "url": f"/v1/jobs/{job.id}",
        "created": job.created,
    }
    if job.status is JobStatus.QUEUED:
        view["position"] = jobs.position(job.id)
    if job.status.finished:
        view["finished"] = job.finished
        view["expires"] = (job.finished or 0) + jobs.retention_s
    if job.status is JobStatus.SUCCEEDED:
        view["images"] = [
            {"url": f"/v1/jobs/{job.id}/images/{i}", "seed": r.metadata.get("seed")}
            for i, r in enumerate(job.results)
        ]
        view["warnings"] = job.warnings
    if job.status is JobStatus.FAILED:
        view["error"] = one_line(job.error or "the job failed")
    return view


def _job(jobs: JobQueue, job_id: str) -> Job:
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(404, _unknown(job_id))
    return job


def _unknown(job_id: str) -> str:
    return f"no job {job_id}: it never existed, was deleted, or its results expired"
