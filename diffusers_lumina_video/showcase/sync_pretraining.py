"""Pre-training a small Synchformer stand-in to tell when a sound starts in a video.

Synchformer's features carry timing because it was trained on sound and picture together (to tell whether they are
in sync). A randomly initialised stand-in keeps what changes a whole frame, such as a flash, but hardly where a small
shape is: a shape's bounce off the frame's edge is barely in its features, and a V2A model trained on them stays
silent. `pretrain_sync_encoder` gives the stand-in the same kind of audio-visual supervision in its simplest form: a
linear head on its features, in time order as the V2A model reads them, learns for each tubelet whether one of the
clip's sound onsets falls inside it; the head is thrown away, the encoder kept.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..models import SynchformerEncoder
from ..models.transformers.transformer_lumina_v2a import SYNC_SEGMENT_STRIDE, sync_features_in_time_order
from ..processors.synchformer import SynchformerVideoProcessor
from ..utils.media_io import VideoFrames


@dataclass(frozen=True)
class SyncPretraining:
    """What `pretrain_sync_encoder` did: the loss of every step, and the head that read onsets off the features."""

    losses: list[float]
    head: nn.Linear


def sync_pixel_values(encoder: SynchformerEncoder, videos: Sequence[VideoFrames], duration: float) -> torch.Tensor:
    """The encoder's `pixel_values` `[N, S, F, 3, H, W]` of the first `duration` seconds of each video, sampled as the
    V2A pipeline samples them (`SynchformerVideoProcessor` at 25 fps)."""
    processor = SynchformerVideoProcessor.from_encoder(encoder)
    frames = [processor.sample_frames(video.frames, video.timestamps, duration) for video in videos]
    return processor(torch.stack(frames))


def tubelet_seconds(encoder: SynchformerEncoder) -> float:
    """Seconds of video one feature of `encoder` covers (a tubelet at the processor's 25 fps)."""
    return encoder.config.temporal_patch_size / SynchformerVideoProcessor.from_encoder(encoder).config.fps


def onset_labels(onsets: Sequence[Sequence[float]], num_tubelets: int, tubelet_seconds: float) -> torch.Tensor:
    """`[N, num_tubelets]`: 1 where one of a clip's onsets (seconds) falls inside the tubelet, else 0."""
    labels = torch.zeros(len(onsets), num_tubelets)
    for row, times in enumerate(onsets):
        for time in times:
            index = int(time // tubelet_seconds)
            if 0 <= index < num_tubelets:
                labels[row, index] = 1.0
    return labels


def tubelet_logits(encoder: SynchformerEncoder, head: nn.Linear, pixel_values: torch.Tensor) -> torch.Tensor:
    """`[N, tubelets]`: the head's score of each tubelet, from the encoder's features in time order."""
    return head(sync_features_in_time_order(encoder(pixel_values).features))[..., 0]


def pretrain_sync_encoder(
    encoder: SynchformerEncoder,
    pixel_values: torch.Tensor,
    onsets: Sequence[Sequence[float]],
    num_steps: int,
    batch_size: int = 16,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> SyncPretraining:
    r"""
    Trains `encoder` in place (AdamW, cosine decay) so that a linear head on its time-ordered features finds the
    tubelets where the clips' sounds start (binary cross-entropy, onsets weighted by how rare they are).

    Args:
        encoder: The Synchformer stand-in.
        pixel_values: Its inputs `[N, S, F, 3, H, W]` (`sync_pixel_values`).
        onsets: Each clip's sound onsets, in seconds from its start (none for a silent clip).
        num_steps: Optimizer steps.
        batch_size: Clips per step, drawn at random.
        learning_rate: Peak learning rate.
        seed: Seed of the head and of the draws of batches.
    """
    if len(onsets) != len(pixel_values):
        raise ValueError(f"`onsets` must hold one entry per clip ({len(pixel_values)}), got {len(onsets)}.")
    for name, value in (("num_steps", num_steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
    # `sync_features_in_time_order` gives one feature per segment stride's tubelets, and the last segment's rest.
    num_tubelets = SYNC_SEGMENT_STRIDE * (pixel_values.shape[1] + 1)
    labels = onset_labels(onsets, num_tubelets, tubelet_seconds(encoder))
    positives = float(labels.sum())
    if positives == 0:
        raise ValueError("`onsets` holds no onset inside the clips: there is nothing to learn.")
    pos_weight = torch.tensor((labels.numel() - positives) / positives)

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = nn.Linear(encoder.config.hidden_size, 1)
    parameters = [*encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=num_steps)
    encoder.train()
    losses = []
    progress = tqdm(range(num_steps), desc="Pre-training the Synchformer stand-in")
    for _ in progress:
        batch = torch.randint(len(pixel_values), (batch_size,), generator=generator)
        logits = tubelet_logits(encoder, head, pixel_values[batch])
        loss = F.binary_cross_entropy_with_logits(logits, labels[batch], pos_weight=pos_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        progress.set_postfix(loss=f"{loss.item():.4f}")
    encoder.eval()
    return SyncPretraining(losses=losses, head=head.eval())


@torch.no_grad()
def onset_hit_rate(
    encoder: SynchformerEncoder, head: nn.Linear, pixel_values: torch.Tensor, onsets: Sequence[Sequence[float]]
) -> float:
    """Of the clips with one onset, the share whose highest-scoring tubelet (`tubelet_logits`) holds it or touches the
    one that does: how well the features tell when, measured on clips the encoder did not train on."""
    single = [index for index, times in enumerate(onsets) if len(times) == 1]
    if not single:
        raise ValueError("`onsets` holds no clip with exactly one onset to measure on.")
    best = tubelet_logits(encoder, head, pixel_values[single]).argmax(dim=1)
    truth = torch.tensor([int(onsets[index][0] // tubelet_seconds(encoder)) for index in single])
    return float(((best - truth).abs() <= 1).float().mean())
