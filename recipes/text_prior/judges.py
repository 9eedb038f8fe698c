"""Judges of generated images: measures other than the captioner's, calibrated on real portraits.

The captions (training/captions.py) come from HSV statistics, dlib's landmarks and the applied
stylisation. The judges here look at other things, so a generated image is not marked right
merely because it fools the measure that wrote the captions:

- colour (tone, tint, background colour and brightness): CIELAB instead of HSV, the two top
  corners instead of the captioner's side bands, colours named by the nearest of eight
  prototype colours on the a*b* plane instead of HSV hue ranges;
- pose and lighting: YuNet's landmarks and box (the independent face analyzer) instead of
  dlib's; pitch from the nose between the eyes and the *mouth* (which dlib's 5 points lack);
- medium: a linear discriminant on image statistics (colourfulness, contrast, edges, paper
  white; evaluation/style_carry.py) fitted on stylised real portraits.

Each judge gives a score; its threshold is set on real portraits (through the model's own
autoencoder, so they are as soft as generated ones) so that it calls the same share of them
positive as the captioner did: quantile matching, which fixes the judge before any generated
image is seen. `agreement` reports, per attribute value, how often judge and captioner agree on
those real portraits (balanced accuracy): a judge that disagrees with the captioner on real
images says little about generated ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from facestudio.evaluation.style_carry import style_features
from facestudio.training.captions import HUES, Attributes

PROTOTYPES = {
    "red": (220, 30, 30),
    "orange": (240, 140, 20),
    "yellow": (235, 220, 30),
    "green": (40, 170, 50),
    "teal": (20, 165, 165),
    "blue": (30, 80, 220),
    "purple": (130, 40, 190),
    "pink": (235, 80, 170),
}
"""Prototype sRGB colours of the hue names; a colour is named by the nearest a*b* angle."""

MEDIUMS = ("cartoon", "pencil sketch", "colour pencil", "painting")


def lab(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float: L* in 0–100, a* and b* centred on 0."""
    converted = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float64)
    return np.stack(
        [converted[..., 0] * 100 / 255, converted[..., 1] - 128, converted[..., 2] - 128], -1
    )


def _prototype_angles() -> dict[str, float]:
    colours = np.array([PROTOTYPES[h] for h in HUES], np.uint8)[None]
    values = lab(colours)[0]
    return {h: float(np.arctan2(v[2], v[1])) for h, v in zip(HUES, values, strict=True)}


ANGLES = _prototype_angles()


def colour_name(a: float, b: float) -> str:
    """The hue name whose prototype's a*b* angle is nearest to (a, b)'s."""
    angle = np.arctan2(b, a)
    distance = {h: abs(np.angle(np.exp(1j * (angle - v)))) for h, v in ANGLES.items()}
    return min(distance, key=distance.get)


@dataclass
class ImageMeasures:
    """What the judges read from one generated (or real, for calibration) image."""

    chroma: float  # mean per-pixel a*b* chroma
    concentration: float  # how much every pixel shares one a*b* direction (0–1)
    mean_ab: tuple[float, float]
    corner_lightness: float
    corner_ab: tuple[float, float]
    yaw: float = np.nan  # nose offset from the eyes' midpoint, in eye distances (YuNet)
    pitch: float = np.nan  # nose height between the eyes (0) and the mouth (1)
    lighting: float = np.nan  # L* of the face box's left half minus its right half
    features: np.ndarray = field(default_factory=lambda: np.zeros(0))


def corners(size: int, share: float = 0.22) -> np.ndarray:
    """The two top corner squares of an image (background in a face-centred portrait)."""
    side = max(1, round(share * size))
    mask = np.zeros((size, size), bool)
    mask[:side, :side] = mask[:side, -side:] = True
    return mask


def measure_image(image: np.ndarray, analyzer=None) -> ImageMeasures:
    values = lab(image)
    ab = values[..., 1:].reshape(-1, 2)
    chroma = np.hypot(ab[:, 0], ab[:, 1])
    direction = (ab / np.maximum(chroma, 1e-6)[:, None] * chroma[:, None]).sum(0)
    corner = values[corners(image.shape[0])]
    measures = ImageMeasures(
        chroma=float(chroma.mean()),
        concentration=float(np.hypot(*direction) / max(chroma.sum(), 1e-6)),
        mean_ab=(float(ab[:, 0].mean()), float(ab[:, 1].mean())),
        corner_lightness=float(corner[:, 0].mean()),
        corner_ab=(float(corner[:, 1].mean()), float(corner[:, 2].mean())),
        features=_medium_features(image),
    )
    if analyzer is not None:
        _face_measures(image, values, analyzer, measures)
    return measures


def _medium_features(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    laplacian = cv2.Laplacian(grey, cv2.CV_64F)
    return np.concatenate(
        [style_features(image), [laplacian.std(), np.abs(laplacian).mean(), grey.mean()]]
    )


def _face_measures(image, values, analyzer, measures: ImageMeasures) -> None:
    faces = analyzer.detect(image)
    if not faces:
        return
    face = faces[0]
    eye_l, eye_r, nose, mouth_l, mouth_r = np.asarray(face.landmarks, np.float64)
    eyes, mouth = (eye_l + eye_r) / 2, (mouth_l + mouth_r) / 2
    distance = max(np.linalg.norm(eye_r - eye_l), 1e-6)
    measures.yaw = float((nose[0] - eyes[0]) / distance)
    measures.pitch = float((nose[1] - eyes[1]) / max(mouth[1] - eyes[1], 1e-6))
    x0, y0, x1, y1 = (round(float(v)) for v in face.box)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, image.shape[1]), min(y1, image.shape[0])
    middle = (x0 + x1) // 2
    if y1 - y0 >= 2 and middle - x0 >= 1 and x1 - middle >= 1:
        left = values[y0:y1, x0:middle, 0].mean()
        measures.lighting = float(left - values[y0:y1, middle:x1, 0].mean())


def sepia_score(m: ImageMeasures) -> float:
    """High for one brownish hue everywhere: concentration, if the mean hue is orange-ish."""
    name = colour_name(*m.mean_ab)
    return m.concentration if name in ("orange", "yellow") and m.chroma > 3 else 0.0


def score(m: ImageMeasures, attribute: str, value: str, medium_models: dict) -> float:
    """The judge's score of one attribute value (higher: more of it; nan: cannot tell)."""
    if attribute == "medium":
        return float(m.features @ medium_models[value])
    if attribute == "tone":
        return -m.chroma if value == "black and white" else sepia_score(m)
    if attribute == "tint":
        chroma = float(np.hypot(*m.mean_ab))
        return chroma if colour_name(*m.mean_ab) == value else 0.0
    if attribute == "background_light":
        return -m.corner_lightness if value == "dark" else m.corner_lightness
    if attribute == "background_colour":
        chroma = float(np.hypot(*m.corner_ab))
        return chroma if colour_name(*m.corner_ab) == value else 0.0
    sign = -1.0 if value in ("left", "up") else 1.0
    if attribute == "lighting":
        sign = -sign  # lit from the left: the left half is brighter
    return sign * getattr(m, attribute)


@dataclass
class Judge:
    """Thresholds per (attribute, value), fixed on real portraits, and the medium models."""

    thresholds: dict[tuple[str, str], float]
    medium_models: dict
    agreement: dict[tuple[str, str], float]

    def says(self, m: ImageMeasures, attribute: str, value: str) -> bool:
        found = score(m, attribute, value, self.medium_models)
        return bool(np.isfinite(found) and found > self.thresholds[(attribute, value)])


def fit_medium_models(measures: list[ImageMeasures], labels: list[Attributes]) -> dict:
    """One-vs-rest linear discriminants on the image statistics, per medium: {medium:
    direction over the raw features} (the standardisation folded in; scores are compared with
    thresholds set on the same scale, so the offset does not matter)."""
    raw = np.stack([m.features for m in measures])
    std = raw.std(0) + 1e-6
    x = (raw - raw.mean(0)) / std
    covariance = np.cov(x.T) + 0.1 * np.eye(x.shape[1])
    models = {}
    for medium in MEDIUMS:
        positive = np.array([a.medium == medium for a in labels])
        if positive.sum() >= 3 and (~positive).sum() >= 3:
            direction = np.linalg.solve(covariance, x[positive].mean(0) - x[~positive].mean(0))
            models[medium] = direction / std
    return models


def calibrate(
    measures: list[ImageMeasures], labels: list[Attributes], values: list[tuple[str, str]]
) -> Judge:
    """Thresholds that call as many real portraits positive as the captioner did."""
    medium_models = fit_medium_models(measures, labels)
    thresholds, agreement = {}, {}
    for attribute, value in values:
        if attribute == "medium" and value not in medium_models:
            continue
        truth = np.array([getattr(a, attribute) == value for a in labels])
        scores = np.array([score(m, attribute, value, medium_models) for m in measures])
        finite = np.isfinite(scores)
        rate = truth[finite].mean() if finite.any() else 0.0
        if not finite.any() or rate in (0.0, 1.0):
            continue
        threshold = float(np.quantile(scores[finite], 1.0 - rate))
        thresholds[(attribute, value)] = threshold
        judged = finite & (np.nan_to_num(scores, nan=-np.inf) > threshold)
        agreement[(attribute, value)] = 0.5 * (judged[truth].mean() + (~judged[~truth]).mean())
    return Judge(thresholds, medium_models, agreement)
