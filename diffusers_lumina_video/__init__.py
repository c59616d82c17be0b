"""Lumina-Video (Multi-scale Next-DiT text-to-video) and Lumina-V2A (video-to-audio) for Hugging Face Diffusers."""

from ._registration import register_with_diffusers
from .models import (
    LuminaV2ATransformerModel,
    LuminaVideoTransformer3DModel,
    SynchformerEncoder,
    SynchformerEncoderOutput,
)
from .models.transformers.transformer_lumina_video import LuminaVideoTransformerBlock
from .modular_pipelines import (
    LuminaV2ABlocks,
    LuminaV2AModularPipeline,
    LuminaVideoBlocks,
    LuminaVideoCoreDenoiseStep,
    LuminaVideoModularPipeline,
    LuminaVideoSoundBlocks,
    LuminaVideoSoundModularPipeline,
)
from .pipelines import (
    SAMPLING_PRESETS,
    LuminaV2APipeline,
    LuminaV2APipelineOutput,
    LuminaVideoPipeline,
    LuminaVideoPipelineOutput,
    LuminaVideoVideoToVideoPipeline,
)
from .pipelines.lumina_video.denoising import LuminaGuidance
from .processors import AudioLDMMelFeatureExtractor, SynchformerVideoProcessor


__version__ = "0.1.0"

__all__ = [
    "SAMPLING_PRESETS",
    "AudioLDMMelFeatureExtractor",
    "LuminaGuidance",
    "LuminaV2ABlocks",
    "LuminaV2AModularPipeline",
    "LuminaV2APipeline",
    "LuminaV2APipelineOutput",
    "LuminaV2ATransformerModel",
    "LuminaVideoBlocks",
    "LuminaVideoCoreDenoiseStep",
    "LuminaVideoModularPipeline",
    "LuminaVideoPipeline",
    "LuminaVideoPipelineOutput",
    "LuminaVideoSoundBlocks",
    "LuminaVideoSoundModularPipeline",
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
        "LuminaGuidance": LuminaGuidance,
        "LuminaVideoBlocks": LuminaVideoBlocks,
        "LuminaVideoCoreDenoiseStep": LuminaVideoCoreDenoiseStep,
        "LuminaVideoModularPipeline": LuminaVideoModularPipeline,
        "LuminaV2ABlocks": LuminaV2ABlocks,
        "LuminaV2AModularPipeline": LuminaV2AModularPipeline,
        "LuminaVideoSoundBlocks": LuminaVideoSoundBlocks,
        "LuminaVideoSoundModularPipeline": LuminaVideoSoundModularPipeline,
    },
    loadable_components=[
        "LuminaVideoTransformer3DModel",
        "LuminaV2ATransformerModel",
        "SynchformerEncoder",
        "AudioLDMMelFeatureExtractor",
    ],
    transformer_blocks=[LuminaVideoTransformerBlock],
    modular_pipelines={
        "lumina-video": "LuminaVideoModularPipeline",
        "lumina-v2a": "LuminaV2AModularPipeline",
        "lumina-video-sound": "LuminaVideoSoundModularPipeline",
    },
    text2video_pipelines={"lumina-video": LuminaVideoPipeline},
    video2audio_pipelines={"lumina-v2a": LuminaV2APipeline},
)
