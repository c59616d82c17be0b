"""Lumina-Video (Multi-scale Next-DiT text-to-video) for Hugging Face Diffusers."""

from ._registration import register_with_diffusers
from .models import LuminaVideoTransformer3DModel


__version__ = "0.1.0"

__all__ = ["LuminaVideoTransformer3DModel"]

register_with_diffusers({name: globals()[name] for name in __all__})
