from .lumina_v2a import LuminaV2APipeline, LuminaV2APipelineOutput
from .lumina_video import (
    SAMPLING_PRESETS,
    LuminaVideoPipeline,
    LuminaVideoPipelineOutput,
    LuminaVideoVideoToVideoPipeline,
)


__all__ = [
    "SAMPLING_PRESETS",
    "LuminaV2APipeline",
    "LuminaV2APipelineOutput",
    "LuminaVideoPipeline",
    "LuminaVideoPipelineOutput",
    "LuminaVideoVideoToVideoPipeline",
]
