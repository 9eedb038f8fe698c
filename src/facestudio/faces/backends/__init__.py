"""Face analysis backends: a detector with 5 landmarks and a recogniser, behind one interface."""

from facestudio.faces.backends.base import FaceBackend
from facestudio.faces.backends.dlib_backend import DlibBackend, DlibBackendConfig
from facestudio.faces.backends.onnx_backend import OnnxBackend, OnnxBackendConfig

__all__ = ["DlibBackend", "DlibBackendConfig", "FaceBackend", "OnnxBackend", "OnnxBackendConfig"]
