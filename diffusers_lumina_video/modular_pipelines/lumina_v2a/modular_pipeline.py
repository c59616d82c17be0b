"""`LuminaV2AModularPipeline`, and the view through which the Lumina-V2A blocks run the classic pipeline's methods."""

from diffusers.modular_pipelines import ModularPipeline

from ...pipelines.lumina_v2a.pipeline_lumina_v2a import LuminaV2APipeline
from ...pipelines.sampling import LuminaSamplingMixin
from ..requirements import LuminaModularPipelineMixin


V2A_COMPONENTS = (
    "transformer",
    "scheduler",
    "vae",
    "vocoder",
    "text_encoder",
    "tokenizer",
    "image_encoder",
    "feature_extractor",
    "sync_encoder",
    "guider",
)


class LuminaV2AModularPipeline(LuminaModularPipelineMixin, ModularPipeline):
    """A modular pipeline for Lumina-V2A video-to-audio (blocks: `LuminaV2ABlocks`)."""

    default_blocks_name = "LuminaV2ABlocks"


class LuminaV2AComponents:
    """The Lumina-V2A components of a modular pipeline seen as a `LuminaV2APipeline`, so that the blocks run the
    classic pipeline's own methods (checks, encoders, conditions, noise, velocity). Beside Lumina-Video, in the
    text-to-video-with-sound workflow, the components carry a prefix (`audio_transformer`, ...)."""

    _callback_tensor_inputs = LuminaV2APipeline._callback_tensor_inputs
    _read_videos = staticmethod(LuminaV2APipeline._read_videos)
    check_inputs = LuminaV2APipeline.check_inputs
    encode_prompt = LuminaV2APipeline.encode_prompt
    encode_frames = LuminaV2APipeline.encode_frames
    encode_sync = LuminaV2APipeline.encode_sync
    sync_processor = LuminaV2APipeline.sync_processor
    prepare_conditions = LuminaV2APipeline.prepare_conditions
    prepare_latents = LuminaV2APipeline.prepare_latents
    vae_latent_bins = LuminaV2APipeline.vae_latent_bins
    _predict_velocity = LuminaV2APipeline._predict_velocity
    _transformer_velocity = LuminaV2APipeline._transformer_velocity
    set_lumina_timesteps = LuminaSamplingMixin.set_lumina_timesteps
    check_cache_for_run = LuminaSamplingMixin.check_cache_for_run
    transformer_call_context = LuminaSamplingMixin.transformer_call_context

    def __init__(self, pipeline: ModularPipeline, prefix: str = ""):
        object.__setattr__(self, "_pipeline", pipeline)
        object.__setattr__(self, "_prefix", prefix)

    def __getattr__(self, name: str):
        if name in V2A_COMPONENTS:
            return getattr(self._pipeline, self._prefix + name, None)
        return getattr(self._pipeline, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._pipeline, name, value)
