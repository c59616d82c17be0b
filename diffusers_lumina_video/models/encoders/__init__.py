from .synchformer import SynchformerEncoder, SynchformerEncoderOutput


__all__ = ["SynchformerEncoder", "SynchformerEncoderOutput"]
