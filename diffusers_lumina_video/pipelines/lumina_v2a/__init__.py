from .pipeline_lumina_v2a import LuminaV2APipeline
from .pipeline_output import LuminaV2APipelineOutput


__all__ = ["LuminaV2APipeline", "LuminaV2APipelineOutput"]
