from .pipeline_lumina_video import SYSTEM_PROMPT, LuminaVideoPipeline
from .pipeline_lumina_video_video2video import LuminaVideoVideoToVideoPipeline
from .pipeline_output import LuminaVideoPipelineOutput
from .presets import SAMPLING_PRESETS


__all__ = [
    "SAMPLING_PRESETS",
    "SYSTEM_PROMPT",
    "LuminaVideoPipeline",
    "LuminaVideoPipelineOutput",
    "LuminaVideoVideoToVideoPipeline",
]
