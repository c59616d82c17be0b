"""The Lumina-Video training recipe as pure functions: time sampling with a shift per patchification, caption and
motion-condition dropout, and the rectified-flow loss with the optional direction term.

Randomness comes from one generator per *sample*, seeded from the run seed and the sample's place in the global
batch, never from a process-wide stream. That is what makes a resumed run repeat an uninterrupted one and lets any
number of processes draw the same noise for the same sample.
"""

import hashlib
from dataclasses import dataclass, replace

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


@dataclass
class TrainingBatch:
    """One micro-batch: samples of one bucket, all trained with the same patchification and time shift."""

    latents: torch.Tensor  # [B, C, F, H, W], clean, already scaled by the VAE scaling factor
    prompt_embeds: torch.Tensor  # [B, L, D], right-padded
    prompt_attention_mask: torch.Tensor  # [B, L], 1 for real tokens
    motion_score: torch.Tensor  # [B], negative = no motion condition
    patch_size: PatchSize
    timestep_shift: float
    seeds: list[int]  # one per sample; see `sample_generator`

    def to(self, device: torch.device) -> "TrainingBatch":
        return replace(
            self,
            latents=self.latents.to(device),
            prompt_embeds=self.prompt_embeds.to(device),
            prompt_attention_mask=self.prompt_attention_mask.to(device),
            motion_score=self.motion_score.to(device),
        )


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar to backpropagate: mean over the batch of flow + vd_weight * direction
    flow_loss: torch.Tensor  # [B] mean squared velocity error, detached
    direction_loss: torch.Tensor  # [B] 1 - cos(pred, target) over the whole sample, detached
    timesteps: torch.Tensor  # [B] the shifted times


def flow_matching_loss(
    model: torch.nn.Module,
    batch: TrainingBatch,
    generators: list[torch.Generator],
    vd_weight: float = 0.0,
) -> LossOutput:
    """Rectified-flow loss of `model` on `batch`: `x_t = t * x1 + (1 - t) * x0` with x0 ~ N(0, I), t ~ U(0, 1) then
    shifted, target velocity `x1 - x0`, per-sample MSE plus `vd_weight * (1 - cos(pred, target))`.

    `generators` holds one generator per sample (the time is drawn first, then the noise), so each sample's
    randomness is independent of the batch it lands in.
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
        encoder_hidden_states=batch.prompt_embeds,
        encoder_attention_mask=batch.prompt_attention_mask,
        motion_score=batch.motion_score,
        patch_size=batch.patch_size,
        return_dict=False,
    )[0].float()

    flow = (prediction - target).pow(2).flatten(1).mean(dim=1)
    direction = 1.0 - F.cosine_similarity(prediction.flatten(1), target.flatten(1), dim=1)
    per_sample = flow + vd_weight * direction if vd_weight > 0 else flow
    return LossOutput(per_sample.mean(), flow.detach(), direction.detach(), t)
