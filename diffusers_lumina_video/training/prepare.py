"""Turning a dataset into a training cache: VAE latents and text features per sample, as safetensors.

Training then reads small tensors and never holds the VAE or the text encoder. The cache folder:

    index.json                  settings and manifest it was made from, and one entry per sample
    null_caption.safetensors    features of the system prompt alone (the dropped caption)
    samples/000000.safetensors  `latents` [C, F, H, W] (scaled) and `prompt_embeds` [L, D] (real tokens only)

Videos keep frames 1.. of their latents: the first latent frame of the causal VAE is dropped, as the reference does
(its first-frame artifacts are not worth learning), so a clip of 1 + 8k frames gives 2k latent frames. Images keep
their single latent frame. The cache is built in a temporary folder and renamed into place when complete, so a
crash never leaves a half-made cache behind; a preparation that was killed is taken over by the next one for the same
data and settings, which keeps the samples it finished.
"""

import gc
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..pipelines.lumina_video import SYSTEM_PROMPT, LuminaVideoPipeline
from ..utils.atomic import (
    atomic_output_file,
    is_abandoned,
    remove_stale_temporaries,
    replace_folder,
    temporary_prefix,
)
from .config import TrainingConfig
from .data import (
    MediaItem,
    bucket_sizes,
    check_media,
    frames_to_tensor,
    load_image,
    nearest_bucket,
    read_manifest,
    read_video_clip,
)
from .motion import MOTION_INTERVAL, MOTION_TIMES, flow_motion_score


logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
INDEX_FILE = "index.json"
NULL_CAPTION_FILE = "null_caption.safetensors"
_FINGERPRINT_FILE = "fingerprint.json"
_STAGING = "staging"
_CAPTION_BATCH = 8


@dataclass(frozen=True)
class CachedSample:
    file: str
    is_image: bool
    motion_score: float | None
    latent_shape: tuple[int, int, int, int]  # C, F, H, W


def cache_fingerprint(config: TrainingConfig, items: list[MediaItem]) -> dict[str, Any]:
    """Everything the cached tensors depend on; a cache whose fingerprint differs is rebuilt."""
    fingerprint = {
        "format": CACHE_FORMAT,
        "model": [config.pretrained_model_name_or_path, config.revision, config.variant],
        "resolution": config.resolution,
        "max_aspect_ratio": config.max_aspect_ratio,
        "num_frames": config.num_frames,
        "fps": config.fps,
        "max_sequence_length": config.max_sequence_length,
        "system_prompt": resolved_system_prompt(config),
        "items": [[*file_key(i.path), i.caption, i.motion_score] for i in items],
    }
    return json.loads(json.dumps(fingerprint))


def file_key(path: Path) -> tuple[str, int, int]:
    """Path, size and modification time: an edited or replaced file changes it."""
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def resolved_system_prompt(config: TrainingConfig) -> str:
    return SYSTEM_PROMPT if config.system_prompt is None else config.system_prompt


def read_cache_index(cache_dir: Path) -> dict[str, Any] | None:
    index = cache_dir / INDEX_FILE
    return json.loads(index.read_text()) if index.is_file() else None


def cache_is_current(config: TrainingConfig, items: list[MediaItem]) -> bool:
    index = read_cache_index(config.cache_path)
    return index is not None and index["fingerprint"] == cache_fingerprint(config, items)


def load_dataset_items(config: TrainingConfig) -> list[MediaItem]:
    """The manifest's samples, with every file opened once: all data errors surface here, before any model."""
    items = read_manifest(config.dataset, config.path_column, config.caption_column, config.motion_column)
    check_media(items, config.num_frames, config.fps)
    return items


def prepare_dataset(
    config: TrainingConfig,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    items: list[MediaItem] | None = None,
) -> Path:
    """Builds the cache at `config.cache_path` unless an up-to-date one is there; returns its folder.

    `dtype` is that of the VAE and text encoder (bf16 halves the memory on GPUs; fp32 on CPU).
    """
    items = load_dataset_items(config) if items is None else items
    cache_dir = config.cache_path
    if cache_is_current(config, items):
        logger.info(f"Using the prepared data in {cache_dir}.")
        return cache_dir

    logger.info(f"Preparing {len(items)} samples into {cache_dir}.")
    pipe = config.load_base_pipeline(LuminaVideoPipeline, dtype, transformer=None).to(device)
    staging = staging_folder(cache_dir, cache_fingerprint(config, items))
    try:
        samples = _write_samples(pipe, config, items, staging, device)
        null_embeds = _encode_captions(pipe, [""], config, device)[0]
        save_file({"prompt_embeds": null_embeds}, str(staging / NULL_CAPTION_FILE))
        index = {
            "fingerprint": cache_fingerprint(config, items),
            "latent_channels": samples[0].latent_shape[0],
            "text_dim": int(null_embeds.shape[-1]),
            "samples": [
                {
                    "file": s.file,
                    "is_image": s.is_image,
                    "motion_score": s.motion_score,
                    "latent_shape": list(s.latent_shape),
                }
                for s in samples
            ],
        }
        (staging / INDEX_FILE).write_text(json.dumps(index, indent=1))
        replace_folder(staging, cache_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        del pipe
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return cache_dir


def staging_folder(cache_dir: Path, fingerprint: dict[str, Any], samples_subfolder: str = "samples") -> Path:
    """This process's folder to build the cache in. A killed preparation's folder with the same fingerprint becomes
    it, finished sample files (in `samples_subfolder`) included; other abandoned ones are deleted, and so is this
    process's own earlier folder when it was made for another fingerprint."""
    ours = cache_dir.with_name(temporary_prefix(cache_dir.name) + _STAGING)
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    marker = ours / _FINGERPRINT_FILE
    if ours.is_dir() and (not marker.is_file() or json.loads(marker.read_text()) != fingerprint):
        shutil.rmtree(ours)
    abandoned = [] if ours.is_dir() else sorted(cache_dir.parent.glob(f".{cache_dir.name}.tmp-*-{_STAGING}"))
    for folder in abandoned:
        marker = folder / _FINGERPRINT_FILE
        if is_abandoned(folder) and marker.is_file() and json.loads(marker.read_text()) == fingerprint:
            folder.rename(ours)
            remove_stale_temporaries(ours / samples_subfolder)  # a sample file the killed process was writing
            done = len(list((ours / samples_subfolder).glob("*.safetensors")))
            logger.info(f"Resuming the preparation left in {folder.name}: {done} sample(s) are done.")
            break
    for stale in remove_stale_temporaries(cache_dir.parent):
        logger.info(f"Removed {stale}, left by an interrupted preparation for other data or settings.")
    (ours / samples_subfolder).mkdir(parents=True, exist_ok=True)
    (ours / _FINGERPRINT_FILE).write_text(json.dumps(fingerprint))
    return ours


def _read_sample(folder: Path, name: str) -> CachedSample:
    with safe_open(str(folder / name), framework="pt") as file:
        metadata = file.metadata()
        shape = tuple(file.get_slice("latents").get_shape())
    motion = metadata["motion_score"]
    return CachedSample(name, metadata["is_image"] == "1", float(motion) if motion else None, shape)


@torch.no_grad()
def _encode_captions(
    pipe: LuminaVideoPipeline, captions: list[str], config: TrainingConfig, device: torch.device | str
) -> list[torch.Tensor]:
    """`[L_i, D]` features of each caption (system prompt prepended), cut to its real tokens."""
    embeds, mask, _, _ = pipe.encode_prompt(
        captions,
        do_classifier_free_guidance=False,
        device=device,
        system_prompt=resolved_system_prompt(config),
        max_sequence_length=config.max_sequence_length,
    )
    return [e[: int(m.sum())].cpu().contiguous() for e, m in zip(embeds, mask, strict=True)]


@torch.no_grad()
def _encode_pixels(pipe: LuminaVideoPipeline, pixels: torch.Tensor, is_image: bool) -> torch.Tensor:
    vae = pipe.vae
    latents = vae.encode(pixels[None].to(vae.device, vae.dtype)).latent_dist.mode()[0]
    latents = latents * vae.config.scaling_factor
    return (latents if is_image else latents[:, 1:]).cpu().contiguous()


def _load_pixels(
    item: MediaItem, config: TrainingConfig, buckets: list[tuple[int, int]]
) -> tuple[torch.Tensor, float | None]:
    """`[3, F, H, W]` pixels in the item's bucket, and its motion score (computed for videos without one)."""
    if item.is_image:
        image = load_image(item.path)
        return frames_to_tensor([image], nearest_bucket(image.height, image.width, buckets)), None
    clip = read_video_clip(item.path, config.num_frames, config.fps, extra_times=MOTION_TIMES)
    height, width = clip.frames[0].shape[:2]
    pixels = frames_to_tensor(clip.frames, nearest_bucket(height, width, buckets))
    motion = item.motion_score
    if motion is None:
        # Clips shorter than the reference's 0.5 s spacing are scored on consecutive frames, rescaled.
        if len(clip.frames_at_times) >= 2:
            motion = flow_motion_score(clip.frames_at_times, MOTION_INTERVAL)
        else:
            motion = flow_motion_score(clip.frames, 1.0 / (config.fps or clip.source_fps))
    return pixels, motion


def _write_samples(
    pipe: LuminaVideoPipeline,
    config: TrainingConfig,
    items: list[MediaItem],
    folder: Path,
    device: torch.device | str,
) -> list[CachedSample]:
    buckets = bucket_sizes(config.resolution, config.max_aspect_ratio)
    samples = []
    progress = tqdm(total=len(items), desc="Preparing", unit="sample")
    for start in range(0, len(items), _CAPTION_BATCH):
        chunk = items[start : start + _CAPTION_BATCH]
        names = [f"samples/{start + offset:06d}.safetensors" for offset in range(len(chunk))]
        todo = [offset for offset, name in enumerate(names) if not (folder / name).is_file()]
        captions = _encode_captions(pipe, [chunk[offset].caption for offset in todo], config, device) if todo else []
        for offset, prompt_embeds in zip(todo, captions, strict=True):
            item = chunk[offset]
            pixels, motion = _load_pixels(item, config, buckets)
            latents = _encode_pixels(pipe, pixels, item.is_image)
            metadata = {
                "is_image": str(int(item.is_image)),
                "motion_score": "" if motion is None else str(float(motion)),
            }
            with atomic_output_file(folder / names[offset]) as staging:
                save_file({"latents": latents, "prompt_embeds": prompt_embeds}, str(staging), metadata=metadata)
        for name in names:
            samples.append(_read_sample(folder, name))
            progress.update()
    progress.close()
    return samples
