"""Face analysis: detection with 5 landmarks, alignment, identity embeddings, person regions."""

from facestudio.faces.alignment import ARCFACE_TEMPLATE_112, align_arcface, align_portrait
from facestudio.faces.analyzer import (
    FaceAnalyzer,
    FaceAnalyzerConfig,
    aggregate_identities,
    cosine_similarity,
    select_face,
)
from facestudio.faces.backends import DlibBackendConfig, FaceBackend, OnnxBackendConfig
from facestudio.faces.regions import (
    PersonRegionConfig,
    check_boxes,
    person_region,
    person_regions,
    region_masks,
)
from facestudio.faces.types import (
    LANDMARK_NAMES,
    Comparison,
    Face,
    FaceIdentity,
    ImageFaces,
    MultiShotIdentity,
)

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "LANDMARK_NAMES",
    "Comparison",
    "DlibBackendConfig",
    "Face",
    "FaceAnalyzer",
    "FaceAnalyzerConfig",
    "FaceBackend",
    "FaceIdentity",
    "ImageFaces",
    "MultiShotIdentity",
    "OnnxBackendConfig",
    "PersonRegionConfig",
    "aggregate_identities",
    "align_arcface",
    "align_portrait",
    "check_boxes",
    "cosine_similarity",
    "person_region",
    "person_regions",
    "region_masks",
    "select_face",
]
