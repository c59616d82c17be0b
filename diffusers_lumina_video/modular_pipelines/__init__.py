"""Modular Diffusers blocks and pipelines for Lumina-Video and Lumina-V2A."""

from .lumina_v2a import LuminaV2ABlocks, LuminaV2AModularPipeline
from .lumina_video import LuminaVideoBlocks, LuminaVideoCoreDenoiseStep, LuminaVideoModularPipeline
from .lumina_video_sound import LuminaVideoSoundBlocks, LuminaVideoSoundModularPipeline


__all__ = [
    "LuminaV2ABlocks",
    "LuminaV2AModularPipeline",
    "LuminaVideoBlocks",
    "LuminaVideoCoreDenoiseStep",
    "LuminaVideoModularPipeline",
    "LuminaVideoSoundBlocks",
    "LuminaVideoSoundModularPipeline",
]
