from .pipeline_lumina_video import SYSTEM_PROMPT, LuminaVideoPipeline
from .pipeline_output import LuminaVideoPipelineOutput
from .presets import SAMPLING_PRESETS


__all__ = ["SAMPLING_PRESETS", "SYSTEM_PROMPT", "LuminaVideoPipeline", "LuminaVideoPipelineOutput"]
