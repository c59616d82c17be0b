"""One denoising step of the Lumina pipelines, shared by the classic pipelines and the modular blocks.

Lumina's classifier-free guidance is a Diffusers guider (`LuminaGuidance`): a guidance scale over Lumina time, the
reference's renorm, and the negative branch's own motion score. Both branches run in one batched transformer call;
the guider decides which branches run at a step and how their predictions combine, so another Diffusers guider that
predicts the same two branches (e.g. `ClassifierFreeGuidance`) can take its place.
"""

import numbers
from typing import Any

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.guiders.guider_utils import BaseGuidance, GuiderOutput
from diffusers.utils import logging

from ...models.transformers.transformer_lumina_video import patch_size_key
from .presets import SAMPLING_PRESETS
from .schedules import PatchSize, TimeSchedule, parse_float


_DEFAULTS = SAMPLING_PRESETS["f24F96R960"]
_GUIDER_LOGGER = logging.get_logger("diffusers.guiders.guider_utils")
BRANCHES = ("pred_cond", "pred_uncond")


class LuminaGuidance(BaseGuidance):
    r"""
    Lumina's classifier-free guidance, `neg + w * (pos - neg)` with the reference's renorm.

    Args:
        guidance_scale (`float` or schedule): `w`, a constant or `(t_start, value)` pairs over Lumina time (0 = noise,
            1 = data); where `w <= 1` only the positive branch runs.
        guidance_renorm (`float`, *optional*): Caps the guided velocity's norm at this multiple of the positive
            velocity's norm; `None` turns it off.
        negative_motion_score (`float` or schedule, *optional*): The motion condition of the negative branch;
            `None` gives it the positive branch's (the audio model has no motion condition).
        start, stop, enabled: As for every Diffusers guider (fractions of the steps where guidance may run).
    """

    _input_predictions = list(BRANCHES)

    @register_to_config
    def __init__(
        self,
        guidance_scale: float | list[tuple[float, float]] = tuple(_DEFAULTS["guidance_scale"]),
        guidance_renorm: float | None = _DEFAULTS["guidance_renorm"],
        negative_motion_score: float | list[tuple[float, float]] | None = tuple(_DEFAULTS["negative_motion_score"]),
        start: float = 0.0,
        stop: float = 1.0,
        enabled: bool = True,
    ):
        # The base class warns on every construction that guiders are experimental; the pipelines build one per call.
        level = _GUIDER_LOGGER.level
        _GUIDER_LOGGER.setLevel(logging.ERROR)
        try:
            super().__init__(start, stop, enabled)
        finally:
            _GUIDER_LOGGER.setLevel(level)
        self.scale_schedule = TimeSchedule.parse("guidance_scale", guidance_scale, parse_float)
        self.negative_motion_schedule = (
            None
            if negative_motion_score is None
            else TimeSchedule.parse("negative_motion_score", negative_motion_score, parse_float)
        )
        check_guidance_renorm(guidance_renorm)
        self.guidance_renorm = guidance_renorm
        self.guidance_scale = self.scale_schedule.at(0.0)
        self.time = 0.0

    def set_state(
        self,
        step: int,
        num_inference_steps: int,
        timestep: torch.Tensor,
        time: float | None = None,
        guidance_scale: float | None = None,
    ) -> None:
        """Also takes the step's Lumina `time` (default `1 - timestep / 1000`) and a `guidance_scale` that replaces
        the schedule's at this step (a pipeline callback's)."""
        super().set_state(step, num_inference_steps, timestep)
        self.time = 1.0 - float(timestep) / 1000 if time is None else time
        self.guidance_scale = self.scale_schedule.at(self.time) if guidance_scale is None else guidance_scale

    @property
    def uses_guidance(self) -> bool:
        """Whether the negative branch runs at some step, so its text features must be prepared."""
        return self._enabled and any(scale > 1.0 for scale in self.scale_schedule.values)

    def negative_motion_score(self, motion_score: float) -> float:
        """The negative branch's motion condition at the current time."""
        return motion_score if self.negative_motion_schedule is None else self.negative_motion_schedule.at(self.time)

    def _is_cfg_enabled(self) -> bool:
        if not self._enabled or self.guidance_scale <= 1.0:
            return False
        if self._num_inference_steps is None:
            return True
        return int(self._start * self._num_inference_steps) <= self._step < int(self._stop * self._num_inference_steps)

    @property
    def num_conditions(self) -> int:
        return 2 if self._is_cfg_enabled() else 1

    @property
    def is_conditional(self) -> bool:
        return self._count_prepared == 1

    def prepare_inputs(self, data: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> list:
        return [self._prepare_batch(data, index, name) for index, name in enumerate(BRANCHES[: self.num_conditions])]

    def prepare_inputs_from_block_state(self, data, input_fields: dict[str, str | tuple[str, str]]) -> list:
        return [
            self._prepare_batch_from_block_state(input_fields, data, index, name)
            for index, name in enumerate(BRANCHES[: self.num_conditions])
        ]

    def forward(self, pred_cond: torch.Tensor, pred_uncond: torch.Tensor | None = None) -> GuiderOutput:
        pred = pred_cond if pred_uncond is None else pred_uncond + self.guidance_scale * (pred_cond - pred_uncond)
        if self.guidance_renorm is not None:
            dims = tuple(range(1, pred.ndim))
            max_norm = self.guidance_renorm * torch.linalg.vector_norm(pred_cond, dim=dims, keepdim=True)
            norm = torch.linalg.vector_norm(pred, dim=dims, keepdim=True)
            pred = pred * (max_norm / norm).clamp(max=1.0)
        return GuiderOutput(pred=pred, pred_cond=pred_cond, pred_uncond=pred_uncond)


def check_guidance_renorm(guidance_renorm: Any) -> None:
    if guidance_renorm is not None and (
        isinstance(guidance_renorm, bool) or not isinstance(guidance_renorm, numbers.Real)
    ):
        raise TypeError(f"`guidance_renorm` must be None (off) or a number > 0, got {guidance_renorm!r}.")
    if guidance_renorm is not None and not 0 < guidance_renorm < float("inf"):
        raise ValueError(f"`guidance_renorm` must be None (off) or a finite number > 0, got {guidance_renorm}.")


def set_guider_state(guider: BaseGuidance, step_index: int, num_steps: int, timestep: torch.Tensor, time: float):
    """Any Diffusers guider's `set_state`; a `LuminaGuidance` also gets the Lumina time."""
    if isinstance(guider, LuminaGuidance):
        guider.set_state(step=step_index, num_inference_steps=num_steps, timestep=timestep, time=time)
    else:
        guider.set_state(step=step_index, num_inference_steps=num_steps, timestep=timestep)


def guider_branches(guider: BaseGuidance, data: dict[str, tuple[Any, Any]]) -> list:
    """The guider's branches for this step, each with its inputs from `data` (`(positive, negative)` pairs).
    Lumina batches the positive and negative branch in one call, so only guiders of those two branches fit."""
    branches = guider.prepare_inputs(data)
    names = [getattr(branch, guider._identifier_key) for branch in branches]
    if names != list(BRANCHES[: len(names)]):
        raise ValueError(
            f"The guider {type(guider).__name__} predicts {names}; the Lumina pipelines run the branches "
            f"{list(BRANCHES)} (a positive and a negative one) and take guiders of those, such as `LuminaGuidance` "
            "or `ClassifierFreeGuidance`."
        )
    return branches


def combine_branches(guider: BaseGuidance, branches: list, velocity: torch.Tensor) -> torch.Tensor:
    """The guided velocity from one batched prediction whose rows are the branches in order."""
    for branch, prediction in zip(branches, velocity.chunk(len(branches)), strict=True):
        branch.noise_pred = prediction
    return guider(branches).pred


def call_kind(guided: bool, patch_size: PatchSize | None = None) -> str:
    """The cache context of a transformer call: guided (both branches batched) or not, and its patchification."""
    kind = "cond_uncond" if guided else "cond"
    return kind if patch_size is None else f"{kind}_{patch_size_key(patch_size)}"


def video_velocity(
    transformer: torch.nn.Module,
    guider: BaseGuidance,
    latents: torch.Tensor,
    time: float,
    text: dict[str, torch.Tensor],
    motion_score: float,
    patch_size: PatchSize,
    attention_kwargs: dict[str, Any] | None,
) -> torch.Tensor:
    """Lumina-Video's guided velocity at `time`: the guider's branches in one transformer call, then combined."""
    batch_size, _, num_frames = latents.shape[:3]
    motion = torch.full((batch_size,), motion_score, device=latents.device)
    negative_motion = motion_score
    if isinstance(guider, LuminaGuidance):
        negative_motion = guider.negative_motion_score(motion_score)
    branches = guider_branches(guider, {"motion_score": (motion, torch.full_like(motion, negative_motion))})
    guided = len(branches) == 2
    model_input = torch.cat([latents] * len(branches))
    # A temporal patch longer than an odd frame count: pad with the last frame, crop the prediction.
    pad = (-num_frames) % patch_size[0] if num_frames > 1 else 0
    if pad:
        model_input = torch.cat([model_input, model_input[:, :, -1:].expand(-1, -1, pad, -1, -1)], dim=2)
    velocity = transformer(
        hidden_states=model_input.to(text["embeds"].dtype),  # the transformer's dtype
        timestep=torch.full((model_input.shape[0],), time, device=latents.device),
        encoder_hidden_states=text["embeds"] if guided else text["embeds"][:batch_size],
        encoder_attention_mask=text["guided_mask"] if guided else text["mask_of_positive"],
        motion_score=torch.cat([branch.motion_score for branch in branches]),
        patch_size=patch_size,
        attention_kwargs=attention_kwargs,
        return_dict=False,
    )[0][:, :, :num_frames].float()
    return combine_branches(guider, branches, velocity)


def euler_step(scheduler, velocity: torch.Tensor, timestep: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    """The scheduler integrates d(sample)/d(sigma) = -velocity."""
    return scheduler.step(-velocity, timestep, latents, return_dict=False)[0]


def lumina_time(scheduler, step_index: int) -> float:
    """The Lumina time (0 = noise, 1 = data) at the start of step `step_index`: `1 - sigma`."""
    return 1.0 - float(scheduler.sigmas[step_index])


def step_velocity(
    pipe,
    guider: BaseGuidance,
    latents: torch.Tensor,
    step_index: int,
    motion_score: float,
    patch_size: PatchSize,
    text: dict[str, torch.Tensor],
    attention_kwargs: dict[str, Any] | None,
) -> torch.Tensor:
    """The guided velocity of step `step_index` in its cache context. `pipe` has the `transformer`, the `scheduler`
    and `LuminaSamplingMixin`'s cache contexts (classic or modular pipeline); the guider's state is set for the step."""
    time = lumina_time(pipe.scheduler, step_index)
    with pipe.transformer_call_context(call_kind(guider.num_conditions > 1, patch_size), step_index, time):
        return video_velocity(
            pipe.transformer, guider, latents, time, text, motion_score, patch_size, attention_kwargs
        )


def denoise_video_step(
    pipe,
    guider: BaseGuidance,
    latents: torch.Tensor,
    step_index: int,
    timestep: torch.Tensor,
    motion_score: float,
    patch_size: PatchSize,
    text: dict[str, torch.Tensor],
    attention_kwargs: dict[str, Any] | None,
) -> torch.Tensor:
    """One Lumina-Video step: the guided velocity, then the Euler update."""
    velocity = step_velocity(pipe, guider, latents, step_index, motion_score, patch_size, text, attention_kwargs)
    return euler_step(pipe.scheduler, velocity, timestep, latents)


def decode_video(vae, video_processor, latents: torch.Tensor, num_frames: int, output_type: str):
    """Latents -> frames in `output_type`, cropped to `num_frames` (the VAE's temporal rounding)."""
    if output_type == "latent":
        return latents
    latents = latents.to(vae.dtype) / vae.config.scaling_factor
    frames = vae.decode(latents, return_dict=False)[0]
    return video_processor.postprocess_video(frames[:, :, :num_frames], output_type=output_type)
