"""The denoising loop: each step resolves the schedule at its time, asks the guider for the guided velocity (both
branches in one transformer call) and takes an Euler step, through the functions the classic pipeline calls."""

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.modular_pipelines import BlockState, LoopSequentialPipelineBlocks, PipelineState
from diffusers.modular_pipelines.modular_pipeline_utils import ComponentSpec, InputParam

from ...models import LuminaVideoTransformer3DModel
from ...pipelines.lumina_video.denoising import euler_step, lumina_time, set_guider_state, step_velocity
from ...pipelines.lumina_video.schedules import SamplingSchedule
from ...utils.tensor_checks import skip_value_checks
from ..requirements import REQUIREMENTS, LuminaPipelineBlock
from .encoders import GUIDER_SPEC
from .modular_pipeline import LuminaVideoModularPipeline


class LuminaVideoLoopBeforeDenoiser(LuminaPipelineBlock):
    model_name = "lumina-video"

    @property
    def description(self) -> str:
        return "Resolves the step's settings (motion score, patch size) and sets the guider's state at its time."

    @property
    def expected_components(self) -> list[ComponentSpec]:
        return [GUIDER_SPEC, ComponentSpec("scheduler", FlowMatchEulerDiscreteScheduler)]

    @property
    def inputs(self) -> list[InputParam]:
        return [InputParam("schedule", required=True, type_hint=SamplingSchedule)]

    @torch.no_grad()
    def __call__(self, components: LuminaVideoModularPipeline, block_state: BlockState, i: int, t: torch.Tensor):
        time = lumina_time(components.scheduler, i)
        block_state.step_settings = block_state.schedule.at(time)
        set_guider_state(components.guider, i, block_state.num_inference_steps, t, time)
        return components, block_state


class LuminaVideoLoopDenoiser(LuminaPipelineBlock):
    model_name = "lumina-video"

    @property
    def description(self) -> str:
        return "The guided velocity: the guider's branches in one transformer call, combined by the guider."

    @property
    def expected_components(self) -> list[ComponentSpec]:
        return [GUIDER_SPEC, ComponentSpec("transformer", LuminaVideoTransformer3DModel)]

    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam("text", required=True, type_hint=dict),
            InputParam("attention_kwargs", description="Passed to the transformer (e.g. `{'scale': 0.7}`)."),
        ]

    @torch.no_grad()
    def __call__(self, components: LuminaVideoModularPipeline, block_state: BlockState, i: int, t: torch.Tensor):
        step = block_state.step_settings
        block_state.velocity = step_velocity(
            components,
            components.guider,
            block_state.latents,
            i,
            step.motion_score,
            step.patch_size,
            block_state.text,
            block_state.attention_kwargs,
        )
        return components, block_state


class LuminaVideoLoopAfterDenoiser(LuminaPipelineBlock):
    model_name = "lumina-video"

    @property
    def description(self) -> str:
        return "The Euler step of the flow-matching scheduler."

    @property
    def expected_components(self) -> list[ComponentSpec]:
        return [ComponentSpec("scheduler", FlowMatchEulerDiscreteScheduler)]

    @torch.no_grad()
    def __call__(self, components: LuminaVideoModularPipeline, block_state: BlockState, i: int, t: torch.Tensor):
        block_state.latents = euler_step(components.scheduler, block_state.velocity, t, block_state.latents)
        return components, block_state


class LuminaDenoiseLoopWrapper(LoopSequentialPipelineBlocks):
    """Runs its sub-blocks once per timestep (both Lumina models)."""

    _requirements = REQUIREMENTS

    @property
    def description(self) -> str:
        return "Iterates over `timesteps`, running the sub-blocks at each step."

    @property
    def loop_expected_components(self) -> list[ComponentSpec]:
        return [ComponentSpec("scheduler", FlowMatchEulerDiscreteScheduler)]

    @property
    def loop_inputs(self) -> list[InputParam]:
        return [
            InputParam("timesteps", required=True, type_hint=torch.Tensor),
            InputParam("num_inference_steps", required=True, type_hint=int),
            InputParam("latents", required=True, type_hint=torch.Tensor),
        ]

    def loop_timesteps(self, block_state: BlockState) -> tuple[torch.Tensor, int]:
        """The timesteps to run and their count."""
        return block_state.timesteps, block_state.num_inference_steps

    @torch.no_grad()
    def __call__(self, components, state: PipelineState):
        block_state = self.get_block_state(state)
        timesteps, num_inference_steps = self.loop_timesteps(block_state)
        # Inputs were checked before the loop; the transformer's per-step value checks would sync every step.
        with self.progress_bar(total=num_inference_steps) as progress_bar, skip_value_checks():
            for i, t in enumerate(timesteps):
                components, block_state = self.loop_step(components, block_state, i=i, t=t)
                progress_bar.update()
        self.set_block_state(state, block_state)
        return components, state


class LuminaVideoDenoiseStep(LuminaDenoiseLoopWrapper):
    model_name = "lumina-video"
    block_classes = [LuminaVideoLoopBeforeDenoiser, LuminaVideoLoopDenoiser, LuminaVideoLoopAfterDenoiser]
    block_names = ["before_denoiser", "denoiser", "after_denoiser"]

    @property
    def description(self) -> str:
        return (
            "Denoises the latents over the time grid; each step runs `before_denoiser` (settings and guider state), "
            "`denoiser` (guided velocity) and `after_denoiser` (Euler step)."
        )
