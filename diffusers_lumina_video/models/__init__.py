from .encoders import SynchformerEncoder, SynchformerEncoderOutput
from .transformers import LuminaV2ATransformerModel, LuminaVideoTransformer3DModel


__all__ = [
    "LuminaV2ATransformerModel",
    "LuminaVideoTransformer3DModel",
    "SynchformerEncoder",
    "SynchformerEncoderOutput",
]
