"""From the prepared cache to micro-batches: which samples go together, in which order, on which process.

Every optimizer step takes one micro-batch per patchification (times `gradient_accumulation_steps`). A micro-batch
holds samples of one bucket (same latent shape after the temporal patch cut), so nothing is padded. The order is a
pure function of (seed, step): resuming needs no sampler state, and any number of processes cut the same global
batch into their own slices. The planner only sees buckets of sample indices, so Lumina-V2A's clips (one bucket:
every clip has the same duration) are ordered by the same rule.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.utils.data import Dataset

from ..models.transformers.transformer_lumina_video import patch_size_key
from .prepare import INDEX_FILE, NULL_CAPTION_FILE, read_cache_index
from .recipe import PatchSize, TrainingBatch, derive_seed, drop_conditions, sample_generator


def usable_frames(frames: int, is_image: bool, patch_size: PatchSize) -> int:
    """Latent frames a sample trains with: an image its one frame, a video its frames cut to a multiple of the
    temporal patch, as the reference does."""
    return frames if is_image else frames // patch_size[0] * patch_size[0]


class BucketedStream(Protocol):
    """What `MicroBatchPlanner` needs of a stream: its buckets of sample indices, one tuple per sample shape."""

    @property
    def buckets(self) -> tuple[tuple[int, ...], ...]: ...


@dataclass(frozen=True)
class Stream:
    """One patchification's share of the data: the buckets of samples it can train on."""

    patch_size: PatchSize
    video_shift: float
    image_shift: float
    buckets: tuple[tuple[int, ...], ...]  # sample indices, one tuple per latent shape

    @property
    def key(self) -> str:
        return patch_size_key(self.patch_size)


class PreparedDataset:
    """The cache written by `prepare_dataset`: sample entries, and tensors read on demand."""

    def __init__(self, cache_dir: Path):
        self.cache_dir = Path(cache_dir)
        index = read_cache_index(self.cache_dir)
        if index is None:
            raise FileNotFoundError(f"{self.cache_dir} holds no prepared data ({INDEX_FILE} is missing).")
        self.samples = index["samples"]
        self.latent_channels = index["latent_channels"]
        self.text_dim = index["text_dim"]
        self.null_prompt_embeds = load_file(str(self.cache_dir / NULL_CAPTION_FILE))["prompt_embeds"]

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> dict[str, torch.Tensor]:
        return load_file(str(self.cache_dir / self.samples[index]["file"]))

    def check_compatible(self, in_channels: int, cap_feat_dim: int) -> None:
        if (self.latent_channels, self.text_dim) != (in_channels, cap_feat_dim):
            raise ValueError(
                f"The prepared data in {self.cache_dir} has {self.latent_channels} latent channels and "
                f"{self.text_dim}-dim text features, but the transformer takes {in_channels} and {cap_feat_dim}. It "
                "was prepared with another model; delete the folder to prepare it again."
            )

    def build_streams(
        self, patch_sizes: list[PatchSize], video_shifts: dict[PatchSize, float], image_shift: float
    ) -> list[Stream]:
        """Groups samples by latent shape for each patchification. Images join only the finest one (the first
        spatially smallest patch with pF = 1); videos join every patchification whose temporal patch they can fill,
        cut to a multiple of it."""
        image_patch = min((p for p in patch_sizes if p[0] == 1), key=math.prod, default=None)
        images = [i for i, s in enumerate(self.samples) if s["is_image"]]
        if images and image_patch is None:
            raise ValueError(
                f"The dataset has {len(images)} image(s), which train with a patchification of one frame (pF = 1), "
                f"but `patch_sizes` has none: {[patch_size_key(p) for p in patch_sizes]}."
            )
        streams = []
        for patch in patch_sizes:
            groups: dict[tuple[int, ...], list[int]] = {}
            for index, sample in enumerate(self.samples):
                _, frames, height, width = sample["latent_shape"]
                if sample["is_image"] and patch != image_patch:
                    continue
                kept = usable_frames(frames, sample["is_image"], patch)
                if kept > 0:
                    groups.setdefault((kept, height, width, sample["is_image"]), []).append(index)
            if groups:
                buckets = tuple(tuple(groups[key]) for key in sorted(groups))
                streams.append(Stream(patch, video_shifts[patch], image_shift, buckets))
        if not streams:
            raise ValueError("No prepared sample fits any of the configured patchifications.")
        return streams


class MicroBatchPlanner:
    """Which samples form micro-batch `m` of the run, for every process.

    Micro-batches run in the order step -> accumulation round -> stream. Stream `s` cycles through epochs; each
    epoch shuffles every bucket, cuts it into global batches (the last one filled by wrapping around the bucket) and
    shuffles the batches, all from `(seed, s, epoch)`.
    """

    def __init__(self, streams: Sequence[BucketedStream], global_batch_size: int, rounds: int, seed: int):
        self.streams = streams
        self.global_batch_size = global_batch_size
        self.rounds = rounds
        self.seed = seed
        self._epochs: dict[int, tuple[int, list[list[int]]]] = {}
        # Batches per epoch do not depend on the shuffle: every bucket gives ceil(size / global batch) of them.
        self._epoch_lengths = [
            sum(math.ceil(len(bucket) / global_batch_size) for bucket in stream.buckets) for stream in streams
        ]

    @property
    def micro_batches_per_step(self) -> int:
        return len(self.streams) * self.rounds

    def _epoch(self, stream_index: int, epoch: int) -> list[list[int]]:
        cached = self._epochs.get(stream_index)
        if cached is None or cached[0] != epoch:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, "order", stream_index, epoch))
            batches = []
            for bucket in self.streams[stream_index].buckets:
                order = [bucket[i] for i in torch.randperm(len(bucket), generator=generator).tolist()]
                count = math.ceil(len(order) / self.global_batch_size) * self.global_batch_size
                order = [order[i % len(order)] for i in range(count)]
                batches += [order[i : i + self.global_batch_size] for i in range(0, count, self.global_batch_size)]
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
            self._epochs[stream_index] = cached = (epoch, batches)
        return cached[1]

    def plan(self, micro_batch: int) -> tuple[BucketedStream, list[int], list[int]]:
        """`(stream, sample indices, sample seeds)` of the global batch of micro-batch `micro_batch`."""
        step, within = divmod(micro_batch, self.micro_batches_per_step)
        round_index, stream_index = divmod(within, len(self.streams))
        draw = step * self.rounds + round_index
        epoch, position = divmod(draw, self._epoch_lengths[stream_index])
        indices = self._epoch(stream_index, epoch)[position]
        seeds = [
            derive_seed(self.seed, "sample", step, round_index, stream_index, slot) for slot in range(len(indices))
        ]
        return self.streams[stream_index], indices, seeds

    def plan_for_process(
        self, micro_batch: int, process_index: int, batch_size: int
    ) -> tuple[BucketedStream, list[int], list[int]]:
        """`plan` cut to the `batch_size` samples of process `process_index`: each process takes its own slice of
        the same global batch, so a sample's place (and seed) never depends on how many processes share it."""
        stream, indices, seeds = self.plan(micro_batch)
        share = slice(process_index * batch_size, (process_index + 1) * batch_size)
        return stream, indices[share], seeds[share]


class MicroBatchDataset(Dataset):
    """Item `m` is this process's slice of micro-batch `m`, as a `TrainingBatch` with the dropouts applied."""

    def __init__(
        self,
        data: PreparedDataset,
        planner: MicroBatchPlanner,
        process_index: int,
        batch_size: int,
        caption_dropout: float,
        motion_dropout: float,
        image_motion_zero_prob: float,
    ):
        self.data = data
        self.planner = planner
        self.process_index = process_index
        self.batch_size = batch_size
        self.dropouts = {
            "caption_dropout": caption_dropout,
            "motion_dropout": motion_dropout,
            "image_motion_zero_prob": image_motion_zero_prob,
        }

    def __getitem__(self, micro_batch: int) -> TrainingBatch:
        stream, indices, seeds = self.planner.plan_for_process(micro_batch, self.process_index, self.batch_size)
        latents, embeds, motions = [], [], []
        for index, seed in zip(indices, seeds, strict=True):
            entry, tensors = self.data.samples[index], self.data.load(index)
            frames = usable_frames(tensors["latents"].shape[1], entry["is_image"], stream.patch_size)
            latents.append(tensors["latents"][:, :frames].float())
            caption, motion = drop_conditions(
                tensors["prompt_embeds"],
                self.data.null_prompt_embeds,
                entry["motion_score"],
                entry["is_image"],
                sample_generator(seed, "conditions"),
                **self.dropouts,
            )
            embeds.append(caption.float())  # features cached in half precision still train in float32 runs
            motions.append(motion)
        is_image = self.data.samples[indices[0]]["is_image"]
        prompt_embeds, mask = pad_captions(embeds)
        return TrainingBatch(
            latents=torch.stack(latents),
            prompt_embeds=prompt_embeds,
            prompt_attention_mask=mask,
            motion_score=torch.tensor(motions, dtype=torch.float32),
            patch_size=stream.patch_size,
            timestep_shift=stream.image_shift if is_image else stream.video_shift,
            seeds=seeds,
        )


def pad_captions(embeds: list[torch.Tensor], multiple: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pads `[L_i, D]` features to one length (a multiple of 8, as the reference's tokenizer pads)."""
    length = math.ceil(max(e.shape[0] for e in embeds) / multiple) * multiple
    padded = torch.stack([F.pad(e, (0, 0, 0, length - e.shape[0])) for e in embeds])
    mask = torch.stack([(torch.arange(length) < e.shape[0]).long() for e in embeds])
    return padded, mask


def unbatched(item: TrainingBatch) -> TrainingBatch:
    """`collate_fn` of a `DataLoader` whose items already are batches."""
    return item
