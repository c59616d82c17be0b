"""From the prepared Lumina-V2A cache to micro-batches, split across processes and reproducible from the seed.

Every clip has the same duration, so all clips form one bucket and the planner of the video training
(`MicroBatchPlanner`) orders them: epochs shuffled from the seed, global batches cut into one slice per process,
one seed per sample from its place in the global batch. A sample's condition dropouts (and the loss's noise, drawn
from the same seed) therefore do not depend on how many processes train or whether the run was resumed.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch.utils.data import Dataset

from .av_prepare import AV_CACHE_FORMAT
from .batches import MicroBatchPlanner, pad_captions
from .prepare import INDEX_FILE, read_cache_index
from .recipe import AudioTrainingBatch, sample_generator


@dataclass(frozen=True)
class ClipStream:
    """The one stream of a V2A run: all clips in one bucket."""

    buckets: tuple[tuple[int, ...], ...]


class PreparedAVDataset:
    """The cache written by `prepare_av_dataset`: the clip entries, and each clip's tensors read on demand."""

    def __init__(self, cache_dir: str | Path):
        self.cache_dir = Path(cache_dir)
        index = read_cache_index(self.cache_dir)
        if index is None:
            raise FileNotFoundError(f"{self.cache_dir} holds no prepared clips ({INDEX_FILE} is missing).")
        if index.get("fingerprint", {}).get("format") != AV_CACHE_FORMAT or "clips" not in index:
            raise ValueError(
                f"{self.cache_dir} is not a prepared V2A cache (format {AV_CACHE_FORMAT}); prepare it with "
                "`prepare_av_dataset`."
            )
        self.clips: list[dict[str, str]] = index["clips"]
        self.shapes: dict[str, list[int]] = index["shapes"]
        self.skipped: dict[str, str] = index["skipped"]

    def __len__(self) -> int:
        return len(self.clips)

    def load(self, index: int) -> dict[str, torch.Tensor]:
        return load_file(str(self.cache_dir / self.clips[index]["file"]))

    def check_compatible(self, transformer_config: Mapping[str, Any]) -> None:
        """Refuses a transformer (its `config`) that cannot train on these clips, naming every mismatch at once."""
        channels, frames, bins = self.shapes["audio_latents"]
        patch_time, patch_bins = transformer_config["patch_size"]
        expected = {
            "in_channels": ("latent channels", channels),
            "text_feat_dim": ("text feature width", self.shapes["text_embeds"][-1]),
            "visual_feat_dim": ("visual feature width", self.shapes["visual_embeds"][-1]),
            "sync_feat_dim": ("sync feature width", self.shapes["sync_embeds"][-1]),
        }
        problems = [
            f"{what} {value}, the transformer's `{key}` is {transformer_config[key]}"
            for key, (what, value) in expected.items()
            if transformer_config[key] != value
        ]
        if frames % patch_time or bins % patch_bins:
            problems.append(f"latents of {frames} x {bins} do not divide into patches of {patch_time} x {patch_bins}")
        if frames > transformer_config["max_latent_frames"]:
            problems.append(
                f"{frames} latent frames, more than the transformer's `max_latent_frames` "
                f"{transformer_config['max_latent_frames']}"
            )
        if problems:
            raise ValueError(
                f"The prepared clips in {self.cache_dir} do not fit the transformer: {'; '.join(problems)}. They were "
                "prepared with another model or duration; prepare them again for this one."
            )


class AVBatchDataset(Dataset):
    """Item `m` is this process's `batch_size` clips of global micro-batch `m` (of `batch_size * num_processes`
    clips), as an `AudioTrainingBatch` with the condition dropouts drawn from each sample's seed."""

    def __init__(
        self,
        dataset: PreparedAVDataset,
        process_index: int,
        num_processes: int,
        batch_size: int,
        seed: int,
        visual_dropout: float,
        text_dropout: float,
        sync_dropout: float,
    ):
        for name, value in (("num_processes", num_processes), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be an int >= 1, got {value!r}.")
        if (
            isinstance(process_index, bool)
            or not isinstance(process_index, int)
            or not 0 <= process_index < num_processes
        ):
            raise ValueError(f"`process_index` must be an int in [0, {num_processes}), got {process_index!r}.")
        dropouts = {"visual_dropout": visual_dropout, "text_dropout": text_dropout, "sync_dropout": sync_dropout}
        for name, value in dropouts.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"`{name}` must be a probability in [0, 1], got {value!r}.")
        self.dataset = dataset
        self.process_index = process_index
        self.batch_size = batch_size
        self.dropouts = (float(visual_dropout), float(text_dropout), float(sync_dropout))
        stream = ClipStream(buckets=(tuple(range(len(dataset))),))
        self.planner = MicroBatchPlanner([stream], batch_size * num_processes, rounds=1, seed=seed)

    def __getitem__(self, micro_batch: int) -> AudioTrainingBatch:
        _, indices, seeds = self.planner.plan_for_process(micro_batch, self.process_index, self.batch_size)
        clips = [self.dataset.load(index) for index in indices]
        drops = torch.stack([self.draw_dropouts(seed) for seed in seeds])
        text_embeds, text_mask = pad_captions([clip["text_embeds"][clip["text_mask"].bool()] for clip in clips])
        visual = torch.stack([clip["visual_embeds"] for clip in clips])
        return AudioTrainingBatch(
            latents=torch.stack([clip["audio_latents"] for clip in clips]),
            text_embeds=text_embeds,
            text_mask=text_mask,
            visual_embeds=visual,
            visual_mask=torch.ones(visual.shape[:2], dtype=torch.long),
            sync_embeds=torch.stack([clip["sync_embeds"] for clip in clips]),
            drop_visual=drops[:, 0],
            drop_text=drops[:, 1],
            drop_sync=drops[:, 2],
            seeds=seeds,
        )

    def draw_dropouts(self, seed: int) -> torch.Tensor:
        """`[3]` bool: whether the sample of `seed` drops its visual, text and sync condition, each drawn apart."""
        draws = torch.rand(3, generator=sample_generator(seed, "conditions"))
        return draws < torch.tensor(self.dropouts)
