"""Lumina-Video text-to-video as modular blocks: text encoding -> (inputs, time grid, noise, loop) -> decoding."""

from diffusers.modular_pipelines import SequentialPipelineBlocks
from diffusers.modular_pipelines.modular_pipeline_utils import OutputParam

from .before_denoise import LuminaVideoInputStep, LuminaVideoPrepareLatentsStep, LuminaVideoSetTimestepsStep
from .decoders import LuminaVideoDecodeStep
from .denoise import LuminaVideoDenoiseStep
from .encoders import LuminaVideoTextEncoderStep


class LuminaVideoCoreDenoiseStep(SequentialPipelineBlocks):
    """From text features to denoised latents: checks and text layout, time grid, noise, loop."""

    model_name = "lumina-video"
    block_classes = [
        LuminaVideoInputStep,
        LuminaVideoSetTimestepsStep,
        LuminaVideoPrepareLatentsStep,
        LuminaVideoDenoiseStep,
    ]
    block_names = ["input", "set_timesteps", "prepare_latents", "denoise"]

    @property
    def description(self) -> str:
        return "Denoises from text features (`prompt_embeds`, ...) to latents."

    @property
    def outputs(self) -> list[OutputParam]:
        return [
            OutputParam("latents", description="The denoised latents."),
            OutputParam("num_frames", description="Frames to decode."),
        ]


class LuminaVideoBlocks(SequentialPipelineBlocks):
    """Lumina-Video text-to-video, the steps of `LuminaVideoPipeline.__call__` as blocks."""

    model_name = "lumina-video"
    block_classes = [LuminaVideoTextEncoderStep, LuminaVideoCoreDenoiseStep, LuminaVideoDecodeStep]
    block_names = ["text_encoder", "denoise", "decode"]

    @property
    def description(self) -> str:
        return "Lumina-Video text-to-video: text encoder, denoise, decode."

    @property
    def outputs(self) -> list[OutputParam]:
        return [OutputParam("videos", description="The videos, as `LuminaVideoPipeline` returns them.")]
