"""Errors a user can fix. Their message is one line: what is wrong, and what to do about it."""


class FaceStudioError(Exception):
    """A problem with the input or the setup, explained in one line; the CLI exits with code 2."""


class ImageLoadError(FaceStudioError):
    """An image file that cannot be used (missing, empty, corrupt, too large, too small)."""


class NoFaceError(FaceStudioError):
    """A photo that was given as an identity but has no usable face."""


class ModelLoadError(FaceStudioError):
    """Model files that are missing, corrupt or of a refused format."""
