"""Modular Diffusers blocks and pipelines for Lumina-Video and Lumina-V2A."""

from .lumina_video import LuminaVideoBlocks, LuminaVideoCoreDenoiseStep, LuminaVideoModularPipeline


__all__ = ["LuminaVideoBlocks", "LuminaVideoCoreDenoiseStep", "LuminaVideoModularPipeline"]
