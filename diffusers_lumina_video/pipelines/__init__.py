from .lumina_video import SAMPLING_PRESETS, LuminaVideoPipeline, LuminaVideoPipelineOutput


__all__ = ["SAMPLING_PRESETS", "LuminaVideoPipeline", "LuminaVideoPipelineOutput"]
