from .audioldm_mel import AudioLDMMelFeatureExtractor


__all__ = ["AudioLDMMelFeatureExtractor"]
