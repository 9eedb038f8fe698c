"""Paired-photo training: the identity input from *another* photo of the same person.

Reconstruction from the photo's own embedding teaches copying as much as identity: the U-Net
can learn whatever the embedding says about this one photo (pose, expression, lighting leak
into a 128-d descriptor) instead of who the person is. For people with several photos (the
data's person ids, kept by `facestudio prepare` from a manifest's `person` field), a share of
steps conditions on the embedding of a different photo of the same person, so only what the
photos share -- the identity -- predicts the target.
"""

from __future__ import annotations

import torch


class SamePersonPhotos:
    """For each sample, the other samples that show the same person and have a face."""

    def __init__(self, people: list[str], embeddings: torch.Tensor, has_face: torch.Tensor):
        self.embeddings = embeddings
        groups: dict[str, list[int]] = {}
        for index, (person, face) in enumerate(zip(people, has_face.tolist(), strict=True)):
            if person and face:
                groups.setdefault(person, []).append(index)
        self.others: list[torch.Tensor] = [torch.empty(0, dtype=torch.long)] * len(people)
        for members in groups.values():
            for index in members:
                self.others[index] = torch.tensor([m for m in members if m != index])

    @property
    def paired_samples(self) -> int:
        """How many samples have another photo of their person."""
        return sum(len(o) > 0 for o in self.others)

    def faces(
        self,
        index: torch.Tensor,
        faces: torch.Tensor,
        probability: float,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """`faces` (B, D) with each row, with `probability` and where the person has another
        photo, replaced by the embedding of one of them. Draws 2·B numbers whatever happens,
        so a resumed run replays the same choices."""
        size = len(index)
        use = torch.rand(size, generator=generator) < probability
        pick = torch.rand(size, generator=generator)
        chosen = faces.clone()
        for row, (sample, draw) in enumerate(zip(index.tolist(), pick.tolist(), strict=True)):
            others = self.others[sample]
            if use[row] and len(others):
                other = others[min(int(draw * len(others)), len(others) - 1)]
                chosen[row] = self.embeddings[other].to(faces)
        return chosen
