"""Decoded video -> the 16-frame segments `SynchformerEncoder` reads, exactly as MMAudio prepares them."""

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config

from ..utils.media_io import frame_indices_at_rate


class SynchformerVideoProcessor(ConfigMixin):
    r"""
    Samples frames at a fixed rate, resizes and centre-crops them, normalises them to [-1, 1] and cuts them into
    overlapping segments, following MMAudio's `load_video`, `sync_transform` and `encode_video_with_sync`.

    Args:
        frame_size (`int`): Side of the square frames; the encoder's `config.frame_size`.
        fps (`float`): Sampling rate of the frames.
        num_frames (`int`): Frames per segment; the encoder's `config.num_frames`.
        segment_stride (`int`): Frames between the starts of consecutive segments.
        temporal_patch_size (`int`): Frames per output feature; the encoder's `config.temporal_patch_size`.
    """

    config_name = "preprocessor_config.json"

    @register_to_config
    def __init__(
        self,
        frame_size: int = 224,
        fps: float = 25.0,
        num_frames: int = 16,
        segment_stride: int = 8,
        temporal_patch_size: int = 2,
    ):
        super().__init__()
        for name, value in (
            ("frame_size", frame_size),
            ("num_frames", num_frames),
            ("segment_stride", segment_stride),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if not fps > 0:
            raise ValueError(f"`fps` must be positive, got {fps!r}.")
        if isinstance(temporal_patch_size, bool) or temporal_patch_size < 1 or num_frames % temporal_patch_size:
            raise ValueError(
                f"`temporal_patch_size` must be a positive divisor of `num_frames` {num_frames}, "
                f"got {temporal_patch_size!r}."
            )

    @classmethod
    def from_encoder(cls, encoder, **kwargs) -> "SynchformerVideoProcessor":
        """The processor for `encoder` (a `SynchformerEncoder`): frame size, segment and tubelet lengths from its
        config."""
        config = encoder.config
        return cls(
            frame_size=config.frame_size,
            num_frames=config.num_frames,
            temporal_patch_size=config.temporal_patch_size,
            **kwargs,
        )

    @property
    def min_duration(self) -> float:
        """Seconds of video that give one segment."""
        return self.config.num_frames / self.config.fps

    def num_frames_for_duration(self, duration: float) -> int:
        """Frames sampled from `duration` seconds (MMAudio truncates to `int(fps * duration)`)."""
        if not duration > 0:
            raise ValueError(f"`duration` must be positive seconds, got {duration!r}.")
        return int(self.config.fps * duration)

    def num_segments(self, num_frames: int) -> int:
        """Segments cut from `num_frames` frames; frames after the last full segment are unused."""
        if num_frames < self.config.num_frames:
            raise ValueError(
                f"The video has {num_frames} frames at {self.config.fps:g} fps, but a segment needs "
                f"{self.config.num_frames} (a minimum duration of {self.min_duration:.2f} s)."
            )
        return (num_frames - self.config.num_frames) // self.config.segment_stride + 1

    def sample_frames(
        self, frames: Sequence[np.ndarray | torch.Tensor], timestamps: Sequence[float], duration: float
    ) -> torch.Tensor:
        """Resamples decoded frames to `fps`: tick k takes the first frame whose timestamp is at or after it (a
        frame repeats when several ticks fall before the next one); frames after `duration` are not read.

        Args:
            frames: Decoded RGB frames `[H, W, 3]` uint8, in decoding order.
            timestamps: Each frame's presentation time in seconds.
            duration: Seconds to keep.

        Returns:
            `[T, H, W, 3]` uint8 with `T <= num_frames_for_duration(duration)` (fewer when the video is shorter).
        """
        if len(frames) != len(timestamps):
            raise ValueError(f"`frames` ({len(frames)}) and `timestamps` ({len(timestamps)}) differ in length.")
        times = np.asarray(timestamps, dtype=np.float64)
        kept = np.flatnonzero((times >= 0) & (times <= duration))
        picked = kept[frame_indices_at_rate(times[kept], self.config.fps, self.num_frames_for_duration(duration))]
        if not len(picked):
            raise ValueError(f"No frame has a timestamp within [0, {duration}] s.")
        return torch.stack([torch.as_tensor(np.asarray(frames[index])) for index in picked])

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """`[..., T, H, W, 3]` uint8 RGB -> `[..., T, 3, frame_size, frame_size]` float32 in [-1, 1].

        The shorter side is resized to `frame_size` (bicubic with antialiasing, on the uint8 values, the longer side
        to `int(frame_size * long / short)`), then centre-cropped.
        """
        frames = torch.as_tensor(frames)
        if frames.dtype != torch.uint8:
            raise TypeError(f"`frames` must be uint8 RGB, got {frames.dtype}.")
        if frames.ndim < 4 or frames.shape[-1] != 3:
            raise ValueError(f"`frames` must have shape [..., T, H, W, 3], got {list(frames.shape)}.")
        size = self.config.frame_size
        lead, (height, width) = frames.shape[:-3], frames.shape[-3:-1]
        short, long = min(height, width), max(height, width)
        resized_long = int(size * long / short)
        resized = (size, resized_long) if height <= width else (resized_long, size)
        images = frames.reshape(-1, height, width, 3).permute(0, 3, 1, 2).contiguous()
        images = F.interpolate(images, size=resized, mode="bicubic", align_corners=False, antialias=True)
        top, left = (int(round((side - size) / 2)) for side in resized)
        images = images[..., top : top + size, left : left + size]
        pixel_values = (images.to(torch.float32) * (1 / 255) - 0.5) / 0.5
        return pixel_values.reshape(*lead, 3, size, size)

    def segment(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`[B, T, C, H, W]` -> `[B, S, num_frames, C, H, W]`, segments starting every `segment_stride` frames."""
        if pixel_values.ndim != 5:
            raise ValueError(
                f"`pixel_values` must have shape [batch, frames, 3, H, W], got {list(pixel_values.shape)}."
            )
        num_segments = self.num_segments(pixel_values.shape[1])
        starts = range(0, num_segments * self.config.segment_stride, self.config.segment_stride)
        return torch.stack([pixel_values[:, start : start + self.config.num_frames] for start in starts], dim=1)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """`[B, T, H, W, 3]` (or `[T, H, W, 3]`) uint8 frames at `fps` -> the encoder's `pixel_values`."""
        frames = torch.as_tensor(frames)
        if frames.ndim == 4:
            frames = frames[None]
        if frames.ndim == 5:
            self.num_segments(frames.shape[1])  # refuse a too-short clip before resizing it
        return self.segment(self.preprocess(frames))

    def feature_time_spans(self, num_segments: int) -> torch.Tensor:
        """`[num_segments * features_per_segment, 2]`: the start and end second of the frames each flattened feature
        covers. Segments overlap, so the starts step back at each segment boundary."""
        config = self.config
        per_segment = config.num_frames // config.temporal_patch_size
        segment = torch.arange(num_segments).repeat_interleave(per_segment)
        step = torch.arange(per_segment).repeat(num_segments)
        first_frame = segment * config.segment_stride + step * config.temporal_patch_size
        start = first_frame.to(torch.float64) / config.fps
        return torch.stack([start, start + config.temporal_patch_size / config.fps], dim=-1)
