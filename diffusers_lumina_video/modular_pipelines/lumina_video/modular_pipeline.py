"""`LuminaVideoModularPipeline`: the components and helpers the Lumina-Video blocks read."""

from typing import Any

from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.modular_pipelines import ModularPipeline

from ...loaders import LuminaVideoLoraLoaderMixin
from ...pipelines.lumina_video.denoising import LuminaGuidance
from ...pipelines.lumina_video.pipeline_lumina_video import LuminaVideoPipeline, released_sampling_defaults
from ...pipelines.lumina_video.presets import SAMPLING_PRESETS
from ...pipelines.sampling import LuminaSamplingMixin
from ..requirements import LuminaModularPipelineMixin


class LuminaVideoModularPipeline(LuminaModularPipelineMixin, ModularPipeline, LuminaVideoLoraLoaderMixin):
    """A modular pipeline for Lumina-Video text-to-video (blocks: `LuminaVideoBlocks`).

    The prompt encoding, input checks, video geometry and sampling helpers are the classic `LuminaVideoPipeline`'s
    own functions, so both pipelines give the same videos for the same settings.
    """

    default_blocks_name = "LuminaVideoBlocks"
    _callback_tensor_inputs = ["latents"]
    # The classic pipeline's methods, shared rather than copied (they read only components and the helpers here).
    encode_prompt = LuminaVideoPipeline.encode_prompt
    _tokenize = LuminaVideoPipeline._tokenize
    _encode_texts = LuminaVideoPipeline._encode_texts
    check_inputs = LuminaVideoPipeline.check_inputs
    _resolve_video_size = LuminaVideoPipeline._resolve_video_size
    decoded_num_frames = LuminaVideoPipeline.decoded_num_frames
    num_latent_frames = LuminaVideoPipeline.num_latent_frames
    latents_shape = LuminaVideoPipeline.latents_shape
    prepare_latents = LuminaVideoPipeline.prepare_latents
    set_lumina_timesteps = LuminaSamplingMixin.set_lumina_timesteps
    check_cache_for_run = LuminaSamplingMixin.check_cache_for_run
    transformer_call_context = LuminaSamplingMixin.transformer_call_context

    @property
    def vae_scale_factor_spatial(self) -> int:
        vae = getattr(self, "vae", None)
        return 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 8

    @property
    def vae_scale_factor_temporal(self) -> int:
        vae = getattr(self, "vae", None)
        return vae.config.temporal_compression_ratio if vae is not None else 4

    @property
    def sampling_defaults(self) -> dict[str, Any]:
        """The sizes `_resolve_video_size` fills in: the released preset's, which the blocks' inputs default to too
        (a modular pipeline takes its settings as block inputs or from `use_sampling_preset`)."""
        return released_sampling_defaults()

    @property
    def requires_unconditional_embeds(self) -> bool:
        """Whether the guider runs a negative branch at some step, so negative text features are needed."""
        guider = getattr(self, "guider", None)
        if guider is None:
            return False
        if isinstance(guider, LuminaGuidance):
            return guider.uses_guidance
        return guider._enabled and guider.num_conditions > 1

    def use_sampling_preset(self, name: str) -> dict[str, Any]:
        """Sets the scheduler's shift and the guider of a released sampling config (as the classic pipeline's
        method does) and returns the rest of it as call arguments."""
        if name not in SAMPLING_PRESETS:
            raise ValueError(f"Unknown sampling preset {name!r}; choose from {sorted(SAMPLING_PRESETS)}.")
        call_kwargs = dict(SAMPLING_PRESETS[name])
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(self.scheduler.config, shift=call_kwargs.pop("shift"))
        guider = LuminaGuidance(
            guidance_scale=call_kwargs.pop("guidance_scale"),
            guidance_renorm=call_kwargs.pop("guidance_renorm"),
            negative_motion_score=call_kwargs.pop("negative_motion_score"),
        )
        self.update_components(scheduler=scheduler, guider=guider)
        return call_kwargs
