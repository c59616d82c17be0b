from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput


@dataclass
class LuminaVideoPipelineOutput(BaseOutput):
    r"""
    Output of [`LuminaVideoPipeline`].

    Args:
        frames (`torch.Tensor`, `np.ndarray`, or `list[list[PIL.Image.Image]]`):
            The videos: a list (one per video) of frame lists, or an array/tensor of shape
            `(batch_size, num_frames, channels, height, width)` (`"pt"`) / `(batch_size, num_frames, height, width,
            channels)` (`"np"`); with `output_type="latent"`, the latents `(batch_size, channels, frames, h, w)`.
    """

    frames: torch.Tensor | np.ndarray | list[list[PIL.Image.Image]]
