from dataclasses import dataclass

import numpy as np
import torch
from diffusers.utils import BaseOutput


@dataclass
class LuminaV2APipelineOutput(BaseOutput):
    r"""
    Output of [`LuminaV2APipeline`].

    Args:
        audios (`np.ndarray` or `torch.Tensor`):
            The waveforms, `(batch_size, num_samples)` float32 in [-1, 1] at `sample_rate`; with
            `output_type="latent"`, the latents `(batch_size, 8, latent_frames, 16)`.
        sample_rate (`int`): Samples per second of `audios`.
    """

    audios: np.ndarray | torch.Tensor
    sample_rate: int = 16000
