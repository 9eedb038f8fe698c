"""The cost of each extra reference photo of a person: through the whole pipeline with dlib's
face analysis on the CPU (detection, landmarks, descriptor), and for the PyTorch port of dlib's
descriptor network on the suite's device (alignment and descriptor, batched; detection stays
dlib's on the CPU and is not in that number).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from gpu.inference import facestudio_call, interleaved, medians
from gpu.models import device_of
from gpu.runner import SectionSkipped
from gpu.settings import SuiteSettings

SHARED = Path(__file__).resolve().parents[3] / "shared"
PHOTOS = [SHARED / f"data/deepface/id05/img{n}.jpg" for n in (13, 14, 15, 57)]
"""Four photos of one person (the per-photo cost needs real faces: dlib finds none in noise)."""

FACE_POINTS = ((200, 220), (312, 220), (256, 280), (215, 340), (297, 340))
"""Plausible 5-point landmarks (eyes, nose, mouth corners) of a face on a 512² canvas."""


def photos_section(state: dict) -> dict:
    """Seconds per image with 1..n reference photos of one person (dlib on the CPU, no cache)."""
    from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig

    settings: SuiteSettings = state["settings"]
    counts = settings.photo_counts
    photos = state.get("photos") or PHOTOS
    missing = [str(p) for p in photos[: max(counts)] if not Path(p).is_file()]
    if missing:
        raise SectionSkipped(f"no reference photos here ({missing[0]}); give --photos DIR")
    try:
        analyzer = FaceAnalyzer(FaceAnalyzerConfig(cache_dir=None))  # no cache: the real cost
    except Exception as exc:
        raise SectionSkipped(f"dlib face analysis is not available ({str(exc)[:120]})") from None
    state["facestudio"].set_face_analyzer(analyzer)
    analyzer.analyze(photos[0])  # loads dlib's models; the generation path is warm already
    variants = {
        str(count): facestudio_call(state, identities=[list(photos[:count])]) for count in counts
    }
    median = medians(interleaved(state, variants, settings.photo_repeats, warm_up=False))
    return {
        "backend": "dlib (CPU)",
        "median_s_per_image": median,
        "seconds_per_extra_photo": round(per_extra_photo(median, counts), 4),
    }


def per_extra_photo(median: dict[str, float], counts: list[int]) -> float:
    """The slope of seconds over photo count, from the fewest photos to the most."""
    first, last = counts[0], counts[-1]
    return (median[str(last)] - median[str(first)]) / (last - first)


def count_rows(median: dict, label: str, per_extra: float, digits: int) -> list[tuple[str, str]]:
    """Table rows: one per photo count, then the cost of each extra photo."""
    rows = [(f"{count} {label}", f"{value:.{digits}f}") for count, value in median.items()]
    return [*rows, ("seconds per extra photo", f"{per_extra:.{digits}f}")]


def photos_rows(result: dict) -> list[tuple[str, str]]:
    return count_rows(
        result["median_s_per_image"], "photo(s) (s/image)", result["seconds_per_extra_photo"], 4
    )


def face_encoder_section(state: dict) -> dict:
    """Seconds to embed 1..n photos at once with the torch descriptor network (fp32)."""
    if importlib.util.find_spec("facestudio.model.face_encoder") is None:
        raise SectionSkipped("this version has no torch face encoder")
    from facestudio.model.face_encoder import DlibResNetEncoder

    settings: SuiteSettings = state["settings"]
    device, size = device_of(settings), settings.resolution
    encoder = DlibResNetEncoder.from_pretrained().to(device)
    points = torch.tensor(FACE_POINTS, dtype=torch.float32) * (size / 512)
    variants = {}
    for count in settings.photo_counts:
        images = torch.rand(count, 3, size, size, device=device)
        landmarks = points[None].repeat(count, 1, 1).to(device)
        variants[str(count)] = lambda i=images, m=landmarks: encoder.identity_embedding(i, m)
    with torch.no_grad():
        median = medians(interleaved(state, variants, settings.repeats))
    return {
        "device": device,
        "image_size": size,
        "median_s": median,
        "seconds_first_photo": median[str(settings.photo_counts[0])],
        "seconds_per_extra_photo": round(per_extra_photo(median, settings.photo_counts), 5),
    }


def face_encoder_rows(result: dict) -> list[tuple[str, str]]:
    return count_rows(
        result["median_s"], "photo(s) at once (s)", result["seconds_per_extra_photo"], 5
    )
