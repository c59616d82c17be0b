"""Turning Lumina-V2A clips into a training cache: audio latents and the three condition streams, as safetensors.

Training then reads small tensors and never holds the audio VAE, CLIP or Synchformer. The cache folder:

    index.json              settings, the clips it holds and those skipped (with the reason)
    <name>.safetensors      one per clip (see `CACHED_TENSORS`)

Every clip is cut to the first `clip_duration` seconds, so every cached tensor of a kind has the same shape. Each
feature is computed by the pipeline's own method (`encode_prompt`, `encode_frames`, `encode_sync`) and the audio
codec's `waveforms_to_latents`, so training sees exactly what sampling feeds the transformer. A file that gives no
usable clip (no audio or video stream, a silent track, an unreadable file, a sample rate the audio path does not
take, too short) is skipped with its reason; a long preparation never stops halfway for one bad file.

The cache is built in a staging folder beside it and renamed into place when complete. Each clip's file records
the source file and caption it was made from, so a later preparation with the same model and duration, after a
kill or with clips added or changed, reuses every clip file that still matches.
"""

import gc
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..pipelines.lumina_v2a import LuminaV2APipeline
from ..pipelines.lumina_v2a.audio_codec import SAMPLE_RATE, waveforms_to_latents
from ..pipelines.lumina_v2a.pipeline_lumina_v2a import sync_segment_count
from ..processors import AudioLDMMelFeatureExtractor
from ..utils.atomic import atomic_output_file, replace_folder
from ..utils.media_io import VideoFrames, read_audio, read_video
from .av_data import AVItem, check_unique_names
from .prepare import INDEX_FILE, file_key, read_cache_index, staging_folder


logger = logging.getLogger(__name__)

AV_CACHE_FORMAT = 1
CACHED_TENSORS = ("audio_latents", "text_embeds", "text_mask", "visual_embeds", "sync_embeds")
# Below this rate FFmpeg still resamples, but the track holds nothing of the 0-8 kHz band AudioLDM's mel covers.
MIN_SAMPLE_RATE = 8000
# A track whose peak stays below this (-60 dBFS) is taken as silent.
SILENCE_PEAK = 1e-3
# Streams may end this much before `clip_duration` (container rounding); the audio is padded with silence.
DURATION_TOLERANCE = 0.05
_SOURCE_KEY = "source"


@dataclass
class AVPreparationSummary:
    """What a preparation did: clips computed now, clips taken from an earlier preparation, clips skipped."""

    prepared: int
    reused: int
    skipped: dict[str, str] = field(default_factory=dict)  # clip name -> reason

    def __str__(self) -> str:
        line = f"{self.prepared} clip(s) prepared, {self.reused} reused, {len(self.skipped)} skipped"
        if self.skipped:
            line += ": " + "; ".join(f"{name} ({reason})" for name, reason in self.skipped.items())
        return line + "."


def av_cache_fingerprint(
    pipeline_path: str | os.PathLike, clip_duration: float, revision: str | None = None, variant: str | None = None
) -> dict[str, Any]:
    """The settings every cached clip depends on; a cache or staging folder made with others is not reused."""
    model = Path(pipeline_path).expanduser()
    return {
        "format": AV_CACHE_FORMAT,
        "model": [str(model.resolve()) if model.is_dir() else str(pipeline_path), revision, variant],
        "clip_duration": clip_duration,
    }


def _source_key(item: AVItem) -> str:
    """What one clip's tensors depend on besides the settings: its file (path, size, time) and caption. A file that
    has gone missing gets a key of its own; its preparation then skips it."""
    source = file_key(item.path) if item.path.is_file() else (str(item.path), None, None)
    return json.dumps([*source, item.caption])


def av_cache_is_current(
    cache_dir: str | os.PathLike,
    items: list[AVItem],
    clip_duration: float,
    pipeline_path: str | os.PathLike,
    *,
    revision: str | None = None,
    variant: str | None = None,
) -> bool:
    """Whether `cache_dir` holds a complete preparation of exactly `items` with these settings."""
    index = read_cache_index(Path(cache_dir))
    return (
        index is not None
        and index.get("fingerprint") == av_cache_fingerprint(pipeline_path, clip_duration, revision, variant)
        and index.get("sources") == [[item.name, _source_key(item)] for item in items]
    )


def prepare_av_dataset(
    pipeline_path: str | os.PathLike,
    items: list[AVItem],
    cache_dir: str | os.PathLike,
    *,
    clip_duration: float,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    revision: str | None = None,
    variant: str | None = None,
) -> AVPreparationSummary:
    """Caches the first `clip_duration` seconds of every clip of `items` into `cache_dir` (unless an up-to-date
    cache is there) and returns what was prepared, reused and skipped.

    `pipeline_path` is a `LuminaV2APipeline` folder or Hub id; its transformer and vocoder are not loaded. `dtype`
    is that of the encoders (bf16 halves the memory on GPUs); the cached tensors are float32 whatever it is.
    """
    _check_arguments(items, clip_duration)
    cache_dir = Path(cache_dir)
    fingerprint = av_cache_fingerprint(pipeline_path, clip_duration, revision, variant)
    if av_cache_is_current(cache_dir, items, clip_duration, pipeline_path, revision=revision, variant=variant):
        index = read_cache_index(cache_dir)
        summary = AVPreparationSummary(prepared=0, reused=len(index["clips"]), skipped=dict(index["skipped"]))
        logger.info(f"Using the prepared clips in {cache_dir}: {summary}")
        return summary

    staging = staging_folder(cache_dir, fingerprint, samples_subfolder="")
    sources = {item.name: _source_key(item) for item in items}
    _take_over_finished_clips(cache_dir, staging, fingerprint, items, sources)
    todo = [item for item in items if not _is_finished(staging / item.cache_file, sources[item.name])]
    summary = AVPreparationSummary(prepared=0, reused=len(items) - len(todo))
    if todo:
        logger.info(f"Preparing {len(todo)} clip(s) into {cache_dir} ({summary.reused} already prepared).")
        pipe = _load_encoders(pipeline_path, clip_duration, device, dtype, revision, variant)
        try:
            for item in tqdm(todo, desc="Preparing clips", unit="clip"):
                reason = _prepare_clip(pipe, item, staging / item.cache_file, sources[item.name], clip_duration)
                if reason is None:
                    summary.prepared += 1
                else:
                    summary.skipped[item.name] = reason
        finally:
            del pipe
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    clips = [item for item in items if item.name not in summary.skipped]
    (logger.warning if summary.skipped else logger.info)(f"Clip preparation: {summary}")
    if not clips:
        raise ValueError(f"None of the {len(items)} clip(s) could be prepared: {summary}")
    _write_index(staging, fingerprint, clips, sources, summary.skipped)
    replace_folder(staging, cache_dir)
    return summary


def _check_arguments(items: list[AVItem], clip_duration: float) -> None:
    if not isinstance(items, list) or not items or not all(isinstance(item, AVItem) for item in items):
        raise ValueError("`items` must be a non-empty list of `AVItem` (see `load_av_items`).")
    check_unique_names(items, "`items`")
    if isinstance(clip_duration, bool) or not isinstance(clip_duration, (int, float)) or not clip_duration > 0:
        raise ValueError(f"`clip_duration` must be a positive number of seconds, got {clip_duration!r}.")
    if not math.isfinite(clip_duration):
        raise ValueError(f"`clip_duration` must be finite, got {clip_duration!r}.")


def _is_finished(path: Path, source: str) -> bool:
    """Whether `path` is a complete clip file made from `source`."""
    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as file:
            return (file.metadata() or {}).get(_SOURCE_KEY) == source and set(CACHED_TENSORS) <= set(file.keys())
    except Exception:  # a damaged file is made again
        return False


def _take_over_finished_clips(
    cache_dir: Path, staging: Path, fingerprint: dict[str, Any], items: list[AVItem], sources: dict[str, str]
) -> None:
    """Links into `staging` the clip files of the complete cache at `cache_dir` (same settings) that still match
    their clip, and removes staged files of clips no longer listed."""
    wanted = {item.cache_file for item in items}
    for stale in staging.glob("*.safetensors"):
        if stale.name not in wanted:
            stale.unlink()
    index = read_cache_index(cache_dir)
    if index is None or index.get("fingerprint") != fingerprint:
        return
    for item in items:
        previous, target = cache_dir / item.cache_file, staging / item.cache_file
        if not _is_finished(target, sources[item.name]) and _is_finished(previous, sources[item.name]):
            target.unlink(missing_ok=True)
            try:
                os.link(previous, target)
            except OSError:  # a file system without hard links
                shutil.copyfile(previous, target)


def _load_encoders(
    pipeline_path: str | os.PathLike,
    clip_duration: float,
    device: torch.device | str,
    dtype: torch.dtype,
    revision: str | None,
    variant: str | None,
) -> LuminaV2APipeline:
    """The pipeline without its transformer and vocoder, checked to encode clips of `clip_duration`."""
    pipe = LuminaV2APipeline.from_pretrained(
        pipeline_path, transformer=None, vocoder=None, revision=revision, variant=variant, dtype=dtype
    ).to(device)
    if pipe.sync_encoder is None:
        raise ValueError(f"The pipeline at {pipeline_path} has no `sync_encoder`; preparing clips needs one.")
    processor = pipe.sync_processor
    if sync_segment_count(clip_duration, processor) == 0:
        raise ValueError(
            f"`clip_duration` {clip_duration} s is too short for Synchformer, which needs at least "
            f"{processor.min_duration} s."
        )
    return pipe


def _probe(path: Path) -> str | None:
    """Why `path` cannot give a clip, from its container alone (None if it may)."""
    if not path.is_file():
        return "file not found"
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream"
            if not container.streams.audio:
                return "no audio stream"
            rate = container.streams.audio[0].sample_rate
    except av.error.FFmpegError as error:
        return f"corrupt or unreadable ({error.strerror or error})"
    if not rate or rate < MIN_SAMPLE_RATE:
        return f"unsupported sample rate {rate} Hz (at least {MIN_SAMPLE_RATE} Hz, resampled to {SAMPLE_RATE} Hz)"
    return None


def _read_clip(path: Path, clip_duration: float) -> tuple[VideoFrames, np.ndarray] | str:
    """The clip's frames and its first `clip_duration` seconds of 16 kHz audio, or why there is no clip."""
    reason = _probe(path)
    if reason is not None:
        return reason
    try:
        audio = read_audio(path, SAMPLE_RATE, duration=clip_duration)
        video = read_video(path, duration=clip_duration)
    except (ValueError, OSError) as error:
        return f"corrupt or unreadable ({error})"
    samples = round(clip_duration * SAMPLE_RATE)
    audio_seconds, video_seconds = len(audio) / SAMPLE_RATE, len(video.frames) / video.fps
    if min(audio_seconds, video_seconds) < clip_duration - DURATION_TOLERANCE:
        return f"too short: {min(audio_seconds, video_seconds):.2f} s, clips are {clip_duration:g} s"
    audio = np.pad(audio, (0, max(0, samples - len(audio))))
    if not np.isfinite(audio).all() or np.abs(audio).max() < SILENCE_PEAK:
        return "silent audio track"
    return video, audio


@torch.no_grad()
def encode_clip(
    pipe: LuminaV2APipeline,
    video: VideoFrames,
    audio: np.ndarray,
    caption: str,
    clip_duration: float,
    mel_extractor: AudioLDMMelFeatureExtractor | None = None,
) -> dict[str, torch.Tensor]:
    """The cached tensors of one clip (float32, on the CPU), each from the pipeline's own encoder: `audio_latents`
    [8, T, 16] (scaled), `text_embeds` [L, D] and `text_mask` [L], `visual_embeds` [V, D], `sync_embeds` [S*8, D]."""
    latents = waveforms_to_latents([audio], SAMPLE_RATE, pipe.vae, mel_extractor or AudioLDMMelFeatureExtractor())
    text, mask = pipe.encode_prompt([caption])
    tensors = {
        "audio_latents": latents[0],
        "text_embeds": text[0],
        "text_mask": mask[0].long(),
        "visual_embeds": pipe.encode_frames([video], clip_duration)[0],
        "sync_embeds": pipe.encode_sync([video], clip_duration)[0],
    }
    return {k: v.cpu().float().contiguous() if k != "text_mask" else v.cpu() for k, v in tensors.items()}


def _prepare_clip(
    pipe: LuminaV2APipeline, item: AVItem, target: Path, source: str, clip_duration: float
) -> str | None:
    """Writes the clip's file; returns why it was skipped, or None."""
    clip = _read_clip(item.path, clip_duration)
    if isinstance(clip, str):
        return clip
    try:
        tensors = encode_clip(pipe, *clip, item.caption, clip_duration)
    except torch.OutOfMemoryError:
        raise  # not the clip's fault: every later clip would fail the same way
    except (ValueError, RuntimeError) as error:  # a clip the encoders refuse; the next one may still work
        return f"cannot be encoded ({type(error).__name__}: {str(error).splitlines()[0]})"
    with atomic_output_file(target) as temporary:
        save_file(tensors, str(temporary), metadata={_SOURCE_KEY: source})
    return None


def _write_index(
    staging: Path,
    fingerprint: dict[str, Any],
    clips: list[AVItem],
    sources: dict[str, str],
    skipped: dict[str, str],
) -> None:
    with safe_open(str(staging / clips[0].cache_file), framework="pt") as file:
        shapes = {name: list(file.get_slice(name).get_shape()) for name in CACHED_TENSORS}
    index = {
        "fingerprint": fingerprint,
        "sources": [[name, source] for name, source in sources.items()],
        "shapes": shapes,  # of the first clip; every clip has the same but for the text length
        "clips": [{"name": c.name, "file": c.cache_file, "caption": c.caption, "path": str(c.path)} for c in clips],
        "skipped": skipped,
    }
    (staging / INDEX_FILE).write_text(json.dumps(index, indent=1))
