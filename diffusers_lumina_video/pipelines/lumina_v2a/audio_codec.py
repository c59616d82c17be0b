"""Lumina-V2A's audio codec: AudioLDM's mel VAE and HiFi-GAN vocoder, between waveforms and the latents it generates.

Lumina-V2A works on AudioLDM VAE latents `[B, 8, T_lat, 16]`: 16 kHz audio, 160 samples per mel frame, 64 mel bins,
and a VAE that halves time and mel twice, so one latent frame is 4 mel frames = 640 samples and a second of audio is
25 latent frames. The V2A pipeline decodes latents to sound; V2A training encodes sound to latents. Both go through
the two functions here, so both see the same scaling and layout.
"""

import math
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from diffusers import AutoencoderKL
from transformers import SpeechT5HifiGan

from ...processors import AudioLDMMelFeatureExtractor
from ...utils.component_paths import is_hub_repo_id


SAMPLE_RATE = 16000
HOP_LENGTH = 160
MEL_BINS = 64
LATENT_CHANNELS = 8
VAE_DOWNSAMPLING = 4
SAMPLES_PER_LATENT_FRAME = HOP_LENGTH * VAE_DOWNSAMPLING
LATENT_FRAMES_PER_SECOND = SAMPLE_RATE // SAMPLES_PER_LATENT_FRAME


class AudioLDMComponents(NamedTuple):
    vae: AutoencoderKL
    vocoder: SpeechT5HifiGan


def check_audio_components(
    vae: AutoencoderKL, vocoder: SpeechT5HifiGan, feature_extractor: AudioLDMMelFeatureExtractor | None = None
) -> None:
    """Refuses components that do not make AudioLDM's 16 kHz, 64-mel, 8-channel, 4x down-sampled latent space, with
    every mismatch named at once."""
    if not isinstance(vae, AutoencoderKL):
        raise TypeError(f"`vae` must be a diffusers `AutoencoderKL` (AudioLDM's mel VAE), got {type(vae)}.")
    if not isinstance(vocoder, SpeechT5HifiGan):
        raise TypeError(f"`vocoder` must be a transformers `SpeechT5HifiGan`, got {type(vocoder)}.")
    problems = []
    vae_config = vae.config
    if (vae_config.in_channels, vae_config.out_channels) != (1, 1):
        problems.append(
            f"vae has {vae_config.in_channels} input and {vae_config.out_channels} output channels; a mel "
            "spectrogram is a 1-channel image"
        )
    if vae_config.latent_channels != LATENT_CHANNELS:
        problems.append(f"vae has {vae_config.latent_channels} latent channels, expected {LATENT_CHANNELS}")
    downsampling = 2 ** (len(vae_config.block_out_channels) - 1)
    if downsampling != VAE_DOWNSAMPLING:
        problems.append(f"vae down-samples {downsampling}x, expected {VAE_DOWNSAMPLING}x")
    vocoder_config = vocoder.config
    if vocoder_config.model_in_dim != MEL_BINS:
        problems.append(f"vocoder takes {vocoder_config.model_in_dim} mel bins, expected {MEL_BINS}")
    if vocoder_config.sampling_rate != SAMPLE_RATE:
        problems.append(f"vocoder runs at {vocoder_config.sampling_rate} Hz, expected {SAMPLE_RATE}")
    hop = math.prod(vocoder_config.upsample_rates)
    if hop != HOP_LENGTH:
        problems.append(f"vocoder makes {hop} samples per mel frame, expected {HOP_LENGTH}")
    if feature_extractor is not None:
        extractor = (feature_extractor.feature_size, feature_extractor.sampling_rate, feature_extractor.hop_length)
        if extractor != (MEL_BINS, SAMPLE_RATE, HOP_LENGTH):
            problems.append(
                f"feature_extractor makes {extractor[0]} mel bins at {extractor[1]} Hz with a hop of {extractor[2]}, "
                f"expected {MEL_BINS} at {SAMPLE_RATE} Hz with a hop of {HOP_LENGTH}"
            )
    if problems:
        raise ValueError("The AudioLDM audio components do not fit together: " + "; ".join(problems) + ".")


def load_audio_components(
    pretrained_model_name_or_path: str | os.PathLike, dtype: torch.dtype | None = None, **kwargs
) -> AudioLDMComponents:
    """The VAE and vocoder from the `vae/` and `vocoder/` subfolders of a folder or Hub repository in the public
    AudioLDM layout (e.g. `cvssp/audioldm-s-full-v2`), checked to fit. `kwargs` (`revision`, `cache_dir`,
    `local_files_only`, `token`, ...) go to both `from_pretrained` calls."""
    if not is_hub_repo_id(pretrained_model_name_or_path):
        folder = Path(pretrained_model_name_or_path).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"`pretrained_model_name_or_path` {folder} is not a folder or a Hub repository id."
            )
        missing = [name for name in ("vae", "vocoder") if not (folder / name).is_dir()]
        if missing:
            raise FileNotFoundError(
                f"`pretrained_model_name_or_path` {folder} lacks the {' and '.join(missing)} subfolder(s) of the "
                "AudioLDM layout (`vae/` for the AutoencoderKL, `vocoder/` for the SpeechT5HifiGan)."
            )
        pretrained_model_name_or_path = folder
    vae = AutoencoderKL.from_pretrained(pretrained_model_name_or_path, subfolder="vae", **kwargs)
    vocoder = SpeechT5HifiGan.from_pretrained(pretrained_model_name_or_path, subfolder="vocoder", **kwargs)
    check_audio_components(vae, vocoder)
    if dtype is not None:
        vae, vocoder = vae.to(dtype), vocoder.to(dtype)
    return AudioLDMComponents(vae=vae.eval(), vocoder=vocoder.eval())


def _input_device(module: torch.nn.Module, inputs: torch.Tensor) -> torch.device:
    """Where to put a module's inputs: beside its weights, or where they already are when the weights sit on `meta`
    between calls (sequential offload), whose hooks bring inputs and weights to the execution device."""
    device = next(module.parameters()).device
    return inputs.device if device.type == "meta" else device


def waveforms_to_latents(
    waveforms: np.ndarray | torch.Tensor | list[np.ndarray] | list[torch.Tensor],
    sampling_rate: int,
    vae: AutoencoderKL,
    feature_extractor: AudioLDMMelFeatureExtractor,
    target_length: int | None = None,
    sample_posterior: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Scaled latents `[B, 8, target_length // 4, 16]` of 16 kHz waveforms (one 1-D array or a list), the space the
    V2A transformer generates in.

    By default the posterior's mode is taken, so the same clip always gives the same latent (cached training
    latents stay reproducible); the AudioLDM VAE's posterior is narrow, so the mode is what its decoder expects.
    `sample_posterior=True` draws from it instead, as AudioLDM's own latent-diffusion training does.
    """
    features = feature_extractor(
        waveforms, sampling_rate=sampling_rate, target_length=target_length, return_tensors="pt"
    ).input_features
    posterior = vae.encode(features.to(device=_input_device(vae, features), dtype=vae.dtype)).latent_dist
    latents = posterior.sample(generator) if sample_posterior else posterior.mode()
    return latents * vae.config.scaling_factor


def latents_to_waveforms(
    latents: torch.Tensor, vae: AutoencoderKL, vocoder: SpeechT5HifiGan, num_samples: int | None = None
) -> torch.Tensor:
    """Float32 waveforms `[B, num_samples]` of scaled latents `[B, 8, T_lat, 16]`: VAE decode to a mel spectrogram
    `[B, T, 64]`, then the vocoder. `num_samples` defaults to the span of the latents, `T_lat * 640`."""
    latent_bins = MEL_BINS // VAE_DOWNSAMPLING
    if latents.ndim != 4 or latents.shape[1] != vae.config.latent_channels or latents.shape[3] != latent_bins:
        raise ValueError(
            f"`latents` must be [B, {vae.config.latent_channels}, T_lat, {latent_bins}], got {tuple(latents.shape)}."
        )
    available = latents.shape[2] * SAMPLES_PER_LATENT_FRAME
    if num_samples is None:
        num_samples = available
    elif isinstance(num_samples, bool) or not isinstance(num_samples, int) or not 0 < num_samples <= available:
        raise ValueError(
            f"`num_samples` must be an int in [1, {available}] ({latents.shape[2]} latent frames x "
            f"{SAMPLES_PER_LATENT_FRAME} samples), got {num_samples!r}."
        )
    mel = vae.decode(
        latents.to(device=_input_device(vae, latents), dtype=vae.dtype) / vae.config.scaling_factor
    ).sample
    waveforms = vocoder(mel.squeeze(1).to(device=_input_device(vocoder, mel), dtype=vocoder.dtype))
    return waveforms[:, :num_samples].float()
