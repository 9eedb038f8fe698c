"""Turning the `identities` argument into one face embedding per person.

A person is a photo (path, PIL image, RGB array), a face embedding (1-D array or tensor), or a
list of those (multi-shot: mean of normalised embeddings, re-normalised). Mixing blends the
people into one identity: `normalize(Σ β_i · e_i)` with β scaled to sum to 1.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facestudio.errors import FaceStudioError
from facestudio.faces.analyzer import aggregate_identities, normalize
from facestudio.faces.types import Face, FaceIdentity

PersonInput = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor


@dataclass
class Person:
    """One person's identity embedding and where it came from (for the image's metadata)."""

    embedding: np.ndarray
    sources: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def resolve_people(
    identities: PersonInput | Sequence | None,
    analyzer_factory,
    face_dim: int,
    face_index: int | None = None,
) -> list[Person]:
    """One `Person` per entry of `identities`; [] when there is no identity input."""
    if identities is None:
        return []
    if _is_single(identities):
        identities = [identities]
    people = []
    for entry in identities:
        shots = list(entry) if isinstance(entry, list | tuple) else [entry]
        if not shots:
            raise FaceStudioError("a person was given with no photo or embedding")
        people.append(_resolve_person(shots, analyzer_factory, face_dim, face_index))
    return people


def mix_people(people: list[Person], weights: Sequence[float]) -> Person:
    """Identity mixing: one person whose embedding is the β-weighted blend of all of them."""
    if len(weights) != len(people):
        raise FaceStudioError(
            f"{len(weights)} mix weight(s) for {len(people)} people; give one weight per person"
        )
    beta = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(beta)) or (beta < 0).any():
        raise FaceStudioError(f"mix weights must be finite and non-negative, got {list(weights)}")
    if beta.sum() == 0:
        raise FaceStudioError("mix weights are all zero; give at least one positive weight")
    beta = beta / beta.sum()
    blended = sum(b * p.embedding.astype(np.float64) for b, p in zip(beta, people, strict=True))
    sources = [
        {**source, "mix_weight": round(float(b), 6)}
        for b, p in zip(beta, people, strict=True)
        for source in p.sources
    ]
    return Person(normalize(blended), sources, [w for p in people for w in p.warnings])


def _is_single(value) -> bool:
    if isinstance(value, str | os.PathLike | Image.Image):
        return True
    if isinstance(value, np.ndarray | torch.Tensor):
        return value.ndim in (1, 3)  # one embedding, or one RGB image
    return False


def _resolve_person(shots: list, analyzer_factory, face_dim: int, face_index: int | None) -> Person:
    identities: list[FaceIdentity] = []
    sources = []
    for shot in shots:
        if isinstance(shot, torch.Tensor):
            shot = shot.detach().float().cpu().numpy()
        if isinstance(shot, np.ndarray) and shot.ndim == 1:
            if shot.shape[0] != face_dim or not np.all(np.isfinite(shot)):
                raise FaceStudioError(
                    f"a face embedding must have {face_dim} finite values for this model, got "
                    f"{shot.shape[0]}; embed photos with the model's face backend"
                )
            vector = normalize(shot)
            identities.append(FaceIdentity(vector, "<embedding>", -1, _NO_FACE))
            sources.append({"photo": "<embedding>"})
            continue
        identity = analyzer_factory().identity(shot, face_index)
        if identity.embedding.shape[0] != face_dim:
            raise FaceStudioError(
                f"the face backend gives {identity.embedding.shape[0]}-d embeddings but this model "
                f"expects {face_dim}; use the backend the model was trained with"
            )
        identities.append(identity)
        name = identity.source if identity.source.startswith("<") else Path(identity.source).name
        sources.append({"photo": name, "face_index": identity.face_index})
    analyzer_threshold = _threshold(analyzer_factory) if len(identities) > 1 else 1.0
    combined = aggregate_identities(identities, analyzer_threshold)
    return Person(combined.embedding, sources, combined.warnings)


def _threshold(analyzer_factory) -> float:
    try:
        return analyzer_factory().threshold
    except FaceStudioError:
        return -math.inf  # embeddings only, no backend at hand: no consistency warnings


_NO_FACE = Face((0.0, 0.0, 0.0, 0.0), 0.0, np.zeros((5, 2), np.float32))
