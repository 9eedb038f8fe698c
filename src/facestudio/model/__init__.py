"""The FaceStudio model: hybrid guidance, the style encoder, the text prior, multi-identity attention."""

from facestudio.model.hybrid_guidance import HybridGuidance
from facestudio.model.multi_identity_attention import (
    IdentityRouting,
    MultiIdentityAttnProcessor,
    concat_identity_tokens,
    install_identity_routing,
)
from facestudio.model.style_encoder import StyleEncoder

__all__ = [
    "HybridGuidance",
    "IdentityRouting",
    "MultiIdentityAttnProcessor",
    "StyleEncoder",
    "concat_identity_tokens",
    "install_identity_routing",
]
