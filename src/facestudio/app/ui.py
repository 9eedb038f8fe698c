"""The web page (gradio): the same request, validation, job queue and model as the HTTP API.

The page turns its widgets into the same form fields the API takes
(`GenerationRequest.from_mapping`), so both refuse bad input with the same one-line messages,
shown in the page's status line. Results are shown and downloaded from the API's image route,
so a download is the PNG exactly as made (labels and credentials intact), never a copy that
gradio re-encoded.

The page's file widgets name their files by a path on the server, which the client chooses.
Every file reference in an event's inputs, for whichever widget, goes through
`UploadFolder.resolve` before gradio acts on it (`_Page`: gradio would otherwise copy any
readable file into its cache), and the handler reads each through `UploadFolder.read`, so the
page reads only what a client uploaded to this server. (The widgets are gradio's own: a
subclass of a gradio component makes gradio write a `.pyi` stub beside this module.)
"""

from __future__ import annotations

import dataclasses
import html
import logging
import time

import gradio as gr
from gradio_client.utils import is_file_obj as is_file
from gradio_client.utils import traverse

from facestudio.app.cost import JobBudget
from facestudio.app.forms import upload_bytes
from facestudio.app.jobs import Job, JobQueue, JobStatus
from facestudio.app.messages import one_line
from facestudio.app.region_preview import RegionPreview
from facestudio.app.studio import Studio
from facestudio.app.uploads import UploadFolder, UploadRefusedError
from facestudio.errors import FaceStudioError
from facestudio.fields import speak
from facestudio.pipeline import limits
from facestudio.pipeline.model_info import ModelInfo
from facestudio.pipeline.request import (
    DEFAULT_MIXED_ALPHA,
    DEFAULT_STRENGTH,
    GenerationRequest,
    Upload,
)
from facestudio.pipeline.sizes import offered_sizes

logger = logging.getLogger(__name__)

PAGE_PEOPLE = min(4, limits.MAX_PEOPLE)
"""People the page offers (the API takes up to `limits.MAX_PEOPLE`)."""

POLL_S = 0.25
"""How often the page's handler looks at its job's progress."""

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(GenerationRequest)}

PAGE_NAMES = {
    "people": "the person photos",
    "style_image": "the Style image",
    "image": "the Content image",
    "strength": "Strength",
    "prompt": "Prompt",
    "alpha": "Style image against prompt (α)",
    "regions": "Regions",
    "width": "the Size's width",
    "height": "the Size's height",
    "num_inference_steps": "Steps",
    "seed": "Seed",
    "num_images": "Images",
    "style_guidance_scale": "Style scale",
    "face_guidance_scale": "Face scale",
    "mix_weights": "Identity mixing",
    "face_index": "Face index",
}
"""How the page's messages name the request fields that shared messages refer to: by the
widgets that fill them (`facestudio.fields`)."""

AUTO_SIZE = ""
"""The size control's value for "the size the model makes for these people"."""

CSS = """
/* The page's own styles (given to gradio when it is mounted). */
#status .error { color: #b00020; font-weight: 600; }
.fs-results { display: flex; flex-wrap: wrap; gap: 12px; }
.fs-results figure { margin: 0; text-align: center; }
.fs-results img { width: 160px; height: auto; image-rendering: pixelated; border-radius: 4px; }
"""


def build_ui(
    studio: Studio, jobs: JobQueue, uploads: UploadFolder, budget: JobBudget | None = None
) -> gr.Blocks:
    """The page: inputs on the left; status, results, the faces found and the person regions
    on the right."""
    info = studio.info
    with _Page(
        title="FaceStudio",
        analytics_enabled=False,  # the page calls no outside service
    ) as page:
        page.uploads = uploads
        gr.Markdown(
            f"# FaceStudio\nModel **{html.escape(info.name)}** ({_sizes_text(info)}). "
            "Every image is labelled as "
            "AI-generated and carries its settings. Uploaded photos are deleted after "
            f"{uploads.ttl_s / 60:.0f} minutes; results after {jobs.retention_s / 60:.0f} "
            "minutes. HTTP API: [/docs](/docs)."
        )
        with gr.Row():
            with gr.Column():
                widgets = _inputs(studio)
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                status = gr.Markdown(elem_id="status")
                results = gr.HTML(elem_id="results")
                faces = gr.Gallery(
                    label="Faces found (numbered largest first)",
                    elem_id="faces",
                    columns=4,
                    height=320,
                    object_fit="contain",
                    interactive=False,
                )
                faces_note = gr.Markdown(elem_id="faces-note")
                regions = gr.Image(
                    label="Person regions (before generating)",
                    type="pil",
                    interactive=False,
                    elem_id="regions-preview",
                )
                regions_note = gr.Markdown(elem_id="regions-note")
        inputs = set(widgets.values())
        region_preview = RegionPreview(info)

        def on_generate(values: dict, progress=gr.Progress()):  # noqa: B008 (gradio's idiom)
            form = _fields(widgets, values, uploads)
            yield from _generate(studio, jobs, budget, form, progress)

        def on_photos(values: dict):
            return _preview(studio, _fields(widgets, values, uploads))

        def on_people(values: dict):
            return size_control(info, _people_count(widgets, values))

        def on_regions(values: dict):
            return _regions(studio, region_preview, _fields(widgets, values, uploads))

        button.click(on_generate, inputs, [status, results], concurrency_limit=None)
        for name in _person_names():
            widgets[name].change(on_photos, inputs, [faces, faces_note])
            widgets[name].change(on_people, inputs, widgets["size"])
        widgets["mix"].change(on_people, inputs, widgets["size"])
        layout_widgets = [*(widgets[n] for n in _person_names()), widgets["mix"], widgets["image"]]
        layout_widgets += [widgets["style_image"]] if "style_image" in widgets else []
        for widget in layout_widgets:
            widget.change(on_regions, inputs, [regions, regions_note])
        widgets["regions"].blur(on_regions, inputs, [regions, regions_note])
        widgets["regions"].submit(on_regions, inputs, [regions, regions_note])
        widgets["face_index"].blur(on_photos, inputs, [faces, faces_note])
        widgets["face_index"].submit(on_photos, inputs, [faces, faces_note])
    return page


def _inputs(studio: Studio) -> dict[str, gr.components.Component]:
    """The widgets, by the request field (or person) each one fills."""
    info = studio.info
    widgets: dict[str, gr.components.Component] = {}
    names = _person_names()
    widgets[names[0]] = _photos(0)
    with gr.Accordion("More people", open=False):
        for number, name in enumerate(names[1:], start=1):
            widgets[name] = _photos(number)
    if info.has_style_encoder:
        widgets["style_image"] = _image_upload("Style image", "style-image")
    with gr.Accordion("Start from an image (image-to-image)", open=False):
        widgets["image"] = _image_upload("Content image", "content-image")
        widgets["strength"] = gr.Slider(0.05, 1.0, DEFAULT_STRENGTH, step=0.05, label="Strength")
    widgets["prompt"] = gr.Textbox(label="Prompt", visible=info.has_text_prior, elem_id="prompt")
    # α of hybrid guidance; it matters only with both a prompt and a style image (a prompt
    # alone is α 0), so it is sent only then.
    widgets["alpha"] = gr.Slider(
        0.0,
        1.0,
        DEFAULT_MIXED_ALPHA,
        step=0.05,
        label="Style image against prompt (α: 1 = the style image only)",
        visible=info.has_text_prior and info.has_style_encoder,
        elem_id="alpha",
    )
    widgets["size"] = size_control(info, 1)
    widgets["regions"] = gr.Textbox(
        value="auto",
        label="Regions: auto, or one box per person x0,y0,x1,y1;...",
        elem_id="regions",
    )
    with gr.Accordion("Identity mixing", open=False):
        widgets["mix"] = gr.Checkbox(label="Blend all people into one", elem_id="mix")
        for number in range(PAGE_PEOPLE):
            widgets[f"mix_{number}"] = gr.Slider(
                0.0, 1.0, 0.5, step=0.05, label=f"Person {number + 1}"
            )
    with gr.Row():
        # Text, not gr.Number: a Number cannot be empty, and empty means "draw a seed".
        widgets["seed"] = gr.Textbox(label="Seed", placeholder="random", elem_id="seed")
        widgets["num_images"] = gr.Slider(
            1,
            limits.MAX_IMAGES_PER_CALL,
            _DEFAULTS["num_images"],
            step=1,
            label="Images",
            elem_id="num-images",
        )
    with gr.Row():
        widgets["num_inference_steps"] = gr.Number(
            _DEFAULTS["num_inference_steps"],
            label="Steps",
            precision=0,
            minimum=1,
            maximum=info.max_steps,
            elem_id="steps",
        )
        widgets["face_index"] = gr.Textbox(
            label="Face index", placeholder="the largest face (0)", elem_id="face-index"
        )
    with gr.Row():
        for name, label in (
            ("style_guidance_scale", "Style scale"),
            ("face_guidance_scale", "Face scale"),
        ):
            widgets[name] = gr.Number(
                _DEFAULTS[name], label=label, minimum=0, maximum=limits.MAX_GUIDANCE_SCALE
            )
    return widgets


def size_control(info: ModelInfo, people: int) -> gr.Dropdown:
    """The size widget for `people` people: only the sizes the model makes for them (the
    declared one alone, for a model that declares its sizes), the default first."""
    offered = offered_sizes(info, people)
    default = offered[0]
    choices = [(f"{default[0]}×{default[1]} (follows the people)", AUTO_SIZE)]
    choices += [(f"{w}×{h}", f"{w}x{h}") for w, h in offered[1:]]
    return gr.Dropdown(
        choices=choices,
        value=AUTO_SIZE,
        label="Size",
        info=_sizes_text(info),
        elem_id="size",
    )


def _sizes_text(info: ModelInfo) -> str:
    """What sizes the model makes, in words."""
    if info.sizes is None:
        return f"{info.native_side}×{info.native_side} px by default"
    return f"trained at {info.sizes.trained} px; {info.sizes.rule()}"


def _people_count(widgets: dict, values: dict) -> int:
    """People the form describes: those with photos, or one when they are blended."""
    people = sum(1 for name in _person_names() if values[widgets[name]])
    return 1 if values[widgets["mix"]] and people else people


class _Page(gr.Blocks):
    """gradio's `Blocks` that checks every file reference in an event's inputs, whichever
    widget it is sent for, with `UploadFolder.resolve`, before gradio acts on it (gradio
    copies a file named in any input into its cache, opening it, before a widget sees it)."""

    uploads: UploadFolder

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        for widget, value in zip(block_fn.inputs, inputs, strict=False):
            what = _what(widget)
            traverse(value, lambda file, what=what: _resolve(self.uploads, file, what), is_file)
        return await super().preprocess_data(block_fn, inputs, state, explicit_call)


def _what(widget) -> str:
    """What a widget's file is called in messages."""
    elem_id = getattr(widget, "elem_id", None) or ""
    if elem_id.startswith("person-"):
        return f"photo of person {int(elem_id.removeprefix('person-')) + 1}"
    return elem_id.replace("-", " ") if elem_id in ("style-image", "content-image") else "file"


def _resolve(uploads: UploadFolder, file: dict, what: str) -> dict:
    """The one check (`UploadFolder.resolve`) on a file reference, as a message on the page."""
    try:
        uploads.resolve(file["path"], what)
        if str(file.get("url") or "").startswith("data:"):  # gradio would write it out
            uploads.resolve(file["url"], what)  # refused, with the same line
    except UploadRefusedError as exc:
        raise gr.Error(one_line(str(exc))) from None
    return file


def _read(uploads: UploadFolder, reference: str, what: str) -> Upload:
    """An uploaded file's bytes, read through the same check."""
    try:
        return uploads.read(reference, what)
    except UploadRefusedError as exc:
        raise gr.Error(one_line(str(exc))) from None


def _photos(number: int) -> gr.File:
    return gr.File(
        label=f"Person {number + 1}: photos (several photos = multi-shot)",
        file_count="multiple",
        file_types=["image"],
        type="filepath",
        height=140,
        elem_id=f"person-{number}",
    )


def _image_upload(label: str, elem_id: str) -> gr.Image:
    """An image the user uploads, handed over as a file path in its own mode (no conversion)."""
    return gr.Image(
        label=label, type="filepath", image_mode=None, sources=["upload"], elem_id=elem_id
    )


def _person_names() -> list[str]:
    return [f"person_{number}" for number in range(PAGE_PEOPLE)]


def _fields(
    widgets: dict, values: dict, uploads: UploadFolder
) -> tuple[dict[str, str], dict[str, list[Upload]]]:
    """The widgets' values as the API's form fields and files (the same request builder),
    the files read from the upload folder."""
    value = {name: values[widget] for name, widget in widgets.items()}
    files = {}
    people = [name for name in _person_names() if value.get(name)]
    for number, name in enumerate(people):  # people without photos close up the numbering
        what = _what(widgets[name])
        files[f"person_{number}"] = [_read(uploads, path, what) for path in value[name]]
    for name in ("style_image", "image"):
        if value.get(name):
            files[name] = [_read(uploads, value[name], _what(widgets[name]))]
    fields = {
        key: _text(value[key])
        for key in (
            "prompt",
            "regions",
            "seed",
            "num_images",
            "num_inference_steps",
            "face_index",
            "style_guidance_scale",
            "face_guidance_scale",
        )
        if key in value and value[key] is not None
    }
    if value.get("size"):
        fields["width"], fields["height"] = value["size"].split("x")
    if "image" in files:
        fields["strength"] = _text(value["strength"])
    if value.get("mix"):
        weights = [value[f"mix_{_person_names().index(name)}"] for name in people]
        fields["mix_weights"] = ",".join(_text(w) for w in weights)
    if not fields.get("prompt"):
        fields.pop("prompt", None)
    elif "style_image" in files and value.get("alpha") is not None:
        fields["alpha"] = _text(value["alpha"])
    return fields, files


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _generate(studio: Studio, jobs: JobQueue, budget: JobBudget | None, form, progress):
    """Validate, queue, follow the job, show the images: (status, results) updates."""
    try:
        request = GenerationRequest.from_mapping(*form)
        studio.check(request, budget)
        job = jobs.submit(request, size=upload_bytes(form[1]))
    except FaceStudioError as exc:
        yield _error(str(exc)), ""
        return
    yield "Queued…", ""
    while not job.status.finished:
        if job.status is JobStatus.RUNNING and job.steps_total:
            progress((job.steps_done, job.steps_total), desc="Generating", unit="steps")
        time.sleep(POLL_S)
    if job.status is JobStatus.FAILED:
        yield _error(job.error or "the job failed"), ""
        return
    yield _done(job), results_html(job)


def _error(message: str) -> str:
    return f'<span class="error">Error: {html.escape(one_line(_in_page_words(message)))}</span>'


def _in_page_words(message: str) -> str:
    """A shared message with the fields it names written as the page's widgets."""
    return speak(message, PAGE_NAMES)


def _done(job: Job) -> str:
    count = len(job.results)
    lines = [f"Done: {count} image{'s' * (count != 1)}."]
    lines += [f"Warning: {html.escape(_in_page_words(w))}" for w in job.warnings]
    return "  \n".join(lines)


def results_html(job: Job) -> str:
    """The images with their seeds and download links (the API's route: exact bytes)."""
    figures = []
    for index, result in enumerate(job.results):
        url = f"/v1/jobs/{job.id}/images/{index}"
        seed = result.metadata.get("seed")
        figures.append(
            f'<figure><img src="{url}" alt="generated image {index + 1}, seed {seed}">'
            f'<figcaption>seed {seed} · <a href="{url}" download="{job.image_name(index)}">'
            "Download PNG</a></figcaption></figure>"
        )
    return f'<div class="fs-results">{"".join(figures)}</div>'


def _preview(studio: Studio, form):
    """The faces of every photo, and which one each person's identity will come from."""
    fields, files = form
    people = [files[f"person_{n}"] for n in range(len(files)) if f"person_{n}" in files]
    if not people:
        return [], ""
    try:
        face_index = GenerationRequest.from_mapping({"face_index": fields.get("face_index", "")})
        found = studio.preview(people, face_index.face_index)
    except FaceStudioError as exc:
        return [], _error(str(exc))
    lines = [f"Person {photo.person + 1} · {photo.name}: {_faces_text(photo)}" for photo in found]
    gallery = [(photo.picture, line) for photo, line in zip(found, lines, strict=True)]
    notes = lines + [f"Warning: {_in_page_words(m)}" for photo in found for m in photo.messages]
    return gallery, "  \n".join(html.escape(note) for note in notes)


def _regions(studio: Studio, preview: RegionPreview, form):
    """Where each person will go (`RegionPreview`), or the request's one-line error."""
    try:
        request = GenerationRequest.from_mapping(*form)
        request.validate(studio.info)
        shown = preview(request)
    except FaceStudioError as exc:
        return None, _error(str(exc))
    return shown.picture, html.escape(shown.note)


def _faces_text(photo) -> str:
    if photo.used is None:
        return "no face found"
    return f"{photo.faces} face{'s' * (photo.faces != 1)}, using face {photo.used}"
