from .transformer_lumina_video import LuminaVideoTransformer3DModel


__all__ = ["LuminaVideoTransformer3DModel"]
