"""Lumina-Video (Multi-scale Next-DiT text-to-video) and the Lumina-V2A components for Hugging Face Diffusers."""

from ._registration import register_with_diffusers
from .models import LuminaVideoTransformer3DModel, SynchformerEncoder, SynchformerEncoderOutput
from .models.transformers.transformer_lumina_video import LuminaVideoTransformerBlock
from .pipelines import SAMPLING_PRESETS, LuminaVideoPipeline, LuminaVideoPipelineOutput
from .processors import SynchformerVideoProcessor


__version__ = "0.1.0"

__all__ = [
    "SAMPLING_PRESETS",
    "LuminaVideoPipeline",
    "LuminaVideoPipelineOutput",
    "LuminaVideoTransformer3DModel",
    "SynchformerEncoder",
    "SynchformerEncoderOutput",
    "SynchformerVideoProcessor",
]

register_with_diffusers(
    {
        "LuminaVideoPipeline": LuminaVideoPipeline,
        "LuminaVideoPipelineOutput": LuminaVideoPipelineOutput,
        "LuminaVideoTransformer3DModel": LuminaVideoTransformer3DModel,
        "SynchformerEncoder": SynchformerEncoder,
    },
    loadable_models=["LuminaVideoTransformer3DModel", "SynchformerEncoder"],
    transformer_blocks=[LuminaVideoTransformerBlock],
)
