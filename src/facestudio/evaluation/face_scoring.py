"""Scoring generated faces against reference photos with an independent recogniser.

The field's protocol (FastComposer's): detect the face in the generated image, embed it, and
take its cosine similarity to the reference photos (negatives clamped to 0). A missed
detection scores 0; means are reported both with misses as 0 and over detected faces only,
beside the detection rate. With several people, generated faces are matched greedily to the
references and the *minimum* pair is the image's score.

Likeness to *other* photos of the person (Sim(GT)) can hide a model that copies its input
photo. So a generated face is also compared with the conditioning photos themselves (Sim(Ref))
and given WithAnyone's copy-paste score, which says which of the two it sits closer to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facestudio.errors import FaceStudioError, NoFaceError
from facestudio.faces.analyzer import FaceAnalyzer


@dataclass(frozen=True)
class ImageScore:
    """One generated image: its score (0 for a miss), whether every face was found, the
    per-person similarities (None for a person whose face was not found) and, scored against
    one person, the embedding of the face that was scored (the largest)."""

    similarity: float
    detected: bool
    per_person: list[float | None]
    faces_found: int
    subject: np.ndarray | None = None


class FaceScorer:
    """Identity similarity of generated images, with a recogniser the model was not conditioned on."""

    def __init__(
        self,
        analyzer: FaceAnalyzer,
        conditioning_recognizer: str | None = None,
        allow_biased: bool = False,
    ):
        self.analyzer = analyzer
        self.biased = (
            conditioning_recognizer is not None
            and analyzer.backend.recognizer_id() == conditioning_recognizer
        )
        if self.biased and not allow_biased:
            raise FaceStudioError(
                "the scoring recogniser is the one the model is conditioned on, which inflates scores; "
                "give another with --detector-model/--recognizer-model, or pass --allow-biased to score anyway"
            )

    def reference(self, photos: list) -> np.ndarray:
        """(R, D) embeddings of a person's reference photos (largest face of each); a photo in
        which this recogniser's detector finds no face is left out (detectors differ)."""
        embeddings = []
        for photo in photos:
            try:
                embeddings.append(self.analyzer.identity(photo).embedding)
            except NoFaceError:
                continue
        if not embeddings:
            raise NoFaceError(
                f"no face found in any of the {len(photos)} reference photos; give photos "
                "where one face is clearly visible"
            )
        return np.stack(embeddings)

    def score(self, image: np.ndarray, references: list[np.ndarray]) -> ImageScore:
        """Score one generated image against one reference set per person in it."""
        faces = self.analyzer.detect(image)
        embeddings = [
            self.analyzer.embed(image, face) for face in faces[: max(len(references) * 3, 1)]
        ]
        if len(references) == 1:
            if not embeddings:
                return ImageScore(0.0, False, [None], 0)
            subject = embeddings[0]  # the largest face
            value = similarity(subject, references[0])
            return ImageScore(value, True, [value], len(faces), subject)
        matched = greedy_match(embeddings, references)
        per_person = [matched.get(i) for i in range(len(references))]
        scores = [0.0 if s is None else s for s in per_person]
        return ImageScore(
            min(scores), all(s is not None for s in per_person), per_person, len(faces)
        )


def greedy_match(embeddings: list[np.ndarray], references: list[np.ndarray]) -> dict[int, float]:
    """Pair generated faces with people, best pair first, each used once: {person: similarity}."""
    pairs = sorted(
        (
            (similarity(e, r), f, p)
            for f, e in enumerate(embeddings)
            for p, r in enumerate(references)
        ),
        reverse=True,
    )
    used_faces, matched = set(), {}
    for value, face, person in pairs:
        if face in used_faces or person in matched:
            continue
        used_faces.add(face)
        matched[person] = value
    return matched


def similarity(embedding: np.ndarray, reference: np.ndarray) -> float:
    """Mean cosine to the reference photos, negatives clamped to 0 (FastComposer's protocol)."""
    return float(np.clip(np.atleast_2d(reference) @ embedding, 0.0, None).mean())


_SMALLEST_ANGLE = 1e-3
"""Radians: a floor for the angle between the two photo sets, as WithAnyone's ε; two photo sets
closer than this are one photo, and the score would divide by nothing."""


def copy_paste(generated: np.ndarray, ground_truth: np.ndarray, condition: np.ndarray) -> float:
    """WithAnyone's copy-paste score of one generated face embedding:
    (θ(gen, GT) − θ(gen, cond)) / θ(GT, cond), θ the angle between embeddings, each averaged
    over a set's photos. +1: the face is where the conditioning photo is; −1: where the
    person's other photos are; 0: as far from both. A model that copies its input photo scores
    high while its Sim(GT) stays low."""
    to_truth = _mean_angle(generated, ground_truth)
    to_condition = _mean_angle(generated, condition)
    between = max(_mean_angle(ground_truth, condition), _SMALLEST_ANGLE)
    return float((to_truth - to_condition) / between)


def _mean_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Mean angle in radians between every row of `a` and every row of `b` (normalised here)."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.arccos(np.clip(a @ b.T, -1.0, 1.0)).mean())
