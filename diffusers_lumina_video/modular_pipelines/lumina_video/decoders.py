"""Latents to frames with the CogVideoX VAE, cropped to the requested frame count."""

import torch
from diffusers import AutoencoderKLCogVideoX
from diffusers.configuration_utils import FrozenDict
from diffusers.modular_pipelines import PipelineState
from diffusers.modular_pipelines.modular_pipeline_utils import ComponentSpec, InputParam, OutputParam
from diffusers.video_processor import VideoProcessor

from ...pipelines.lumina_video.denoising import decode_video
from ...pipelines.lumina_video.pipeline_lumina_video import OUTPUT_TYPES, check_video_output_type
from ..requirements import LuminaPipelineBlock
from .modular_pipeline import LuminaVideoModularPipeline


class LuminaVideoDecodeStep(LuminaPipelineBlock):
    model_name = "lumina-video"

    @property
    def description(self) -> str:
        return "Decodes the latents into `num_frames` frames (`output_type` 'latent' returns the latents)."

    @property
    def expected_components(self) -> list[ComponentSpec]:
        return [
            ComponentSpec("vae", AutoencoderKLCogVideoX),
            ComponentSpec(
                "video_processor",
                VideoProcessor,
                config=FrozenDict({"vae_scale_factor": 8}),
                default_creation_method="from_config",
            ),
        ]

    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam("latents", required=True, type_hint=torch.Tensor),
            InputParam("num_frames", required=True, type_hint=int),
            InputParam("output_type", type_hint=str, default="np", description=f"One of {list(OUTPUT_TYPES)}."),
        ]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("videos", description="The videos (or latents), as `LuminaVideoPipeline` returns them.")]

    @torch.no_grad()
    def __call__(self, components: LuminaVideoModularPipeline, state: PipelineState):
        block_state = self.get_block_state(state)
        check_video_output_type(block_state.output_type, components.vae)
        block_state.videos = decode_video(
            components.vae,
            components.video_processor,
            block_state.latents,
            block_state.num_frames,
            block_state.output_type,
        )
        self.set_block_state(state, block_state)
        return components, state
