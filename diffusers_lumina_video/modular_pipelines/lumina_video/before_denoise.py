"""Before the loop: the classic pipeline's input checks, batch and text layout, time grid and starting noise."""

from typing import Any

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.guiders.guider_utils import BaseGuidance
from diffusers.modular_pipelines import PipelineState
from diffusers.modular_pipelines.modular_pipeline_utils import ComponentSpec, InputParam, OutputParam

from ...models import LuminaVideoTransformer3DModel
from ...pipelines.lumina_video.denoising import LuminaGuidance, call_kind
from ...pipelines.lumina_video.pipeline_lumina_video import _DEFAULTS, LuminaVideoPipeline
from ...pipelines.lumina_video.schedules import SamplingSchedule
from ..requirements import LuminaPipelineBlock
from .encoders import GUIDER_SPEC
from .modular_pipeline import LuminaVideoModularPipeline


def sampling_schedule(guider: BaseGuidance, motion_score: Any, patch_size: Any, allowed) -> SamplingSchedule:
    """The time-aware settings of a run: guidance from the guider (a Lumina guider's schedules, or another guider's
    constant scale with the positive motion score on both branches), motion and patches from the call."""
    if isinstance(guider, LuminaGuidance):
        guidance, negative_motion = guider.config.guidance_scale, guider.config.negative_motion_score
    else:
        guidance = getattr(guider, "guidance_scale", 1.0) if guider._enabled else 1.0
        negative_motion = None
    negative_motion = motion_score if negative_motion is None else negative_motion
    return SamplingSchedule.parse(guidance, motion_score, negative_motion, patch_size, allowed)


class _InputsView:
    """The pipeline as the classic `check_inputs` sees it from this step: the texts are encoded already, so there is
    no text encoder to fall back on."""

    text_encoder = tokenizer = None

    def __init__(self, components: LuminaVideoModularPipeline):
        self._components = components

    def __getattr__(self, name: str):
        return getattr(self._components, name)


class LuminaVideoInputStep(LuminaPipelineBlock):
    model_name = "lumina-video"

    @property
    def description(self) -> str:
        return (
            "Checks the inputs as `LuminaVideoPipeline.check_inputs` does, repeats the text features per video, pads "
            "the positive and negative ones into one batch and resolves the video size and the sampling schedule."
        )

    @property
    def expected_components(self) -> list[ComponentSpec]:
        return [ComponentSpec("transformer", LuminaVideoTransformer3DModel), GUIDER_SPEC]

    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam("prompt_embeds", required=True, type_hint=torch.Tensor, description="Caption features."),
            InputParam("prompt_attention_mask", type_hint=torch.Tensor, description="1 for real caption tokens."),
            InputParam("negative_prompt_embeds", type_hint=torch.Tensor, description="The negative branch's."),
            InputParam("negative_prompt_attention_mask", type_hint=torch.Tensor, description="Its mask."),
            InputParam("num_videos_per_prompt", type_hint=int, default=1, description="Videos per prompt."),
            InputParam("height", type_hint=int, description="Pixels; default from `latents`, else the f24 preset's."),
            InputParam("width", type_hint=int, description="Pixels; default as for `height`."),
            InputParam("num_frames", type_hint=int, description="Frames of the video; default as for `height`."),
            InputParam(
                "num_inference_steps",
                type_hint=int,
                default=_DEFAULTS["num_inference_steps"],
                description="Transformer evaluations per branch.",
            ),
            InputParam(
                "motion_score",
                default=_DEFAULTS["motion_score"],
                description="Motion condition of the positive branch: a number or `(t_start, value)` pairs.",
            ),
            InputParam("patch_size", description="`(pF, pH, pW)` or a schedule; default the finest patch."),
            InputParam("latents", type_hint=torch.Tensor, description="Starting noise `[B, C, F, H / 8, W / 8]`."),
            InputParam("generator", description="A `torch.Generator`, or one per video."),
            InputParam("max_sequence_length", type_hint=int, default=256, description="Longest tokenized text."),
        ]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [
            OutputParam("batch_size", type_hint=int, description="Videos generated (prompts x videos per prompt)."),
            OutputParam("text", type_hint=dict, description="Both branches' caption features and masks, padded."),
            OutputParam("schedule", type_hint=SamplingSchedule, description="The time-aware settings per step."),
            OutputParam("height", type_hint=int),
            OutputParam("width", type_hint=int),
            OutputParam("num_frames", type_hint=int),
        ]

    @torch.no_grad()
    def __call__(self, components: LuminaVideoModularPipeline, state: PipelineState):
        block_state = self.get_block_state(state)
        transformer = components.transformer
        patch_size = transformer.finest_patch_size if block_state.patch_size is None else block_state.patch_size
        schedule = sampling_schedule(
            components.guider, block_state.motion_score, patch_size, transformer.config.patch_sizes
        )
        height, width, num_frames = components._resolve_video_size(
            block_state.height, block_state.width, block_state.num_frames, block_state.latents
        )
        LuminaVideoPipeline.check_inputs(
            _InputsView(components),
            None,
            None,
            height,
            width,
            num_frames,
            schedule,
            getattr(components.guider, "guidance_renorm", None),
            block_state.prompt_embeds,
            block_state.prompt_attention_mask,
            block_state.negative_prompt_embeds,
            block_state.negative_prompt_attention_mask,
            "latent",  # the decoder step checks its own output type
            None,
            block_state.latents,
            block_state.max_sequence_length,
            block_state.num_inference_steps,
            block_state.num_videos_per_prompt,
            block_state.generator,
        )
        uses_guidance = schedule.uses_guidance
        device, dtype = components._execution_device, transformer.dtype
        embeds = [block_state.prompt_embeds, block_state.prompt_attention_mask]
        if uses_guidance:
            embeds += [block_state.negative_prompt_embeds, block_state.negative_prompt_attention_mask]
        embeds = [e.repeat_interleave(block_state.num_videos_per_prompt, dim=0).to(device) for e in embeds]
        embeds[0] = embeds[0].to(dtype)
        if uses_guidance:
            embeds[2] = embeds[2].to(dtype)
        else:
            embeds += [None, None]
        block_state.text = LuminaVideoPipeline._pad_and_join(*embeds)
        block_state.batch_size = embeds[0].shape[0]
        block_state.schedule = schedule
        block_state.height, block_state.width, block_state.num_frames = height, width, num_frames
        self.set_block_state(state, block_state)
        return components, state


class LuminaVideoSetTimestepsStep(LuminaPipelineBlock):
    model_name = "lumina-video"

    @property
    def description(self) -> str:
        return "Sets the scheduler on the reference's time grid and checks the transformer's cache method against it."

    @property
    def expected_components(self) -> list[ComponentSpec]:
        return [
            ComponentSpec("scheduler", FlowMatchEulerDiscreteScheduler),
            ComponentSpec("transformer", LuminaVideoTransformer3DModel),
        ]

    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam("num_inference_steps", type_hint=int, default=_DEFAULTS["num_inference_steps"]),
            InputParam("schedule", required=True, type_hint=SamplingSchedule),
        ]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("timesteps", type_hint=torch.Tensor), OutputParam("num_inference_steps", type_hint=int)]

    @torch.no_grad()
    def __call__(self, components: LuminaVideoModularPipeline, state: PipelineState):
        block_state = self.get_block_state(state)
        block_state.timesteps = components.set_lumina_timesteps(
            block_state.num_inference_steps, components._execution_device
        )
        steps = [block_state.schedule.at(1.0 - float(s)) for s in components.scheduler.sigmas[:-1]]
        components.check_cache_for_run([call_kind(step.guidance_scale > 1.0, step.patch_size) for step in steps])
        self.set_block_state(state, block_state)
        return components, state


class LuminaVideoPrepareLatentsStep(LuminaPipelineBlock):
    model_name = "lumina-video"

    @property
    def description(self) -> str:
        return "The starting noise, drawn as `LuminaVideoPipeline.prepare_latents` draws it."

    @property
    def expected_components(self) -> list[ComponentSpec]:
        return [ComponentSpec("transformer", LuminaVideoTransformer3DModel)]

    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam("batch_size", required=True, type_hint=int),
            InputParam("height", required=True, type_hint=int),
            InputParam("width", required=True, type_hint=int),
            InputParam("num_frames", required=True, type_hint=int),
            InputParam("latents", type_hint=torch.Tensor),
            InputParam("generator"),
        ]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("latents", type_hint=torch.Tensor, description="The starting noise `[B, C, F, H, W]`.")]

    @torch.no_grad()
    def __call__(self, components: LuminaVideoModularPipeline, state: PipelineState):
        block_state = self.get_block_state(state)
        block_state.latents = components.prepare_latents(
            block_state.batch_size,
            components.transformer.config.in_channels,
            block_state.height,
            block_state.width,
            block_state.num_frames,
            torch.float32,
            components._execution_device,
            block_state.generator,
            block_state.latents,
        )
        self.set_block_state(state, block_state)
        return components, state
