"""The sample photo of `--example`: a public-domain portrait that ships with scikit-image."""

from __future__ import annotations

import numpy as np

EXAMPLE_NAME = "astronaut (scikit-image sample, public domain)"


def example_photo() -> np.ndarray:
    """NASA's portrait of Eileen Collins (public domain), as an RGB array."""
    from skimage import data

    return data.astronaut()
