"""FaceStudio: identity-preserving image generation from a prompt, a style image and face photos."""

from facestudio.errors import FaceStudioError

__version__ = "0.1.0"

__all__ = ["FaceStudioError", "__version__"]
