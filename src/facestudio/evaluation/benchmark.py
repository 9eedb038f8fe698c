"""`facestudio eval`: a benchmark definition run on a pipeline, scored with the field's metrics.

A definition (YAML or JSON) lists identities: the photos to condition on and *other* photos of
the same person to score against. Each case (identity × style × prompt × seed × image) is
generated for every ablation: with the identity, without it (null face embedding) and with an
impostor (the next identity's photos, scored against this identity's references). Real photo
pairs give the ceiling; the conditioning photo as a portrait at the model's resolution, and
that portrait through the model's autoencoder, give the ceilings a model of that size can
reach. Multi-person cases put several identities in one image.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import stats
from tqdm import tqdm

from facestudio.configuration import PositiveInt, Seed, load_dataclass
from facestudio.data.prepare import PORTRAIT_FACE_FRACTION
from facestudio.errors import FaceStudioError, NoFaceError
from facestudio.evaluation.face_scoring import FaceScorer, ImageScore, copy_paste, similarity
from facestudio.faces.alignment import portrait_template, warp_to_template
from facestudio.images import load_image, read_image_header
from facestudio.model import latent_space
from facestudio.outputs import encode_png, staged_folder
from facestudio.pipeline import to_pixels
from facestudio.structured_files import quote

ABLATIONS = ("identity", "no_identity", "impostor")


@dataclass
class IdentityCase:
    name: str
    condition: list[str]
    reference: list[str]


@dataclass
class MultiPersonCase:
    people: list[str]
    style: str | None = None
    width: PositiveInt | None = None  # output size; default the model's
    height: PositiveInt | None = None


@dataclass
class BenchmarkDefinition:
    identities: list[IdentityCase]
    styles: list[str | None] = field(default_factory=lambda: [None])
    prompts: list[str | None] = field(default_factory=lambda: [None])
    seeds: list[Seed] = field(default_factory=lambda: [0])
    images_per_case: PositiveInt = 1
    steps: PositiveInt = 25
    style_guidance_scale: float = 5.0
    face_guidance_scale: float = 5.0
    multi_person: list[MultiPersonCase] = field(default_factory=list)

    def sampling(self) -> dict:
        """The pipeline arguments every generation of this benchmark shares."""
        return {
            "num_inference_steps": self.steps,
            "style_guidance_scale": self.style_guidance_scale,
            "face_guidance_scale": self.face_guidance_scale,
        }


def load_definition(path: str | Path) -> BenchmarkDefinition:
    """Read a benchmark definition (YAML or JSON, checked key by key); photo paths are
    relative to its folder."""
    path = Path(path)
    definition = load_dataclass(path, BenchmarkDefinition, what="benchmark definition")
    _check_cases(definition, quote(path))
    root = path.parent

    def resolve(photo: str | None) -> str | None:
        return None if photo is None else str(photo if Path(photo).is_absolute() else root / photo)

    for identity in definition.identities:
        identity.condition = [resolve(p) for p in identity.condition]
        identity.reference = [resolve(p) for p in identity.reference]
    for case in definition.multi_person:
        case.style = resolve(case.style)
    definition.styles = [resolve(s) for s in definition.styles] or [None]
    definition.prompts = definition.prompts or [None]
    return definition


def _check_cases(definition: BenchmarkDefinition, source: str) -> None:
    """What the types cannot say: two people at least, each named once with photos of both
    kinds, and multi-person cases naming them."""
    if len(definition.identities) < 2:
        raise FaceStudioError(
            f"{source} needs at least two identities (the impostor ablation uses another person)"
        )
    names: set[str] = set()
    for identity in definition.identities:
        if identity.name in names:
            raise FaceStudioError(
                f"identity {quote(identity.name)} appears twice in {source}; give each a different name"
            )
        names.add(identity.name)
        if not identity.condition or not identity.reference:
            raise FaceStudioError(
                f"identity {quote(identity.name)} in {source} needs at least one condition and "
                "one reference photo"
            )
    _check_seeds(definition, source)
    for case in definition.multi_person:
        missing = [p for p in case.people if p not in names]
        if missing or not case.people:
            raise FaceStudioError(
                f"a multi_person case in {source} names "
                + (f"unknown identity {quote(missing[0])}" if missing else "nobody")
                + "; name identities of the benchmark"
            )


def _check_seeds(definition: BenchmarkDefinition, source: str) -> None:
    """Image i of a case uses seed + i, so each seed covers `images_per_case` consecutive seeds:
    two seeds whose ranges meet would generate, and count, the same images twice."""
    count = definition.images_per_case
    taken: dict[int, int] = {}
    for seed in definition.seeds:
        for image_seed in range(seed, seed + count):
            if image_seed in taken:
                raise FaceStudioError(
                    f"seeds {taken[image_seed]} and {seed} in {source} both generate seed "
                    f"{image_seed} (image i of a case uses seed + i, images_per_case = {count}); "
                    f"give seeds at least {count} apart, e.g. "
                    f"{[i * count for i in range(len(definition.seeds))]}"
                )
            taken[image_seed] = seed


def photos(definition: BenchmarkDefinition) -> list[str]:
    """Every photo a benchmark reads: conditioning, reference and style images."""
    found = [p for i in definition.identities for p in (*i.condition, *i.reference)]
    found += [s for s in definition.styles if s]
    found += [c.style for c in definition.multi_person if c.style]
    return list(dict.fromkeys(found))


def check_photos(definition: BenchmarkDefinition) -> None:
    """Every photo a regular image file with a readable header, so that a missing, FIFO or
    broken photo is one line before the models load, not after."""
    for photo in photos(definition):
        read_image_header(photo)


def run_benchmark(
    pipeline,
    definition: BenchmarkDefinition,
    scorer: FaceScorer,
    out: str | Path,
    ablations: tuple[str, ...] = ABLATIONS,
    clip_scorer=None,
    progress: bool = False,
) -> dict:
    """Generate, score and write results.json, results.md and one image grid per identity
    (`progress`: a bar on stderr counting the pipeline calls of the single-person cases)."""
    out = Path(out)
    if definition.prompts != [None] and pipeline.prior is None:
        raise FaceStudioError(
            "the benchmark has prompts but this model has no text prior; remove the prompts"
        )
    references = {i.name: scorer.reference(i.reference) for i in definition.identities}
    inputs = {i.name: _input_faces(scorer, i) for i in definition.identities}
    rows, grids, generated_faces = [], {}, {}
    generate_seconds = score_seconds = 0.0
    scored_images = 0
    # Each person's conditioning embedding is computed once (multi-shot over their photos).
    conditioning = {
        i.name: pipeline.face_analyzer.multi_shot(i.condition).embedding
        for i in definition.identities
    }
    calls = len(definition.styles) * len(definition.prompts) * len(definition.seeds)
    bar = tqdm(
        total=len(definition.identities) * calls * len(ablations),
        desc="eval",
        unit="call",
        disable=not progress,
    )
    for position, case in enumerate(definition.identities):
        impostor = definition.identities[(position + 1) % len(definition.identities)]
        conditions = {
            "identity": [conditioning[case.name]],
            "no_identity": None,
            "impostor": [conditioning[impostor.name]],
        }
        for style_path in definition.styles:
            style = Image.fromarray(load_image(style_path)) if style_path else None
            for prompt in definition.prompts:
                for seed in definition.seeds:
                    for ablation in ablations:
                        start = time.perf_counter()
                        result = pipeline(
                            prompt=prompt,
                            identities=conditions[ablation],
                            style_image=style,
                            num_images_per_prompt=definition.images_per_case,
                            seed=seed,
                            **definition.sampling(),
                        )
                        generate_seconds += time.perf_counter() - start
                        bar.update()
                        for index, image in enumerate(result.images):
                            start = time.perf_counter()
                            pixels = np.asarray(image.convert("RGB"))
                            score = scorer.score(pixels, [references[case.name]])
                            score_seconds += time.perf_counter() - start
                            scored_images += 1
                            rows.append(
                                {
                                    "identity": case.name,
                                    "ablation": ablation,
                                    "style": style_path,
                                    "prompt": prompt,
                                    "seed": seed + index,
                                    "similarity": score.similarity,
                                    "detected": score.detected,
                                }
                            )
                            grids.setdefault(case.name, {}).setdefault(ablation, []).append(image)
                            if ablation == "identity":
                                rows[-1].update(
                                    likeness_to_input(
                                        score, references[case.name], inputs[case.name]
                                    )
                                )
                                if score.detected:
                                    generated_faces.setdefault(case.name, []).append(score.subject)
                            if clip_scorer is not None and prompt is not None:
                                rows[-1]["clip_t"] = clip_scorer(image, prompt)
    bar.close()
    multi_rows, multi_images = _multi_person(pipeline, definition, scorer, references, conditioning)
    ceiling = _ceiling(inputs, references)
    summary = summarize(rows, multi_rows, ceiling, generated_faces, ablations)
    summary["resolution_ceilings"] = resolution_ceilings(pipeline, definition, scorer, references)
    summary.update(
        {
            "biased_scoring": scorer.biased,
            "scorer": scorer.analyzer.backend.recognizer_id(),
            "sampling": definition.sampling(),
            "generated_images": scored_images,
            "generation_images_per_s": round(scored_images / max(generate_seconds, 1e-9), 3),
            "scoring_images_per_s": round(scored_images / max(score_seconds, 1e-9), 2),
        }
    )
    files = grid_files([i.name for i in definition.identities])
    results = {"summary": summary, "images": rows, "multi_person": multi_rows}
    results["grids"] = {name: f"grids/{files[name]}" for name in grids}
    outputs = {
        "results.json": json.dumps(results, indent=2).encode(),
        "results.md": markdown_table(summary).encode(),
    }
    for name, by_ablation in grids.items():
        outputs[f"grids/{files[name]}"] = encode_png(
            _grid(definition, name, by_ablation, ablations)
        )
    if multi_images:
        outputs[f"grids/{MULTI_PERSON_GRID}"] = encode_png(_multi_person_grid(multi_images))
    write_results(out, outputs)
    return summary


def write_results(out: Path, outputs: dict[str, bytes]) -> None:
    """All of `outputs` (relative paths) in the new folder `out`, or nothing: they are written
    to a temporary folder beside it, renamed to `out` at the end and removed on any failure,
    so a failed run leaves nothing that would stop its rerun."""
    with staged_folder(out) as folder:
        (folder / "grids").mkdir()
        for relative, data in outputs.items():
            (folder / relative).write_bytes(data)


MULTI_PERSON_GRID = "multi_person.png"
MAX_STEM = 100
"""Characters of a grid file's name made from an identity name (file systems allow 255 bytes)."""


def grid_files(names: list[str]) -> dict[str, str]:
    """Each identity's grid file name: its name made safe (`lfw/Jane_Doe` → `lfw_Jane_Doe.png`);
    names that would share a file (`x/y` and `x_y`, names alike in their first 100 characters
    or but for case, or `multi_person`) get a short hash of the name as well."""
    plain = {name: f"{file_name(name)}.png" for name in names}
    clashes = Counter(f.casefold() for f in [*plain.values(), MULTI_PERSON_GRID])
    return {
        name: file if clashes[file.casefold()] == 1 else f"{file[:-4]}-{_short_hash(name)}.png"
        for name, file in plain.items()
    }


def _short_hash(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def file_name(name: str) -> str:
    """An identity name (e.g. `lfw/Jane_Doe`) as one safe file name stem (see `grid_files`)."""
    return re.sub(r"[^\w.-]+", "_", name).strip("._")[:MAX_STEM] or "identity"


def _multi_person_grid(images: list[list[Image.Image]]) -> Image.Image:
    """One row per multi-person case, one column per seed."""
    width = max(i.width for row in images for i in row)
    height = max(i.height for row in images for i in row)
    grid = Image.new("RGB", (width * max(map(len, images)), height * len(images)), "white")
    for r, row in enumerate(images):
        for c, image in enumerate(row):
            grid.paste(image, (c * width, r * height))
    return grid


def _multi_person(
    pipeline, definition, scorer, references, conditioning
) -> tuple[list[dict], list[list[Image.Image]]]:
    rows, images = [], []
    for case in definition.multi_person:
        style = Image.fromarray(load_image(case.style)) if case.style else None
        images.append([])
        for seed in definition.seeds:
            result = pipeline(
                identities=[conditioning[p] for p in case.people],
                style_image=style,
                regions="auto",
                seed=seed,
                **definition.sampling(),
                width=case.width,
                height=case.height,
            )
            images[-1].append(result.images[0])
            pixels = np.asarray(result.images[0].convert("RGB"))
            score = scorer.score(pixels, [references[p] for p in case.people])
            faces = scorer.analyzer.detect(pixels)
            own = _closer_to_own(scorer, pixels, faces, [references[p] for p in case.people])
            rows.append(
                {
                    "people": case.people,
                    "style": case.style,
                    "seed": seed,
                    "min_similarity": score.similarity,
                    "per_person": score.per_person,
                    "all_detected": score.detected,
                    "closer_to_own": own,
                }
            )
    return rows, images


def _closer_to_own(scorer, pixels, faces, references) -> list[bool] | None:
    """For each person (left to right), is the face in their region closer to them than to the others?"""
    if len(faces) < len(references):
        return None
    ordered = sorted(faces[: len(references)], key=lambda f: f.center[0])
    result = []
    for person, face in enumerate(ordered):
        embedding = scorer.analyzer.embed(pixels, face)
        similarities = [float((np.atleast_2d(r) @ embedding).mean()) for r in references]
        result.append(int(np.argmax(similarities)) == person)
    return result


def _input_faces(scorer: FaceScorer, case: IdentityCase) -> np.ndarray | None:
    """The scorer's embeddings of a person's conditioning photos, for Sim(Ref) and the
    real-photo ceiling; None where its detector finds no face in any of them (detectors
    differ), which leaves both unmeasured for that person."""
    try:
        return scorer.reference(case.condition)
    except NoFaceError:
        return None


def likeness_to_input(
    score: ImageScore, ground_truth: np.ndarray, condition: np.ndarray | None
) -> dict:
    """Sim(Ref), the generated face against the conditioning photos (0 for a miss, as Sim(GT)),
    and WithAnyone's copy-paste score (detected faces only); None where unmeasured."""
    if condition is None:
        return {"similarity_to_condition": None, "copy_paste": None}
    if not score.detected:
        return {"similarity_to_condition": 0.0, "copy_paste": None}
    return {
        "similarity_to_condition": similarity(score.subject, condition),
        "copy_paste": copy_paste(score.subject, ground_truth, condition),
    }


def _ceiling(inputs: dict, references: dict) -> list[float]:
    """Real photos: each conditioning photo (`inputs`, the scorer's embeddings of them) against
    the same person's reference photos."""
    return [
        similarity(embedding, references[name])
        for name, embeddings in inputs.items()
        if embeddings is not None
        for embedding in embeddings
    ]


@torch.no_grad()
def resolution_ceilings(pipeline, definition, scorer, references, size: int | None = None) -> dict:
    """What a model of this size could reach: each conditioning photo as a face-centred portrait
    at `size` (default: the model's output size; framed as `facestudio prepare` frames training
    photos), scored as is and after a round trip through the model's autoencoder."""
    size = size or pipeline.unet.config.sample_size * pipeline.vae_scale_factor
    template = portrait_template(size, PORTRAIT_FACE_FRACTION)
    vae = pipeline.vae
    portrait_scores, autoencoder_scores = [], []
    for case in definition.identities:
        for photo in case.condition:
            image = load_image(photo)
            face = pipeline.face_analyzer.identity(image).face
            portrait = warp_to_template(image, face.landmarks, template, size)
            latents = latent_space.encode(vae, to_pixels(portrait, size, size))
            # The pipeline's own decoding, so the round trip ends exactly as a generation does.
            rebuilt = pipeline._decode(latents, "np")[0]
            portrait_scores.append(scorer.score(portrait, [references[case.name]]).similarity)
            autoencoder_scores.append(scorer.score(rebuilt, [references[case.name]]).similarity)
    return {
        "size": size,
        "portrait": round(float(np.mean(portrait_scores)), 4),
        "portrait_through_autoencoder": round(float(np.mean(autoencoder_scores)), 4),
        "portrait_scores": [round(v, 4) for v in portrait_scores],
        "autoencoder_scores": [round(v, 4) for v in autoencoder_scores],
    }


def summarize(rows, multi_rows, ceiling, generated_faces, ablations) -> dict:
    summary: dict = {"ablations": {}}
    per_identity: dict[str, dict[str, float]] = {}
    for ablation in ablations:
        chosen = [r for r in rows if r["ablation"] == ablation]
        if not chosen:
            continue
        detected = [r["similarity"] for r in chosen if r["detected"]]
        summary["ablations"][ablation] = {
            "images": len(chosen),
            "similarity_misses_as_0": round(float(np.mean([r["similarity"] for r in chosen])), 4),
            "similarity_detected_only": round(float(np.mean(detected)), 4) if detected else None,
            "detection_rate": round(len(detected) / len(chosen), 4),
        }
        summary["ablations"][ablation].update(_input_likeness_summary(chosen))
        for r in chosen:
            per_identity.setdefault(r["identity"], {}).setdefault(ablation, []).append(
                r["similarity"]
            )
        clip = [r["clip_t"] for r in chosen if "clip_t" in r]
        if clip:
            summary["ablations"][ablation]["clip_t"] = round(float(np.mean(clip)), 4)
    summary["real_photo_ceiling"] = round(float(np.mean(ceiling)), 4) if ceiling else None
    means = {
        name: {a: float(np.mean(v)) for a, v in values.items()}
        for name, values in per_identity.items()
    }
    summary["per_identity"] = {n: {a: round(v, 4) for a, v in m.items()} for n, m in means.items()}
    summary["paired_tests"] = {}
    for other in ("no_identity", "impostor"):
        pairs = [
            (m["identity"], m[other]) for m in means.values() if "identity" in m and other in m
        ]
        if len(pairs) >= 2:
            with_id, without = np.array(pairs).T
            difference = with_id - without
            test = (
                stats.ttest_rel(with_id, without) if np.any(difference != difference[0]) else None
            )
            summary["paired_tests"][f"identity_vs_{other}"] = {
                "people": len(pairs),
                "mean_difference": round(float(difference.mean()), 4),
                "t_test_p": None if test is None else float(test.pvalue),
            }
    diversity = []
    for embeddings in generated_faces.values():
        if len(embeddings) >= 2:
            stacked = np.stack(embeddings)
            cosine = stacked @ stacked.T
            upper = cosine[np.triu_indices(len(embeddings), 1)]
            diversity.append(float(np.mean(1 - upper)))
    summary["diversity"] = round(float(np.mean(diversity)), 4) if diversity else None
    if multi_rows:
        closer = [c for r in multi_rows if r["closer_to_own"] for c in r["closer_to_own"]]
        summary["multi_person"] = {
            "images": len(multi_rows),
            "min_pair_similarity": round(
                float(np.mean([r["min_similarity"] for r in multi_rows])), 4
            ),
            "all_faces_detected_rate": round(
                float(np.mean([r["all_detected"] for r in multi_rows])), 4
            ),
            "faces_closer_to_own_reference": round(float(np.mean(closer)), 4) if closer else None,
        }
    return summary


def _input_likeness_summary(rows: list[dict]) -> dict:
    """Mean Sim(Ref) (misses as 0) and copy-paste over the rows that measured them; nothing
    for rows that did not (ablations other than the identity one)."""
    to_input = [
        r["similarity_to_condition"] for r in rows if r.get("similarity_to_condition") is not None
    ]
    if not to_input:
        return {}
    pastes = [r["copy_paste"] for r in rows if r.get("copy_paste") is not None]
    return {
        "similarity_to_condition_misses_as_0": round(float(np.mean(to_input)), 4),
        "copy_paste": round(float(np.mean(pastes)), 4) if pastes else None,
    }


def markdown_table(summary: dict) -> str:
    lines = [
        "| condition | images | similarity (misses = 0) | similarity (detected) | detection rate |",
        "|---|---|---|---|---|",
    ]
    names = {
        "identity": "with identity",
        "no_identity": "without identity",
        "impostor": "impostor identity",
    }
    for ablation, values in summary["ablations"].items():
        detected = (
            "–"
            if values["similarity_detected_only"] is None
            else f"{values['similarity_detected_only']:.3f}"
        )
        lines.append(
            f"| {names[ablation]} | {values['images']} | {values['similarity_misses_as_0']:.3f} | {detected} | "
            f"{values['detection_rate']:.2f} |"
        )
    if summary.get("real_photo_ceiling") is not None:
        lines.append(
            f"| two real photos (ceiling) | – | {summary['real_photo_ceiling']:.3f} | – | – |"
        )
    if summary.get("resolution_ceilings"):
        c = summary["resolution_ceilings"]
        lines.append(
            f"| real photo as a {c['size']}-px portrait (ceiling at this size) | – | {c['portrait']:.3f} | – | – |"
        )
        lines.append(
            f"| … through the model's autoencoder (ceiling of this model) | – | {c['portrait_through_autoencoder']:.3f} | – | – |"
        )
    notes = [
        f"Scorer: `{summary['scorer']}`"
        + (
            " — **biased: the model is conditioned on it**"
            if summary["biased_scoring"]
            else " (independent of the model's face encoder)."
        )
    ]
    notes += _input_likeness_notes(summary["ablations"])
    for name, test in summary.get("paired_tests", {}).items():
        p = "n/a" if test["t_test_p"] is None else f"{test['t_test_p']:.3g}"
        notes.append(
            f"{name}: mean difference {test['mean_difference']:+.3f} over {test['people']} people, paired t-test p = {p}."
        )
    if summary.get("diversity") is not None:
        notes.append(
            f"Diversity (mean 1 − cosine between generated faces of one identity): {summary['diversity']:.3f}."
        )
    if "multi_person" in summary:
        m = summary["multi_person"]
        notes.append(
            f"Multi-person: min-pair similarity {m['min_pair_similarity']:.3f}, all faces found in {m['all_faces_detected_rate']:.0%}, faces closer to their own reference: {m['faces_closer_to_own_reference']}."
        )
    notes.append(
        f"Speed: generation {summary['generation_images_per_s']} images/s, scoring {summary['scoring_images_per_s']} images/s."
    )
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"


def _input_likeness_notes(ablations: dict) -> list[str]:
    identity = ablations.get("identity", {})
    if "similarity_to_condition_misses_as_0" not in identity:
        return []
    paste = identity["copy_paste"]
    return [
        f"Likeness to the input (with identity): Sim(Ref) {identity['similarity_to_condition_misses_as_0']:.3f} "
        f"against the conditioning photos, beside Sim(GT) {identity['similarity_misses_as_0']:.3f} "
        "against the person's other photos (misses = 0 in both); copy-paste "
        + ("–" if paste is None else f"{paste:+.3f}")
        + " (WithAnyone's score: +1 sits on the input photo, −1 on the other photos)."
    ]


def _grid(definition, name, by_ablation, ablations) -> Image.Image:
    """Reference photo, then the generated images, one row per ablation."""
    case = next(i for i in definition.identities if i.name == name)
    size = 128
    reference = Image.fromarray(load_image(case.reference[0])).resize((size, size))
    rows = [a for a in ablations if a in by_ablation]
    columns = 1 + max(len(by_ablation[a]) for a in rows)
    grid = Image.new("RGB", (columns * size, len(rows) * size), "white")
    for r, ablation in enumerate(rows):
        grid.paste(reference, (0, r * size))
        for c, image in enumerate(by_ablation[ablation]):
            grid.paste(image.convert("RGB").resize((size, size)), ((c + 1) * size, r * size))
    return grid
