"""Training an AudioLDM-layout mel VAE (`diffusers.AutoencoderKL`) on the log-mel spectrograms of a set of sounds.

A V2A model generates in its VAE's latent space, so the sound it makes is only as meaningful as that VAE. When no
released AudioLDM VAE is at hand (offline tests, small experiments), a small one trained for a few minutes on the
sounds of the data is enough for the decoded mel spectrogram to show where and at which pitch a sound is.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import AutoencoderKL
from tqdm.auto import tqdm

from ..processors import AudioLDMMelFeatureExtractor


@dataclass(frozen=True)
class AudioVAETraining:
    """What `train_audio_vae` did: the loss of every step, and the per-channel mean and standard deviation of the
    latents it folded into the VAE (`standardise_latent_channels`)."""

    losses: list[float]
    latent_mean: list[float]
    latent_std: list[float]


def build_audio_vae(channels: Sequence[int], seed: int) -> AutoencoderKL:
    """A VAE to train: `tiny_audio_vae`'s layout at the block widths `channels`, its weights drawn from `seed` (its
    scaling factor is replaced by `train_audio_vae`)."""
    from .builtin_models import tiny_audio_vae

    torch.manual_seed(seed)
    return tiny_audio_vae(channels).train()


def waveforms_to_mels(
    waveforms: list[np.ndarray], feature_extractor: AudioLDMMelFeatureExtractor, sampling_rate: int
) -> torch.Tensor:
    """Log-mel spectrograms `[N, 1, T, 64]` of equally long waveforms, as the VAE receives them."""
    return feature_extractor(waveforms, sampling_rate=sampling_rate, return_tensors="pt").input_features


def train_audio_vae(
    vae: AutoencoderKL,
    mels: torch.Tensor,
    num_steps: int,
    batch_size: int = 8,
    learning_rate: float = 1e-3,
    kl_weight: float = 1e-6,
    seed: int = 0,
    loud_weight: float = 0.0,
    sample_posterior: bool = True,
) -> AudioVAETraining:
    r"""
    Trains `vae` in place to reconstruct `mels` (AdamW, L1 reconstruction of a posterior sample plus `kl_weight` x
    KL, as AudioLDM's VAE), then standardises its latent channels on `mels` (`standardise_latent_channels`), so that
    the latents have zero mean and unit variance per channel, as the flow-matching noise does.

    Args:
        vae: The VAE to train, in AudioLDM's layout (1-channel mel image).
        mels: Log-mel spectrograms `[N, 1, T, 64]` (`waveforms_to_mels`), `T` a multiple of the VAE's down-sampling.
        num_steps: Optimiser steps.
        batch_size: Spectrograms per step, drawn at random.
        learning_rate: AdamW's learning rate (cosine decay to zero).
        kl_weight: Weight of the KL term that keeps the latent space smooth.
        seed: Seed of the draws of batches and posterior samples.
        loud_weight: Extra weight of the loud parts of a spectrogram in the L1: each bin counts `1 + loud_weight x
            its energy` (the exponential of its log-mel value), so that short, rare sounds over a long background
            (a beep in two seconds of hiss) are reconstructed rather than averaged away.
        sample_posterior: Decode a posterior sample, as AudioLDM's VAE trains; or, False, its mode, which learns
            within a few hundred steps what a sample's noise hides at first (V2A encodes clips to the mode).
    """
    if not isinstance(vae, AutoencoderKL):
        raise TypeError(f"`vae` must be a diffusers `AutoencoderKL`, got {type(vae)}.")
    if not isinstance(mels, torch.Tensor) or mels.ndim != 4 or mels.shape[1] != vae.config.in_channels:
        raise ValueError(
            f"`mels` must be a tensor [N, {vae.config.in_channels}, T, bins], got "
            f"{tuple(mels.shape) if isinstance(mels, torch.Tensor) else type(mels)}."
        )
    for name, value in (("num_steps", num_steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
    for name, value in (("learning_rate", learning_rate), ("kl_weight", kl_weight), ("loud_weight", loud_weight)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"`{name}` must be a number >= 0, got {value!r}.")

    batch_generator = torch.Generator().manual_seed(seed)
    noise_generator = torch.Generator(vae.device).manual_seed(seed + 1)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=num_steps)
    mels = mels.to(device=vae.device, dtype=vae.dtype)
    losses = []
    vae.train()
    for _ in tqdm(range(num_steps), desc="Training the audio VAE"):
        batch = mels[torch.randint(len(mels), (batch_size,), generator=batch_generator)]
        posterior = vae.encode(batch).latent_dist
        latents = posterior.sample(noise_generator) if sample_posterior else posterior.mode()
        reconstruction = vae.decode(latents).sample
        weights = 1.0 + loud_weight * batch.exp()
        loss = ((reconstruction - batch).abs() * weights).mean() + kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    vae.eval()

    mean, std = standardise_latent_channels(vae, mels, batch_size)
    return AudioVAETraining(losses=losses, latent_mean=mean.tolist(), latent_std=std.tolist())


@torch.no_grad()
def standardise_latent_channels(
    vae: AutoencoderKL, mels: torch.Tensor, batch_size: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Folds the per-channel mean and standard deviation of the posterior modes of `mels` into `vae`'s 1x1
    `quant_conv` (which then gives standardised latents) and `post_quant_conv` (which undoes it before the decoder),
    and sets `scaling_factor` to 1; returns the folded mean and standard deviation `[C]`.

    A small mel VAE's latents are mostly a constant offset per channel, and what tells a beep from silence is a
    deviation of a tenth of that: one overall scale would leave it buried under unit noise, which a small V2A model
    then cannot denoise precisely enough to be heard. The decoded sound of every latent is unchanged, and the folder
    keeps AudioLDM's layout (a scaling factor, no extra statistics)."""
    if not vae.config.use_quant_conv or not vae.config.use_post_quant_conv:
        raise ValueError("`vae` must have its `quant_conv` and `post_quant_conv` to fold the statistics into.")
    latents = torch.cat([vae.encode(chunk).latent_dist.mode() for chunk in mels.split(batch_size)])
    latents = latents * vae.config.scaling_factor
    mean = latents.mean(dim=(0, 2, 3)).double()
    std = latents.std(dim=(0, 2, 3)).double().clamp_min(1e-6)
    channels = len(mean)
    # Stored latents were `scaling_factor` x the posterior mode: the new mode is (that - mean) / std.
    scale = vae.config.scaling_factor / std
    quant, post_quant = vae.quant_conv, vae.post_quant_conv
    quant.weight[:channels] *= scale.to(quant.weight.dtype)[:, None, None, None]
    quant.bias[:channels] = ((quant.bias[:channels].double() * vae.config.scaling_factor - mean) / std).to(quant.bias)
    quant.bias[channels:] += (2 * scale.log()).to(quant.bias.dtype)  # log-variance: the spread scales with the mode
    # The decoder's input was mode = (std x new + mean) / scaling_factor.
    weight = post_quant.weight.double()
    post_quant.bias += (weight[:, :, 0, 0] @ (mean / vae.config.scaling_factor)).to(post_quant.bias.dtype)
    post_quant.weight.copy_((weight * (std / vae.config.scaling_factor)[None, :, None, None]).to(post_quant.weight))
    vae.register_to_config(scaling_factor=1.0)
    return mean.float(), std.float()
