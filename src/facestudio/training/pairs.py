"""Two-person training samples, composed from a batch of one-person portraits.

At inference, FaceStudio keeps two people apart with its multi-identity cross-attention: the
cells of each person's region attend only to that person's tokens. A U-Net trained only on
one-person portraits has never had to draw two different faces in one picture from two
contexts, and with real two-person photos it draws one face twice or one face and a smear.
Here a pair puts the centre half of one portrait beside the centre half of another (`prepare`
centres each portrait on its face, so each half keeps its face) and denoises it with the
routing on: left half → the first person's tokens, right half → the second's, as a two-person
layout does at inference.

Composition works on any (B, C, H, W) map of the batch, so the same `side_by_side` builds the
latents (cached or not), the style input and the loss weights: they cannot disagree about
where a person is.
"""

from __future__ import annotations

import torch

from facestudio.errors import FaceStudioError
from facestudio.model.multi_identity_attention import IdentityRouting

PAIR_PEOPLE = 2
"""People in a composed sample: the left half is the sample's own, the right its partner's."""


def partners(batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """(B,) index of each sample's partner: a random cycle through the batch, so every sample
    is the left person once and the right person once, and never its own partner."""
    if batch_size < 2:
        raise FaceStudioError("two-person samples need a batch of at least 2 portraits")
    order = torch.randperm(batch_size, generator=generator)
    partner = torch.empty(batch_size, dtype=torch.long)
    partner[order] = order.roll(-1)
    return partner


def side_by_side(maps: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W): the centre half (in width) of each map beside the centre half of its
    partner's map. W must be a multiple of 4 so that both halves fall on whole cells."""
    width = maps.shape[-1]
    if width % 4:
        raise FaceStudioError(f"two-person samples need a width divisible by 4, got {width}")
    centre = maps[..., width // 4 : width // 4 + width // 2]
    return torch.cat([centre, centre[partner.to(maps.device)]], dim=-1)


def pair_regions(height: int, width: int) -> torch.Tensor:
    """(2, height, width) bool: the left half is person 0's, the right half person 1's."""
    left = torch.zeros(height, width, dtype=torch.bool)
    left[:, : width // 2] = True
    return torch.stack([left, ~left])


def pair_routing(
    token_owner: torch.Tensor, latent_size: tuple[int, int], levels: int
) -> IdentityRouting:
    """The routing of composed samples: each half attends to its own person's tokens at every
    U-Net level. The halves cover every cell, so no cell is background."""
    regions = pair_regions(*latent_size)
    return IdentityRouting.from_masks(token_owner, regions, latent_size, levels, background="all")
