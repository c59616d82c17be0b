"""The Lumina training recipe as pure functions: time sampling with a shift per patchification, caption and
motion-condition dropout, and the rectified-flow loss with the optional direction term, for video (Lumina-Video)
and audio (Lumina-V2A) batches alike.

Randomness comes from one generator per *sample*, seeded from the run seed and the sample's place in the global
batch, never from a process-wide stream. That is what makes a resumed run repeat an uninterrupted one and lets any
number of processes draw the same noise for the same sample.
"""

import hashlib
from dataclasses import dataclass, fields, replace
from typing import Any, Self

import torch
import torch.nn.functional as F


PatchSize = tuple[int, int, int]

# Scale-aware time shifts of the reference's 256 px training, per patchification; images use 1.
REFERENCE_TIMESTEP_SHIFTS: dict[PatchSize, float] = {(1, 2, 2): 2.0, (2, 2, 2): 4.0, (2, 4, 4): 8.0}
MOTION_ABSENT = -1.0


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed that depends on every part, so nearby parts give unrelated streams."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def sample_generator(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator for one sample and one purpose ("conditions", "noise"), so the draws of one never shift
    those of the other."""
    return torch.Generator().manual_seed(derive_seed(seed, purpose))


def shift_timesteps(t: torch.Tensor, shift: float) -> torch.Tensor:
    """`t / (t + shift - shift * t)`: with shift > 1, more time near noise (t = 0), as larger inputs need."""
    return t / (t + shift - shift * t)


def drop_conditions(
    prompt_embeds: torch.Tensor,
    null_prompt_embeds: torch.Tensor,
    motion_score: float | None,
    is_image: bool,
    generator: torch.Generator,
    caption_dropout: float,
    motion_dropout: float,
    image_motion_zero_prob: float,
) -> tuple[torch.Tensor, float]:
    """One sample's text features and motion condition after the reference's dropouts.

    The caption becomes the system prompt alone (`null_prompt_embeds`) with probability `caption_dropout`. A video
    loses its motion condition (-1) with probability `motion_dropout`; an image gets motion 0 (still) with
    probability `image_motion_zero_prob`, else none.
    """
    caption_draw, motion_draw = torch.rand(2, generator=generator).tolist()
    embeds = null_prompt_embeds if caption_draw < caption_dropout else prompt_embeds
    if is_image:
        motion = 0.0 if motion_draw < image_motion_zero_prob else MOTION_ABSENT
    else:
        motion = MOTION_ABSENT if motion_draw < motion_dropout or motion_score is None else float(motion_score)
    return embeds, motion


class _Batch:
    """What every micro-batch type shares: moving its tensors to a device."""

    def to(self, device: torch.device | str) -> Self:
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(self, **{k: v.to(device) for k, v in moved.items() if isinstance(v, torch.Tensor)})


@dataclass
class TrainingBatch(_Batch):
    """One micro-batch: samples of one bucket, all trained with the same patchification and time shift."""

    latents: torch.Tensor  # [B, C, F, H, W], clean, already scaled by the VAE scaling factor
    prompt_embeds: torch.Tensor  # [B, L, D], right-padded
    prompt_attention_mask: torch.Tensor  # [B, L], 1 for real tokens
    motion_score: torch.Tensor  # [B], negative = no motion condition
    patch_size: PatchSize
    timestep_shift: float
    seeds: list[int]  # one per sample; see `sample_generator`

    def model_inputs(self) -> dict[str, Any]:
        """The Lumina-Video transformer's conditions (everything but the noisy latents and the time)."""
        return {
            "encoder_hidden_states": self.prompt_embeds,
            "encoder_attention_mask": self.prompt_attention_mask,
            "motion_score": self.motion_score,
            "patch_size": self.patch_size,
        }


@dataclass
class AudioTrainingBatch(_Batch):
    """One Lumina-V2A micro-batch: audio latents of one fixed clip duration and their three condition streams. A
    dropped condition keeps its features; the transformer swaps in its learned empty embedding where `drop_*` is
    True, as the pipeline's negative guidance branch does."""

    latents: torch.Tensor  # [B, C, T, F] AudioLDM VAE latents, already scaled by the VAE scaling factor
    text_embeds: torch.Tensor  # [B, L, D_text], right-padded
    text_mask: torch.Tensor  # [B, L], 1 for real tokens
    visual_embeds: torch.Tensor  # [B, V, D_visual], CLIP features at 8 fps
    visual_mask: torch.Tensor  # [B, V], 1 for real frames
    sync_embeds: torch.Tensor  # [B, S * 8, D_sync], Synchformer features
    drop_visual: torch.Tensor  # [B] bool
    drop_text: torch.Tensor  # [B] bool
    drop_sync: torch.Tensor  # [B] bool
    seeds: list[int]  # one per sample; see `sample_generator`
    timestep_shift: float = 1.0

    def model_inputs(self) -> dict[str, Any]:
        """The Lumina-V2A transformer's conditions (everything but the noisy latents and the time)."""
        return {
            "encoder_hidden_states": self.text_embeds,
            "encoder_attention_mask": self.text_mask,
            "visual_hidden_states": self.visual_embeds,
            "visual_attention_mask": self.visual_mask,
            "sync_hidden_states": self.sync_embeds,
            "drop_visual": self.drop_visual,
            "drop_text": self.drop_text,
            "drop_sync": self.drop_sync,
        }


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar to backpropagate: mean over the batch of flow + vd_weight * direction
    flow_loss: torch.Tensor  # [B] mean squared velocity error, detached
    direction_loss: torch.Tensor  # [B] 1 - cos(pred, target) over the whole sample, detached
    timesteps: torch.Tensor  # [B] the shifted times


def flow_matching_loss(
    model: torch.nn.Module,
    batch: TrainingBatch | AudioTrainingBatch,
    generators: list[torch.Generator],
    vd_weight: float = 0.0,
) -> LossOutput:
    """Rectified-flow loss of `model` on `batch`: `x_t = t * x1 + (1 - t) * x0` with x0 ~ N(0, I), t ~ U(0, 1) then
    shifted, target velocity `x1 - x0`, per-sample MSE plus `vd_weight * (1 - cos(pred, target))`.

    `generators` holds one generator per sample (the time is drawn first, then the noise), so each sample's
    randomness is independent of the batch it lands in. Video and audio batches differ only in the conditions
    they pass (`model_inputs`).
    """
    if len(generators) != batch.latents.shape[0]:
        raise ValueError(f"`generators` has {len(generators)} entries for a batch of {batch.latents.shape[0]}.")
    device = batch.latents.device
    clean = batch.latents.float()
    t = torch.stack([torch.rand((), generator=g) for g in generators])
    noise = torch.stack([torch.randn(clean.shape[1:], generator=g) for g in generators])
    t, noise = shift_timesteps(t, batch.timestep_shift).to(device), noise.to(device)

    t_expanded = t.view(-1, *([1] * (clean.ndim - 1)))
    noisy = t_expanded * clean + (1.0 - t_expanded) * noise
    target = clean - noise
    prediction = model(
        hidden_states=noisy,
        timestep=t,
        return_dict=False,
        **batch.model_inputs(),
    )[0].float()

    flow = (prediction - target).pow(2).flatten(1).mean(dim=1)
    direction = 1.0 - F.cosine_similarity(prediction.flatten(1), target.flatten(1), dim=1)
    per_sample = flow + vd_weight * direction if vd_weight > 0 else flow
    return LossOutput(per_sample.mean(), flow.detach(), direction.detach(), t)
