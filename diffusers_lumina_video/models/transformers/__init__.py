from .transformer_lumina_v2a import LuminaV2ATransformerModel
from .transformer_lumina_video import LuminaVideoTransformer3DModel


__all__ = ["LuminaV2ATransformerModel", "LuminaVideoTransformer3DModel"]
