from .lora_pipeline import LUMINA_VIDEO_LORA_TARGET_MODULES, LuminaVideoLoraLoaderMixin, check_lora_target_modules
from .single_file_model import LuminaVideoFromOriginalModelMixin


__all__ = [
    "LUMINA_VIDEO_LORA_TARGET_MODULES",
    "LuminaVideoFromOriginalModelMixin",
    "LuminaVideoLoraLoaderMixin",
    "check_lora_target_modules",
]
