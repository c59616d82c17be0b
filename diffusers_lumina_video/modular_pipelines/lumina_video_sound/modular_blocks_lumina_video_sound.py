"""Text to video with sound: Lumina-Video's blocks, then Lumina-V2A's (components and values prefixed `audio_`) on the
decoded frames, the video's frame rate and length carried over."""

import torch
from diffusers.modular_pipelines import PipelineState, SequentialPipelineBlocks
from diffusers.modular_pipelines.modular_pipeline_utils import InputParam, OutputParam

from ..lumina_v2a import LuminaV2ABlocks
from ..lumina_video import LuminaVideoModularPipeline
from ..lumina_video.decoders import LuminaVideoDecodeStep
from ..lumina_video.encoders import LuminaVideoTextEncoderStep
from ..lumina_video.modular_blocks_lumina_video import LuminaVideoCoreDenoiseStep
from ..requirements import LuminaPipelineBlock


AUDIO_PREFIX = "audio_"


class LuminaVideoToAudioInputStep(LuminaPipelineBlock):
    model_name = "lumina-video-sound"

    @property
    def description(self) -> str:
        return "Hands the decoded frames and their frame rate to the Lumina-V2A blocks (`audio_video`, `audio_fps`)."

    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam("videos", required=True, description="Decoded frames, `output_type` 'np' or 'pil'."),
            InputParam("fps", required=True, type_hint=float, description="Frame rate of the generated video."),
        ]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam(AUDIO_PREFIX + "video"), OutputParam(AUDIO_PREFIX + "fps", type_hint=float)]

    @torch.no_grad()
    def __call__(self, components, state: PipelineState):
        block_state = self.get_block_state(state)
        setattr(block_state, AUDIO_PREFIX + "video", block_state.videos)
        setattr(block_state, AUDIO_PREFIX + "fps", block_state.fps)
        self.set_block_state(state, block_state)
        return components, state


class LuminaVideoSoundAudioBlocks(LuminaV2ABlocks):
    """Lumina-V2A's blocks with `audio_` components and values."""

    def __init__(self):
        super().__init__(prefix=AUDIO_PREFIX)


class LuminaVideoSoundBlocks(SequentialPipelineBlocks):
    """Text to video with sound: Lumina-Video text-to-video, then Lumina-V2A on its frames."""

    model_name = "lumina-video-sound"
    block_classes = [
        LuminaVideoTextEncoderStep,
        LuminaVideoCoreDenoiseStep,
        LuminaVideoDecodeStep,
        LuminaVideoToAudioInputStep,
        LuminaVideoSoundAudioBlocks,
    ]
    block_names = ["text_encoder", "denoise", "decode", "video_to_audio", "audio"]

    @property
    def description(self) -> str:
        return "Text to video with sound: Lumina-Video, then Lumina-V2A on the decoded frames."

    @property
    def outputs(self) -> list[OutputParam]:
        return [
            OutputParam("videos", description="The videos, as `LuminaVideoPipeline` returns them."),
            OutputParam("audios", description="The waveforms [B, num_samples]."),
            OutputParam("sample_rate", description="Samples per second of `audios`."),
        ]


class LuminaVideoSoundModularPipeline(LuminaVideoModularPipeline):
    """A modular pipeline for text to video with sound (blocks: `LuminaVideoSoundBlocks`): Lumina-Video's components
    under their own names, Lumina-V2A's prefixed `audio_` (`audio_transformer`, `audio_vae`, `audio_vocoder`, ...)."""

    default_blocks_name = "LuminaVideoSoundBlocks"
