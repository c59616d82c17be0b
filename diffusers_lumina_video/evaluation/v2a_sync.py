"""Does a V2A model's sound follow the picture? Measured on flash clips (`showcase/synthetic_flashes.py`).

For each held-out clip the pipeline generates audio latents from the video (optionally delayed by `shift` seconds),
the VAE decodes them to a log-mel spectrogram, and the measurements of `audio_events` read it: onsets against the
flash times (F1 within a tolerance, mean absolute offset), and the colour whose tone is the loudest pitch. The
shift that best aligns the flash times with the generated onsets is searched over a grid, so a model that follows
the video shows the video's shift, and one that replays a memorised rhythm shows none.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..pipelines.lumina_v2a.audio_codec import HOP_LENGTH, SAMPLE_RATE
from ..processors import AudioLDMMelFeatureExtractor
from ..utils.atomic import atomic_output_file
from ..utils.media_io import read_video
from .audio_events import (
    OnsetMatch,
    detect_mel_onsets,
    dominant_mel_frequency,
    match_onsets,
    mel_bin_frequencies,
    nearest_colour,
    pooled_match,
)


MEL_FRAME_RATE = SAMPLE_RATE / HOP_LENGTH  # AudioLDM: 100 mel frames per second
SHIFT_SEARCH = np.round(np.arange(-1.0, 1.0 + 1e-9, 0.01), 2)
# Seconds at either end of a clip where nothing is measured: a VAE decoder's padding makes the first and last mel
# frames loud, which would read as onsets. Flash clips have no flash there (the first starts at 0.1 s at the earliest).
EDGE = 0.05


@dataclass(frozen=True)
class ClipSync:
    """One clip's measurements: the truth, what was detected in the generated sound, and their match."""

    clip_id: str
    flash_times: tuple[float, ...]  # in the original video
    shift: float  # seconds the video was delayed by (whole frames)
    onsets: tuple[float, ...]  # detected in the generated sound
    match: OnsetMatch  # onsets against `flash_times + shift`
    colour: str
    heard_colour: str
    envelope: np.ndarray  # energy of each mel frame, for plots


@dataclass(frozen=True)
class SyncSummary:
    """Onsets pooled over clips (every true flash and every detected onset counts once)."""

    f1: float
    mean_absolute_offset: float  # seconds, over matched pairs
    colour_accuracy: float  # clips whose loudest pitch is their colour's tone
    best_shift: float  # the shift of the flash times that the onsets match best (seconds; nan if none matches)
    f1_at_zero_shift: float  # onsets against the original flash times


def shift_frames(frames: np.ndarray, fps: float, shift: float) -> np.ndarray:
    """`frames` delayed by `shift` seconds (rounded to whole frames): the first frame fills the start, the end is
    cut, so the video keeps its length."""
    count = round(shift * fps)
    if not 0 <= count < len(frames):
        raise ValueError(f"`shift` must be in [0, {len(frames) / fps:.3f}) seconds for this video, got {shift}.")
    if count == 0:
        return frames
    return np.concatenate([np.repeat(frames[:1], count, axis=0), frames[:-count]])


def summarize(clips: Sequence[ClipSync], duration: float, tolerance: float = 0.04, edge: float = EDGE) -> SyncSummary:
    """Pooled F1 and offset against the shifted flash times, colour accuracy, and the best-aligning shift: the grid
    shift of the flash times with the highest F1, refined by the mean offset of the onsets matched there."""
    if not clips:
        raise ValueError("`clips` is empty; evaluate at least one clip.")
    onsets = [c.onsets for c in clips]

    def truth(shift: float | None) -> list[list[float]]:
        """Flash times moved by `shift` (each clip's own shift when None), those inside the clip."""
        moved = [[t + (c.shift if shift is None else shift) for t in c.flash_times] for c in clips]
        return [[t for t in times if edge <= t <= duration - edge] for times in moved]

    own = pooled_match(truth(None), onsets, tolerance)
    searched = [pooled_match(truth(float(shift)), onsets, tolerance) for shift in SHIFT_SEARCH]
    best = int(np.argmax([match.f1 for match in searched]))
    refinement = searched[best].mean_signed_offset  # nan when no onset matches at any shift
    return SyncSummary(
        f1=own.f1,
        mean_absolute_offset=own.mean_absolute_offset,
        colour_accuracy=float(np.mean([c.heard_colour == c.colour for c in clips])),
        best_shift=float(SHIFT_SEARCH[best] + refinement),
        f1_at_zero_shift=pooled_match(truth(0.0), onsets, tolerance).f1,
    )


@torch.no_grad()
def generate_sound(
    pipeline,
    frames: Sequence[np.ndarray],
    fps: float,
    captions: Sequence[str],
    first_seed: int,
    num_inference_steps: int = 25,
    guidance_scale: float = 3.0,
    output_type: str = "np",
):
    """`pipeline`'s sound (`output_type` as the pipeline takes it) for a batch of videos `frames` (each `[T, H, W, 3]`
    at `fps`) and their `captions`, video `i` from noise seed `first_seed + i`, so that a clip's sound does not depend
    on the batch it is in."""
    return pipeline(
        video=list(frames),
        fps=fps,
        prompt=list(captions),
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        generator=[torch.Generator().manual_seed(first_seed + i) for i in range(len(frames))],
        output_type=output_type,
    ).audios


@torch.no_grad()
def evaluate_flash_sync(
    pipeline,
    records: Sequence,
    tones: dict[str, float],
    shift: float = 0.0,
    num_inference_steps: int = 25,
    guidance_scale: float = 3.0,
    seed: int = 0,
    batch_size: int = 8,
    threshold: float = 0.3,
    min_gap: float = 0.25,
    tolerance: float = 0.04,
    edge: float = EDGE,
) -> list[ClipSync]:
    r"""
    Generates the sound of each clip with `pipeline` (a `LuminaV2APipeline`) and measures it.

    Args:
        pipeline: The V2A pipeline; its VAE decodes the generated latents to log-mel spectrograms.
        records: Clips with `clip_id`, `path`, `caption`, `colour` and `flash_times` (`read_flash_manifest`).
        tones: Each colour's tone frequency (Hz).
        shift: Seconds to delay each video by before generating, rounded to whole frames (the truth moves by the
            rounded delay, which each result records).
        num_inference_steps: Sampling steps.
        guidance_scale: Classifier-free guidance scale.
        seed: Seed of the starting noise; clip `i` of the list uses `seed + i`, whatever the batching.
        batch_size: Clips generated together.
        threshold: Onset threshold, relative to the loudest mel frame of the clip (`detect_mel_onsets`).
        min_gap: Shortest time (seconds) between two onsets.
        tolerance: Largest offset (seconds) of a matched onset.
        edge: Seconds at either end of each clip where neither onsets nor flashes are counted.
    """
    if not records:
        raise ValueError("`records` is empty; pass at least one clip.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
    unknown = sorted({r.colour for r in records} - set(tones))
    if unknown:
        raise ValueError(f"`tones` lacks the colours {unknown} of `records`.")
    for record in records:
        if not os.path.isfile(record.path):
            raise FileNotFoundError(f"The video of clip {record.clip_id}, {record.path}, does not exist.")
    vae = pipeline.vae
    bin_frequencies = mel_bin_frequencies(AudioLDMMelFeatureExtractor().mel_filters, SAMPLE_RATE)
    results = []
    progress = tqdm(total=len(records), desc=f"Evaluating (video shifted by {shift:g} s)")
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        videos = [read_video(record.path) for record in batch]
        fps = videos[0].fps
        if any(video.fps != fps for video in videos):
            raise ValueError("The clips of one evaluation must share one frame rate.")
        frames = [shift_frames(video.frames, fps, shift) for video in videos]
        applied = round(shift * fps) / fps
        duration = min(len(f) for f in frames) / fps
        captions = [record.caption for record in batch]
        generation = {"num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale}
        latents = generate_sound(pipeline, frames, fps, captions, seed + start, output_type="latent", **generation)
        mels = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample[:, 0].float().cpu().numpy()
        mels = mels[:, : round(duration * MEL_FRAME_RATE)]
        for record, log_mel in zip(batch, mels, strict=True):
            onsets = detect_mel_onsets(log_mel, MEL_FRAME_RATE, threshold, min_gap)
            onsets = [t for t in onsets if edge <= t <= duration - edge]
            truth = [t + applied for t in record.flash_times if edge <= t + applied <= duration - edge]
            pitch = dominant_mel_frequency(log_mel, bin_frequencies, MEL_FRAME_RATE)
            results.append(
                ClipSync(
                    clip_id=record.clip_id,
                    flash_times=tuple(record.flash_times),
                    shift=applied,
                    onsets=tuple(onsets),
                    match=match_onsets(truth, onsets, tolerance),
                    colour=record.colour,
                    heard_colour=nearest_colour(pitch, tones),
                    envelope=np.exp(log_mel.astype(np.float64)).sum(axis=1),
                )
            )
        progress.update(len(batch))
    progress.close()
    return results


def plot_flash_onsets(conditions: dict[str, Sequence[ClipSync]], path: str | os.PathLike, num_clips: int = 4) -> str:
    """A PNG with one panel per clip (the first `num_clips`): the flash times of the video as vertical lines, and
    per condition (e.g. untrained, trained, shifted video) the generated sound's energy and its detected onsets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not conditions or any(len(clips) == 0 for clips in conditions.values()):
        raise ValueError("`conditions` must map each condition name to a non-empty list of clips.")
    num_clips = min(num_clips, *(len(clips) for clips in conditions.values()))
    figure, axes = plt.subplots(num_clips, 1, figsize=(10, 1.9 * num_clips), sharex=True, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, axis in enumerate(axes[:, 0]):
        first = next(iter(conditions.values()))[index]
        for row, (name, clips) in enumerate(conditions.items()):
            clip = clips[index]
            times = np.arange(len(clip.envelope)) / MEL_FRAME_RATE
            inner = clip.envelope[round(EDGE * MEL_FRAME_RATE) : -round(EDGE * MEL_FRAME_RATE)]
            level = row + 0.9 * np.minimum(clip.envelope / max(inner.max(), 1e-12), 1.0)
            axis.plot(times, level, color=colours[row % len(colours)], linewidth=0.8, label=name)
            axis.plot(clip.onsets, [row + 0.95] * len(clip.onsets), "v", color=colours[row % len(colours)])
            for time in clip.flash_times:
                if clip.shift and time + clip.shift < times[-1]:
                    axis.axvline(
                        time + clip.shift,
                        ymin=row / len(conditions),
                        ymax=(row + 1) / len(conditions),
                        color="black",
                        linestyle=":",
                        linewidth=1,
                    )
        for time in first.flash_times:
            axis.axvline(time, color="black", linewidth=1, alpha=0.5)
        axis.set_ylim(0, len(conditions))
        axis.set_yticks([])
        axis.set_ylabel(f"{first.clip_id}\n{first.colour}", fontsize=8)
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=len(conditions))
    axes[0, 0].set_title("flash times (grey; dotted: delayed video) and generated sound energy with onsets (v)")
    axes[-1, 0].set_xlabel("time (s)")
    figure.tight_layout()
    with atomic_output_file(path) as temporary:
        figure.savefig(temporary, dpi=110)
    plt.close(figure)
    return str(path)
