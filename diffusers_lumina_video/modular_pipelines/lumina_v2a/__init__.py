from .modular_blocks_lumina_v2a import LuminaV2ABlocks
from .modular_pipeline import LuminaV2AModularPipeline


__all__ = ["LuminaV2ABlocks", "LuminaV2AModularPipeline"]
