"""What the Lumina pipelines share while they sample: the Euler time grid and the state Diffusers exposes as
pipeline properties (read by callbacks, e.g. `pipe.guidance_scale` or `pipe.num_timesteps`)."""

from typing import Any

import torch

from .lumina_video.schedules import lumina_sigmas


class LuminaSamplingMixin:
    """Mixed into a `DiffusionPipeline` with a flow-matching `scheduler`."""

    def set_lumina_timesteps(self, num_inference_steps: int, device: torch.device) -> torch.Tensor:
        """Sets the scheduler on the reference's grid (`sigma = 1 - t`, see `lumina_sigmas`) and returns its
        timesteps; the Lumina time of step `i` is `1 - scheduler.sigmas[i]`."""
        self.scheduler.set_timesteps(sigmas=lumina_sigmas(num_inference_steps), device=device)
        self.scheduler.set_begin_index(0)
        self._num_timesteps = len(self.scheduler.timesteps)
        return self.scheduler.timesteps

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
