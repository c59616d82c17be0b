from .single_file_model import LuminaVideoFromOriginalModelMixin


__all__ = ["LuminaVideoFromOriginalModelMixin"]
