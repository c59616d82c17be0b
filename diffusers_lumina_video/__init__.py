"""Lumina-Video (Multi-scale Next-DiT text-to-video) and Lumina-V2A (video-to-audio) for Hugging Face Diffusers."""

from ._registration import register_with_diffusers
from .models import (
    LuminaV2ATransformerModel,
    LuminaVideoTransformer3DModel,
    SynchformerEncoder,
    SynchformerEncoderOutput,
)
from .models.transformers.transformer_lumina_video import LuminaVideoTransformerBlock
from .pipelines import (
    SAMPLING_PRESETS,
    LuminaV2APipeline,
    LuminaV2APipelineOutput,
    LuminaVideoPipeline,
    LuminaVideoPipelineOutput,
    LuminaVideoVideoToVideoPipeline,
)
from .processors import AudioLDMMelFeatureExtractor, SynchformerVideoProcessor


__version__ = "0.1.0"

__all__ = [
    "SAMPLING_PRESETS",
    "AudioLDMMelFeatureExtractor",
    "LuminaV2APipeline",
    "LuminaV2APipelineOutput",
    "LuminaV2ATransformerModel",
    "LuminaVideoPipeline",
    "LuminaVideoPipelineOutput",
    "LuminaVideoTransformer3DModel",
    "LuminaVideoVideoToVideoPipeline",
    "SynchformerEncoder",
    "SynchformerEncoderOutput",
    "SynchformerVideoProcessor",
]

register_with_diffusers(
    {
        "LuminaVideoPipeline": LuminaVideoPipeline,
        "LuminaVideoPipelineOutput": LuminaVideoPipelineOutput,
        "LuminaVideoVideoToVideoPipeline": LuminaVideoVideoToVideoPipeline,
        "LuminaVideoTransformer3DModel": LuminaVideoTransformer3DModel,
        "LuminaV2ATransformerModel": LuminaV2ATransformerModel,
        "LuminaV2APipeline": LuminaV2APipeline,
        "LuminaV2APipelineOutput": LuminaV2APipelineOutput,
        "SynchformerEncoder": SynchformerEncoder,
    },
    loadable_components=[
        "LuminaVideoTransformer3DModel",
        "LuminaV2ATransformerModel",
        "SynchformerEncoder",
        "AudioLDMMelFeatureExtractor",
    ],
    transformer_blocks=[LuminaVideoTransformerBlock],
)
