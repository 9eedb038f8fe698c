"""The one model the server holds, and what both front ends ask of it.

`Studio` wraps a loaded `FaceStudioPipeline`: it checks a request against the model (cheap,
in the request's thread), runs a request (on the job worker, one at a time), and finds the
faces of uploaded photos for the page's preview (its own face analyzer, so that a preview
never shares a detector with a running job). Face analysis runs without its disk cache here:
nothing derived from an uploaded photo is written anywhere.
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from facestudio.app.jobs import JobOutcome, JobResult, ProgressCallback
from facestudio.errors import FaceStudioError
from facestudio.faces.analyzer import FaceAnalyzer, FaceAnalyzerConfig, select_face
from facestudio.faces.drawing import draw_faces
from facestudio.images import load_image
from facestudio.pipeline import limits
from facestudio.pipeline.inputs import prepare_request
from facestudio.pipeline.model_info import ModelInfo, read_model_info, resolve_model
from facestudio.pipeline.request import GenerationRequest, Upload
from facestudio.provenance.credentials import SigningConfig, configured_signer
from facestudio.provenance.save import provenance_png

logger = logging.getLogger(__name__)


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
        config = FaceAnalyzerConfig.from_dict({**pipeline.config.face_analysis, "cache_dir": None})
        self._analyzer_config = config
        pipeline.set_face_analyzer(FaceAnalyzer(config))
        pipeline.set_progress_bar_config(disable=True)
        self._preview_analyzer: FaceAnalyzer | None = None
        self._checker = ThreadPoolExecutor(1, thread_name_prefix="facestudio-check")

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

    # -- the front ends' questions ---------------------------------------------------------

    def check(self, request: GenerationRequest) -> None:
        """Everything that is wrong with `request` for this model, short of finding faces: the
        request's own validation, then every uploaded image decoded once (same messages as
        the CLI's for a broken or unreadable file).

        Runs on the studio's one checking thread, whatever thread asks: many requests decoding
        photos at once would only share the CPU, and would spread their buffers over many
        threads' memory pools, which keep them."""
        request.validate(self.info)
        self._on_checking_thread(_decode_uploads, request)

    def _on_checking_thread(self, function, *args):
        return self._checker.submit(function, *args).result()

    def describe(self) -> dict:
        """The model and the limits a client must respect."""
        info = self.info
        return {
            "name": info.name,
            "text_prior": info.has_text_prior,
            "style_image": info.has_style_encoder,
            "native_size": info.native_side,
            "max_side": info.max_side,
            "size_multiple": info.vae_factor,
            "max_steps": info.max_steps,
            "max_images": limits.MAX_IMAGES_PER_CALL,
            "max_people": limits.MAX_PEOPLE,
            "max_photos_per_person": limits.MAX_PHOTOS_PER_PERSON,
            "max_upload_bytes": limits.MAX_UPLOAD_BYTES,
            "max_request_bytes": limits.MAX_REQUEST_BYTES,
            "max_guidance_scale": limits.MAX_GUIDANCE_SCALE,
        }

    def preview(self, people: list[list[Upload]], face_index: int | None) -> list[PhotoFaces]:
        """The faces of every photo, numbered largest first, and which one will be used
        (on the checking thread, with an analyzer of its own)."""
        return self._on_checking_thread(self._preview_all, people, face_index)

    def _preview_all(self, people: list[list[Upload]], face_index: int | None) -> list[PhotoFaces]:
        if self._preview_analyzer is None:
            self._preview_analyzer = FaceAnalyzer(self._analyzer_config)
        return [
            self._preview_one(person, upload, face_index)
            for person, shots in enumerate(people)
            for upload in shots
        ]

    def _preview_one(self, person: int, upload: Upload, face_index: int | None) -> PhotoFaces:
        pixels = load_image(upload.data, name=upload.name)
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
        return JobOutcome(results, prepared.warnings)


def _decode_uploads(request: GenerationRequest) -> None:
    for upload in _uploads(request):
        load_image(upload.data, name=upload.name)


def _uploads(request: GenerationRequest) -> list[Upload]:
    images = [*(shot for shots in request.people for shot in shots)]
    images += [request.style_image, request.image]
    return [image for image in images if isinstance(image, Upload)]


__all__ = ["JobResult", "PhotoFaces", "Studio"]
