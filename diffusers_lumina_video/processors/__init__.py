from .synchformer import SynchformerVideoProcessor


__all__ = ["SynchformerVideoProcessor"]
