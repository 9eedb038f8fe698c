"""The one model the server holds, and what both front ends ask of it.

`Studio` wraps a loaded `FaceStudioPipeline`: it checks a request against the model and the
server's job budget (cheap, in the request's thread), decodes its uploads once to refuse a
broken one at once, runs a request (on the job worker, one at a time), and finds the faces of
uploaded photos for the page's preview (its own face analyzer, so that a preview never shares
a detector with a running job). Face analysis runs without its disk cache here: nothing
derived from an uploaded photo is written anywhere.

Decoding is bounded: a request's images may decode to at most `MAX_REQUEST_PIXELS` in all
(read from their headers, before any decoding), and images are decoded one at a time on two
threads, one for ordinary photos and one for large ones (over `LARGE_IMAGE_PIXELS`), so a
request of large images holds neither the memory of more than one of them at once nor the
ordinary photos of other clients.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from facestudio.app.cost import JobBudget
from facestudio.app.forms import PayloadTooLargeError
from facestudio.app.jobs import JobOutcome, JobResult, ProgressCallback
from facestudio.errors import FaceStudioError
from facestudio.faces.analyzer import FaceAnalyzer, FaceAnalyzerConfig, select_face
from facestudio.faces.drawing import draw_faces
from facestudio.images import load_image
from facestudio.pipeline import limits, sizes
from facestudio.pipeline.inputs import prepare_request
from facestudio.pipeline.model_info import ModelInfo, read_model_info, resolve_model
from facestudio.pipeline.request import GenerationRequest, Upload
from facestudio.provenance.credentials import SigningConfig, configured_signer
from facestudio.provenance.save import provenance_png

logger = logging.getLogger(__name__)

LARGE_IMAGE_PIXELS = 16_000_000
"""Images above this decode on the large-image thread (a 16-MP photo decodes to ~0.3 GB)."""

MAX_REQUEST_PIXELS = 256_000_000
"""Pixels all images of one request may decode to: four photos at the 64-MP limit of one,
or twenty of a 12-MP phone. Each is decoded again by its job, on the one worker."""

CALIBRATION_STEPS = 4
"""Denoising steps timed at start to measure the worker's speed (the first is a warm-up)."""


@dataclass(frozen=True)
class PhotoFaces:
    """The faces found in one uploaded photo, as the page previews them."""

    person: int
    name: str
    picture: Image.Image  # the photo with its faces drawn and numbered
    faces: int
    used: int | None  # the face that will be used; None when there is none
    messages: list[str]


class Studio:
    """One loaded pipeline, shared by the API and the page."""

    def __init__(
        self, pipeline, info: ModelInfo | None = None, signing: SigningConfig | None = None
    ) -> None:
        self.pipeline = pipeline
        self._signing = signing or configured_signer()  # a bad key setting fails at start
        self.info = info or ModelInfo.from_pipeline(pipeline)
        analysis = (
            pipeline.config.face_analysis if pipeline is not None else self.info.face_analysis
        )
        config = FaceAnalyzerConfig.from_dict({**analysis, "cache_dir": None})
        self._analyzer_config = config
        if pipeline is not None:
            pipeline.set_face_analyzer(FaceAnalyzer(config))
            pipeline.set_progress_bar_config(disable=True)
        self._preview_analyzer: FaceAnalyzer | None = None
        self._preview_lock = threading.Lock()
        self._ordinary = ThreadPoolExecutor(1, thread_name_prefix="facestudio-decode")
        self._large = ThreadPoolExecutor(1, thread_name_prefix="facestudio-decode-large")

    @classmethod
    def load(cls, model: str | None = None, device: str = "cpu") -> Studio:
        """Load `model` (a folder, a hub id, or None / "bundled" for the shipped model)."""
        path = resolve_model(model)
        info = read_model_info(path)  # a damaged folder fails here, before torch loads
        import diffusers
        import transformers

        from facestudio.pipeline.pipeline import FaceStudioPipeline

        # Loading takes seconds and its per-file bars are noise in a server's log.
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        pipeline = FaceStudioPipeline.from_pretrained(path).to(device)
        return cls(pipeline, info)

    @classmethod
    def described(cls, model: str | None = None) -> Studio:
        """The model as its config files describe it, without its weights: what a server that
        only queues jobs for workers needs (checks, limits, face previews). It runs no job."""
        info = read_model_info(model)
        if info is None:
            raise FaceStudioError(
                f"model '{model}': a server without the model reads its configs from a folder; "
                "give the folder the workers load (a copy of it is enough)"
            )
        return cls(None, info)

    # -- the front ends' questions ---------------------------------------------------------

    def check(self, request: GenerationRequest, budget: JobBudget | None = None) -> None:
        """Everything that is wrong with `request` for this model and `budget`, short of
        finding faces: the request's own validation, its cost, the pixels of its images, then
        every uploaded image decoded once (the CLI's messages for a broken file).

        Images decode one at a time, each on the thread for its size (see the module's
        docstring): few threads, because many would only share the CPU and each would keep
        its own pool of freed buffers."""
        request.validate(self.info)
        if budget is not None:
            budget.check(request, self.info)
        uploads = _uploads(request)
        pixels = [_pixels(upload) for upload in uploads]
        if sum(pixels) > MAX_REQUEST_PIXELS:
            raise PayloadTooLargeError(
                f"the images of this request decode to {sum(pixels) / 1e6:.0f} megapixels; at "
                f"most {MAX_REQUEST_PIXELS / 1e6:.0f} per request: downscale them (a face needs "
                "far less than one megapixel)"
            )
        for upload, size in zip(uploads, pixels, strict=True):
            self._decode_thread(size).submit(_decode, upload).result()

    def _decode_thread(self, pixels: int) -> ThreadPoolExecutor:
        return self._large if pixels > LARGE_IMAGE_PIXELS else self._ordinary

    @functools.cached_property
    def seconds_per_pixel_step(self) -> float:
        """Seconds one denoising step takes per output pixel on this machine, timed once at
        the model's native size with one image (where a pixel costs the most)."""
        info = self.info
        embedding = np.full(info.face_dim, 1 / np.sqrt(info.face_dim), np.float32)
        request = GenerationRequest(
            people=[[embedding]], num_inference_steps=CALIBRATION_STEPS, seed=0
        )
        stamps: list[float] = []

        def stamp(pipeline, step_index: int, timestep, callback_kwargs: dict) -> dict:
            stamps.append(time.perf_counter())
            return {}

        self.pipeline(request=request, callback_on_step_end=stamp)
        step_s = float(np.median(np.diff(stamps)))
        return max(step_s, 1e-6) / info.native_side**2

    def describe(self, budget: JobBudget | None = None) -> dict:
        """The model and the limits a client must respect."""
        info = self.info
        return {
            **(budget.describe() if budget is not None else {}),
            "name": info.name,
            "text_prior": info.has_text_prior,
            "style_image": info.has_style_encoder,
            "native_size": info.native_side,
            "sizes": sizes.describe(info),  # what it makes well, by number of people
            "size_multiple": info.vae_factor,
            "max_steps": info.max_steps,
            "max_images": limits.MAX_IMAGES_PER_CALL,
            "max_people": limits.MAX_PEOPLE,
            "max_photos_per_person": limits.MAX_PHOTOS_PER_PERSON,
            "max_upload_bytes": limits.MAX_UPLOAD_BYTES,
            "max_request_bytes": limits.MAX_REQUEST_BYTES,
            "max_guidance_scale": limits.MAX_GUIDANCE_SCALE,
            "max_request_pixels": MAX_REQUEST_PIXELS,
        }

    def preview(self, people: list[list[Upload]], face_index: int | None) -> list[PhotoFaces]:
        """The faces of every photo, numbered largest first, and which one will be used (each
        photo on the decoding thread for its size, with an analyzer of the preview's own)."""
        return [
            self._decode_thread(_pixels(upload))
            .submit(self._preview_one, person, upload, face_index)
            .result()
            for person, shots in enumerate(people)
            for upload in shots
        ]

    def _preview_one(self, person: int, upload: Upload, face_index: int | None) -> PhotoFaces:
        pixels = load_image(upload.data, name=upload.name)
        with self._preview_lock:  # one analyzer, used by one thread at a time
            if self._preview_analyzer is None:
                self._preview_analyzer = FaceAnalyzer(self._analyzer_config)
            faces = self._preview_analyzer.analyze(pixels)
        faces = dataclasses.replace(faces, source=upload.name)
        picture = draw_faces(pixels, faces.faces)
        try:
            used, _, messages = select_face(faces, face_index)
        except FaceStudioError as exc:
            used, messages = None, [str(exc)]
        return PhotoFaces(person, upload.name, picture, len(faces.faces), used, messages)

    # -- the worker's job ------------------------------------------------------------------

    def run(self, request: GenerationRequest, progress: ProgressCallback) -> JobOutcome:
        """Generate the images of `request` and encode them as labelled, signed PNGs, reporting
        (steps done, steps in all) before the first denoising step and after each."""
        prepared = prepare_request(request, lambda: self.pipeline.face_analyzer, self.info)
        from facestudio.pipeline.pipeline import denoising_steps

        total = denoising_steps(request.num_inference_steps, request.effective_strength)

        def report_step(pipeline, step_index: int, timestep, callback_kwargs: dict) -> dict:
            progress(step_index + 1, total)
            return {}

        progress(0, total)
        output = self.pipeline(request=request, prepared=prepared, callback_on_step_end=report_step)
        results = []
        for image, metadata in zip(output.images, output.metadata, strict=True):
            name = f"facestudio-seed{metadata.get('seed')}.png"
            data = provenance_png(image, metadata, name, self._signing)
            results.append(JobResult(data, metadata))
        return JobOutcome(results, output.metadata[0]["warnings"])


def _decode(upload: Upload) -> None:
    load_image(upload.data, name=upload.name)


def _pixels(upload: Upload) -> int:
    """The pixels an image's header declares (0 when there is no header to read: the loader
    then refuses it, at once)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(upload.data)) as image:
                return image.width * image.height
    except Exception:  # any unreadable header: `load_image` names the problem
        return 0


def _uploads(request: GenerationRequest) -> list[Upload]:
    images = [*(shot for shots in request.people for shot in shots)]
    images += [request.style_image, request.image]
    return [image for image in images if isinstance(image, Upload)]


__all__ = ["JobResult", "PhotoFaces", "Studio"]
