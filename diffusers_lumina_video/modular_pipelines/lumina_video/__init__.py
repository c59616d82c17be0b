from .modular_blocks_lumina_video import LuminaVideoBlocks, LuminaVideoCoreDenoiseStep
from .modular_pipeline import LuminaVideoModularPipeline


__all__ = ["LuminaVideoBlocks", "LuminaVideoCoreDenoiseStep", "LuminaVideoModularPipeline"]
