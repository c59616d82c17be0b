from .transformers import LuminaVideoTransformer3DModel


__all__ = ["LuminaVideoTransformer3DModel"]
