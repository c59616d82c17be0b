from .audioldm_mel import AudioLDMMelFeatureExtractor
from .synchformer import SynchformerVideoProcessor


__all__ = ["AudioLDMMelFeatureExtractor", "SynchformerVideoProcessor"]
