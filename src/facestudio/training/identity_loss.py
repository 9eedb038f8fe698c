"""The identity loss: how far a generated face is from the person it should show.

The diffusion loss teaches identity only slowly: a face that is a few pixels off the person
costs almost nothing in mean squared error. The field's strongest identity methods (PuLID's ID
loss, UMO's reward) add a loss through a differentiable face recogniser instead. Here that
recogniser is `DlibResNetEncoder`, the same network as the conditioning embedding: the loss is
`1 − cos(E(x̂₀), e)` between the embedding of the model's estimate of the clean image and the
embedding the sample was conditioned on.

Two guards against faces that fool the encoder without looking like the person:
- the loss is taken only at low noise (`max_timestep`), where the one-step estimate x̂₀ is an
  image rather than a blur, so its gradient shapes details and not the layout;
- it is judged by a different recogniser (`facestudio eval` scores with an independent one).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from facestudio.model.face_encoder import DlibResNetEncoder


@dataclass(frozen=True)
class IdentityLossSettings:
    """What the identity loss adds to an objective (`identity_*` of a config's `[train]`).

    `weight`: its factor in the total loss (0 = off). `max_timestep`: only samples noised at
    most this much count (the clean estimate is too blurred above). `max_samples`: at most this
    many faces per batch go through decoder and encoder (it is the expensive part).
    """

    weight: float = 0.0
    max_timestep: int = 400
    max_samples: int = 8

    @classmethod
    def from_options(cls, options) -> IdentityLossSettings:
        """The settings a training config's `[train]` section (`OptimizationConfig`) gives."""
        return cls(
            options.identity_loss_weight,
            options.identity_max_timestep,
            options.identity_max_samples,
        )

    @property
    def enabled(self) -> bool:
        return self.weight > 0


def select_samples(
    timesteps: torch.Tensor, usable: torch.Tensor, settings: IdentityLossSettings
) -> torch.Tensor:
    """Indices of the samples the identity loss looks at: `usable` ones (a face, its identity
    given) noised at most `max_timestep`, the least noisy first, at most `max_samples`."""
    candidates = (usable & (timesteps <= settings.max_timestep)).nonzero()[:, 0]
    order = timesteps[candidates].argsort(stable=True)
    return candidates[order][: settings.max_samples]


def identity_distance(
    encoder: DlibResNetEncoder,
    images: torch.Tensor,
    landmarks: torch.Tensor,
    targets: torch.Tensor,
) -> torch.Tensor:
    """(B,) `1 − cos` between the faces in `images` ([-1, 1], (B, 3, H, W); the face at the 5
    `landmarks` in image pixels) and the `targets` embeddings; differentiable in `images`."""
    embedded = encoder.identity_embedding(images.float(), landmarks.float(), value_range=(-1, 1))
    return 1 - (embedded * F.normalize(targets.float().to(embedded.device), dim=-1)).sum(-1)


class IdentityLoss:
    """The identity loss of a batch, given decoded images and which samples count.

    A plain object, not an `nn.Module`: held by an objective, its frozen encoder is never
    trained, saved in checkpoints or wrapped by accelerate.
    """

    def __init__(self, settings: IdentityLossSettings, encoder: DlibResNetEncoder | None = None):
        self.settings = settings
        self.encoder = encoder or DlibResNetEncoder.from_pretrained()

    def __call__(self, images: torch.Tensor, batch: dict, index: torch.Tensor) -> torch.Tensor:
        """Mean identity distance of `images` (already the selected samples `index` of `batch`,
        decoded, in [-1, 1]); zero, with a gradient path, when nothing is selected."""
        if len(index) == 0:
            return images.sum() * 0.0
        encoder = self.encoder.to(images.device)
        cpu_index = index.cpu()
        landmarks = batch["face_landmarks"][cpu_index].to(images.device)
        targets = batch["face"][cpu_index].to(images.device)
        return identity_distance(encoder, images, landmarks, targets).mean()
