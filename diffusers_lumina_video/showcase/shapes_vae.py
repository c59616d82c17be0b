"""A tiny `AutoencoderKLCogVideoX` trained on the shape clips, so a model trained from scratch on them has latents that
decode into recognisable frames.

It keeps the CogVideoX layout the pipeline loads (causal 3D convolutions, 4x temporal compression) at a toy width,
with 4x spatial compression instead of 8x so that a shape of a dozen pixels spans a few latent cells. Training follows
the path the text-to-video model uses: clips of 1 + 4k frames are encoded, the first latent frame is dropped (as the
training cache does) and the rest is decoded into the following 4k frames.
"""

import math
from collections.abc import Sequence

import numpy as np
import torch
from diffusers import AutoencoderKLCogVideoX
from tqdm.auto import tqdm

from .synthetic_shapes import BACKGROUNDS, CLIP_FORMAT_V1, ClipFormat, ShapeSpec, render_shape_clip


def shapes_vae(latent_channels: int = 8, temporal_compression_ratio: int = 4) -> AutoencoderKLCogVideoX:
    """4x spatial (three blocks) and 4x (or 2x) temporal compression; the scaling factor is set after training.

    Its decoder upsamples time by repeating frames, and the causal padding before the first latent frame repeats it as
    well, so the frames the first latent frame decodes into are identical: a shape stands still over the first
    `temporal_compression_ratio` frames of every clip. 2x keeps that to one step of a clip of 16 frames."""
    return AutoencoderKLCogVideoX(
        down_block_types=("CogVideoXDownBlock3D",) * 3,
        up_block_types=("CogVideoXUpBlock3D",) * 3,
        block_out_channels=(8, 16, 32),
        latent_channels=latent_channels,
        layers_per_block=1,
        norm_num_groups=4,
        temporal_compression_ratio=temporal_compression_ratio,
        sample_height=64,
        sample_width=64,
    )


def random_clips(
    specs: Sequence[ShapeSpec],
    count: int,
    rng: np.random.Generator,
    size: int | None = None,
    num_frames: int | None = None,
    speed_jitter: float = 0.25,
    clip_format: ClipFormat = CLIP_FORMAT_V1,
) -> torch.Tensor:
    """`[count, 3, num_frames, size, size]` in [-1, 1]: random specs, placements and backgrounds. `size` and
    `num_frames` default to the format's."""
    clips = [
        render_shape_clip(
            specs[int(rng.integers(len(specs)))],
            seed=int(rng.integers(2**31)),
            size=size,
            num_frames=num_frames,
            background=BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))],
            speed_jitter=speed_jitter,
            clip_format=clip_format,
        )
        for _ in range(count)
    ]
    return torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


def random_crops(clips: torch.Tensor, crop: int, rng: np.random.Generator) -> torch.Tensor:
    """One random `crop` x `crop` window per clip, the same in every frame."""
    size = clips.shape[-1]
    corners = rng.integers(0, size - crop + 1, size=(len(clips), 2))
    return torch.stack([clip[..., y : y + crop, x : x + crop] for clip, (y, x) in zip(clips, corners, strict=True)])


def shape_weight(frames: torch.Tensor, weight: float = 10.0) -> torch.Tensor:
    """`weight` on the pixels of the shapes, 1 elsewhere: shapes are saturated colours over greyish backgrounds and
    cover a few percent of a frame, so an unweighted loss learns grey blobs long before it learns colours."""
    saturation = frames.amax(dim=1, keepdim=True) - frames.amin(dim=1, keepdim=True)  # in [0, 2] for [-1, 1] frames
    return 1.0 + (weight - 1.0) * (saturation > 0.8).float()


def frame_and_motion_losses(decoded: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 + MSE on frames `[B, 3, T, H, W]`, and L1 on their frame-to-frame differences, both weighted towards the
    shapes (`shape_weight`): what a reconstruction of the shape clips must get right, colours and motion."""
    error = (decoded - target).abs() + (decoded - target).pow(2)
    motion = ((decoded.diff(dim=2) - target.diff(dim=2)).abs() * shape_weight(target[:, :, 1:])).mean()
    return (error * shape_weight(target)).mean(), motion


def decode_without_first(vae: AutoencoderKLCogVideoX, latents: torch.Tensor) -> torch.Tensor:
    """Frames 1.. of a clip from its latents with the first latent frame dropped, as the pipeline decodes them."""
    return vae.decode(latents[:, :, 1:]).sample


def train_shapes_vae(
    vae: AutoencoderKLCogVideoX,
    specs: Sequence[ShapeSpec],
    steps: int,
    batch_size: int = 4,
    learning_rate: float = 2e-3,
    kl_weight: float = 1e-6,
    edge_weight: float = 2.0,
    temporal_weight: float = 0.0,
    size: int = 64,
    crop: int = 32,
    num_frames: int = 9,
    seed: int = 0,
    clip_format: ClipFormat = CLIP_FORMAT_V1,
) -> list[float]:
    """Trains `vae` in place on freshly rendered clips with AdamW and a cosine schedule; returns the loss per step.

    The loss is L1 + MSE on frames 1.. weighted towards the shapes, L1 on their horizontal and vertical differences
    (`edge_weight`: outlines are what tells a triangle from a circle), L1 on the differences between consecutive
    frames weighted towards the shapes (`temporal_weight`: the shape moves every frame, not once per latent frame),
    and a small KL term. It decodes the posterior's
    mode, the latent the training cache stores: a sample's noise (unit variance at initialisation) would hide the
    colours from the decoder for the whole run. The network is convolutional, so it trains on random `crop`-pixel
    windows of `size`-pixel clips: the same shapes at the same scale for a quarter of the compute at 32 of 64 px.
    Deterministic for a seed on one thread count. The clips are of `clip_format` at `size` and `num_frames`."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"`steps` and `batch_size` must be >= 1, got {steps} and {batch_size}.")
    if not 0 < crop <= size or crop % 16:
        raise ValueError(f"`crop` must be a multiple of 16 in (0, size={size}], got {crop}.")
    ratio = vae.config.temporal_compression_ratio
    if (num_frames - 1) % (2 * ratio) or num_frames < 1:
        # The decoder takes latent frames two at a time: an odd count decodes into fewer frames than it encodes.
        raise ValueError(
            f"`num_frames` must be 1 + a multiple of 2 x the VAE's temporal compression {ratio} (an even count of "
            f"latent frames after the first), got {num_frames}."
        )
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=learning_rate, betas=(0.9, 0.99), weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
    vae.train()
    losses = []
    for _ in (progress := tqdm(range(steps), desc="Training the VAE", unit="step")):
        clips = random_crops(
            random_clips(specs, batch_size, rng, size, num_frames, clip_format=clip_format), crop, rng
        )
        posterior = vae.encode(clips).latent_dist
        decoded = decode_without_first(vae, posterior.mode())
        target = clips[:, :, 1:]
        frames, motion = frame_and_motion_losses(decoded, target)
        edges = sum((decoded.diff(dim=axis) - target.diff(dim=axis)).abs().mean() for axis in (-1, -2))
        loss = frames + edge_weight * edges + temporal_weight * motion + kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        progress.set_postfix(loss=f"{loss.item():.4f}")
    vae.eval()
    return losses


@torch.no_grad()
def fit_scaling_factor(vae: AutoencoderKLCogVideoX, clips: torch.Tensor) -> float:
    """Sets `scaling_factor` so that scaled latents of `clips` have unit standard deviation (what the flow's noise
    assumes), and returns it."""
    latents = vae.encode(clips).latent_dist.mode()[:, :, 1:]
    factor = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=factor)
    return factor


@torch.no_grad()
def reconstruct(vae: AutoencoderKLCogVideoX, clips: torch.Tensor) -> torch.Tensor:
    """Frames 1.. of `clips` after encoding (posterior mode) and decoding, in [-1, 1]."""
    return decode_without_first(vae, vae.encode(clips).latent_dist.mode()).clamp(-1, 1)


def fit_encoder_to_decoder(
    vae: AutoencoderKLCogVideoX,
    generated_latents: torch.Tensor,
    specs: Sequence[ShapeSpec],
    steps: int,
    batch_size: int = 4,
    learning_rate: float = 5e-4,
    crop: int = 32,
    seed: int = 0,
    clip_format: ClipFormat = CLIP_FORMAT_V1,
) -> list[float]:
    """Trains `vae`'s encoder in place, its decoder frozen, to invert that decoder; returns the loss per step.

    Trained together, the two need not be each other's inverse: encoding a decoded video and decoding it again slows
    the shape down (2 px behind after 16 frames, median of generated clips), so video-to-video starts from another
    motion than its input's. Each step encodes and decodes `batch_size` frames-1.. windows of generated videos
    (`generated_latents`, unscaled `[N, C, F, h, w]`, decoded here; their latents are the target as well) and as
    many of freshly rendered `specs` clips, with the loss of `train_shapes_vae` on frames and their differences.
    Every video the model generates is unchanged: only the decoder makes them. Seeded like `train_shapes_vae`."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"`steps` and `batch_size` must be >= 1, got {steps} and {batch_size}.")
    spatial = 2 ** (len(vae.config.block_out_channels) - 1)
    size = generated_latents.shape[-1] * spatial
    if not 0 < crop <= size or crop % spatial:
        raise ValueError(f"`crop` must be a multiple of {spatial} in (0, {size}], got {crop}.")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        generated = torch.cat([vae.decode(chunk[None]).sample.clamp(-1, 1) for chunk in generated_latents])
    vae.decoder.requires_grad_(False)
    parameters = list(vae.encoder.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.0)
    vae.train()
    losses = []
    for _ in (progress := tqdm(range(steps), desc="Fitting the VAE's encoder", unit="step")):
        chosen = rng.integers(len(generated), size=batch_size)
        rendered = random_clips(specs, batch_size, rng, size, clip_format=clip_format)[:, :, 1:]
        corners = rng.integers(0, (size - crop) // spatial + 1, size=(2 * batch_size, 2)) * spatial
        windows = [
            clip[..., y : y + crop, x : x + crop]
            for clip, (y, x) in zip([*generated[chosen], *rendered], corners, strict=True)
        ]
        targets = [
            latents[..., y // spatial : (y + crop) // spatial, x // spatial : (x + crop) // spatial]
            for latents, (y, x) in zip(generated_latents[chosen], corners, strict=False)
        ]
        frames = torch.stack(windows)
        latents = vae.encode(frames).latent_dist.mode()
        decoded = vae.decode(latents).sample
        frame_loss, motion = frame_and_motion_losses(decoded, frames)
        inversion = (latents[:batch_size] - torch.stack(targets)).pow(2).mean()
        loss = frame_loss + motion + inversion
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(loss.item())
        progress.set_postfix(loss=f"{loss.item():.4f}")
    vae.decoder.requires_grad_(True)
    vae.eval()
    return losses
