"""Scoring generated faces against reference photos with an independent recogniser.

The field's protocol (FastComposer's): detect the face in the generated image, embed it, and
take its cosine similarity to the reference photos (negatives clamped to 0). A missed
detection scores 0; means are reported both with misses as 0 and over detected faces only,
beside the detection rate. With several people, generated faces are matched greedily to the
references and the *minimum* pair is the image's score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facestudio.errors import FaceStudioError, NoFaceError
from facestudio.faces.analyzer import FaceAnalyzer


@dataclass(frozen=True)
class ImageScore:
    """One generated image: its score (0 for a miss), whether every face was found, and the
    per-person similarities (None for a person whose face was not found)."""

    similarity: float
    detected: bool
    per_person: list[float | None]
    faces_found: int


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
            similarity = _similarity(
                embeddings[0], references[0]
            )  # the largest face is the subject
            return ImageScore(similarity, True, [similarity], len(faces))
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
            (_similarity(e, r), f, p)
            for f, e in enumerate(embeddings)
            for p, r in enumerate(references)
        ),
        reverse=True,
    )
    used_faces, matched = set(), {}
    for similarity, face, person in pairs:
        if face in used_faces or person in matched:
            continue
        used_faces.add(face)
        matched[person] = similarity
    return matched


def _similarity(embedding: np.ndarray, reference: np.ndarray) -> float:
    """Mean cosine to the reference photos, negatives clamped to 0 (FastComposer's protocol)."""
    return float(np.clip(np.atleast_2d(reference) @ embedding, 0.0, None).mean())
