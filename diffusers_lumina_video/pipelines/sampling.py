"""What the Lumina pipelines share while they sample: the Euler time grid and the state Diffusers exposes as
pipeline properties (read by callbacks, e.g. `pipe.guidance_scale` or `pipe.num_timesteps`)."""

import contextlib
from typing import Any

import torch

from ..models.cache import check_cache_for_run
from .lumina_video.schedules import lumina_sigmas


def check_output_type(output_type: str, allowed: tuple[str, ...]) -> None:
    if output_type not in allowed:
        raise ValueError(f"`output_type` must be one of {list(allowed)}, got {output_type!r}.")


class LuminaSamplingMixin:
    """Mixed into a `DiffusionPipeline` with a flow-matching `scheduler`."""

    def set_lumina_timesteps(self, num_inference_steps: int, device: torch.device) -> torch.Tensor:
        """Sets the scheduler on the reference's grid (`sigma = 1 - t`, see `lumina_sigmas`) and returns its
        timesteps; the Lumina time of step `i` is `1 - scheduler.sigmas[i]`."""
        self.scheduler.set_timesteps(sigmas=lumina_sigmas(num_inference_steps), device=device)
        self.scheduler.set_begin_index(0)
        self._num_timesteps = len(self.scheduler.timesteps)
        self._last_call_kind = None
        return self.scheduler.timesteps

    def check_cache_for_run(self, call_kinds: list[str]) -> None:
        """Refuses, before the first step, a cache method that cannot line up with this run's kinds of call."""
        if self.transformer.is_cache_enabled:
            check_cache_for_run(self.transformer._cache_config, call_kinds)

    def transformer_call_context(self, kind: str, step_index: int, time: float) -> contextlib.AbstractContextManager:
        """The cache context of one transformer call. Cache methods keep one state per kind of call (both guidance
        branches batched, the positive branch alone, each patchification), whose activations differ in shape; a
        schedule never returns to a kind it left, so the caches restart at every change (and at the start of a run),
        where their stored tensors stop fitting."""
        if not self.transformer.is_cache_enabled:
            return contextlib.nullcontext()  # opening a context walks every module: not worth it per step for nothing
        if kind != self._last_call_kind:
            self.transformer._reset_stateful_cache()
        self._last_call_kind = kind
        return self.transformer.cache_context(
            kind, step_index=step_index, sigma=1.0 - time, num_inference_steps=self._num_timesteps
        )

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def current_timestep(self) -> torch.Tensor | None:
        return self._current_timestep

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    @property
    def attention_kwargs(self) -> dict[str, Any] | None:
        return self._attention_kwargs
