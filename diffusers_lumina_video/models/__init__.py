from .encoders import SynchformerEncoder, SynchformerEncoderOutput
from .transformers import LuminaVideoTransformer3DModel


__all__ = ["LuminaVideoTransformer3DModel", "SynchformerEncoder", "SynchformerEncoderOutput"]
