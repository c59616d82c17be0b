"""Lumina-V2A video-to-audio as modular blocks: conditions -> time grid and noise -> loop -> mel decoding."""

from diffusers.modular_pipelines import SequentialPipelineBlocks
from diffusers.modular_pipelines.modular_pipeline_utils import OutputParam

from .blocks import LuminaV2AConditionsStep, LuminaV2ADecodeStep, LuminaV2ADenoiseStep, LuminaV2APrepareStep


class LuminaV2ABlocks(SequentialPipelineBlocks):
    """Lumina-V2A video-to-audio, the steps of `LuminaV2APipeline.__call__` as blocks; `prefix` names their
    components and values (see `blocks.py`)."""

    model_name = "lumina-v2a"
    block_classes = [LuminaV2AConditionsStep, LuminaV2APrepareStep, LuminaV2ADenoiseStep, LuminaV2ADecodeStep]
    block_names = ["conditions", "prepare", "denoise", "decode"]

    def __init__(self, prefix: str = ""):
        self.block_classes = [block(prefix) for block in type(self).block_classes]
        super().__init__()

    @property
    def description(self) -> str:
        return "Lumina-V2A video-to-audio: conditions, time grid and noise, denoise, decode."

    @property
    def outputs(self) -> list[OutputParam]:
        return [
            OutputParam("audios", description="The waveforms [B, num_samples]."),
            OutputParam("sample_rate", description="Samples per second of `audios`."),
        ]
