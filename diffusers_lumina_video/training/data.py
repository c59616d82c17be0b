"""Reading a LoRA dataset: the manifest, the media files, the frames of a clip and its aspect-ratio bucket.

A dataset is a folder of videos and images, each with a same-name `.txt` caption, or a CSV/JSONL/JSON manifest with
a path, a caption and an optional motion-score column. Everything here works on pixels; latents are made in
`prepare.py`.
"""

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch
from PIL import Image

from .config import SIZE_MULTIPLE


VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".avi", ".mkv", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_MAX_LISTED = 10


@dataclass(frozen=True)
class MediaItem:
    """One training sample as the manifest describes it."""

    path: Path
    caption: str
    motion_score: float | None = None

    @property
    def is_image(self) -> bool:
        return self.path.suffix.lower() in IMAGE_SUFFIXES


@dataclass
class VideoClip:
    """Frames of a video as `[H, W, 3]` uint8 arrays: those to train on and those at requested extra times."""

    frames: list[np.ndarray]
    frames_at_times: list[np.ndarray]
    source_fps: float


def _listing(paths: Sequence[object]) -> str:
    shown = ", ".join(str(p) for p in paths[:_MAX_LISTED])
    return shown + (f" and {len(paths) - _MAX_LISTED} more" if len(paths) > _MAX_LISTED else "")


def read_manifest(
    dataset: str | Path,
    path_column: str = "path",
    caption_column: str = "caption",
    motion_column: str = "motion_score",
) -> list[MediaItem]:
    """All samples of `dataset`, in manifest order. Raises a `ValueError`/`FileNotFoundError` naming the column,
    row or files at fault, before anything is decoded."""
    dataset = Path(dataset)
    if dataset.is_dir():
        items = _read_folder(dataset)
    else:
        rows = read_manifest_rows(dataset, {"path_column": path_column, "caption_column": caption_column})
        items = [
            MediaItem(
                path=resolve_manifest_path(dataset.parent, row.get(path_column)),
                caption=str(row.get(caption_column) or "").strip(),
                motion_score=manifest_number(row.get(motion_column), dataset, number, motion_column),
            )
            for number, row in enumerate(rows, start=1)
        ]
    _check_files(items, dataset)
    return items


def read_manifest_rows(manifest: Path, columns: dict[str, str]) -> list[dict]:
    """The rows of a CSV/JSONL/JSON manifest, checked to be there and to have every column of `columns` (parameter
    name -> column name, so the error names the parameter to fix)."""
    rows = _read_rows(manifest)
    if not rows:
        raise ValueError(f"Manifest {manifest} has no rows.")
    present = list(rows[0])
    for name, column in columns.items():
        if column not in present:
            raise ValueError(
                f"`{name}` {column!r} is not a column of {manifest}; its columns are {present}. Set `{name}` to the "
                "right one."
            )
    return rows


def _read_rows(manifest: Path) -> list[dict]:
    suffix = manifest.suffix.lower()
    if suffix == ".csv":
        with manifest.open(newline="", encoding="utf-8") as file:
            return list(csv.DictReader(file))
    if suffix == ".jsonl":
        lines = [line for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows = []
        for number, line in enumerate(lines, start=1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{manifest}, line {number}: not valid JSON ({error}).") from None
        return rows
    rows = json.loads(manifest.read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise ValueError(f"{manifest} must hold a JSON list of objects, one per sample.")
    return rows


def resolve_manifest_path(root: Path, value: str | None) -> Path:
    path = Path(str(value or "").strip())
    return path if path.is_absolute() else root / path


def manifest_number(value: object, manifest: Path, row: int, column: str) -> float | None:
    """A number from a manifest cell (a motion or alignment score); None when the cell is empty or missing."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{manifest}, row {row}: `{column}` must be a number or empty, got {value!r}.") from None
    return None if math.isnan(score) else score


def _read_folder(folder: Path) -> list[MediaItem]:
    media = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES)
    if not media:
        raise ValueError(
            f"Dataset folder {folder} holds no videos ({', '.join(VIDEO_SUFFIXES)}) or images "
            f"({', '.join(IMAGE_SUFFIXES)})."
        )
    uncaptioned = [p for p in media if not p.with_suffix(".txt").is_file()]
    if uncaptioned:
        raise FileNotFoundError(
            f"Every file of a dataset folder needs a caption in a same-name .txt file; missing for "
            f"{_listing(uncaptioned)}."
        )
    return [MediaItem(path=p, caption=p.with_suffix(".txt").read_text(encoding="utf-8").strip()) for p in media]


def _check_files(items: list[MediaItem], dataset: Path) -> None:
    missing = [item.path for item in items if not item.path.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} file(s) listed in {dataset} do not exist: {_listing(missing)}.")
    unsupported = [item.path for item in items if item.path.suffix.lower() not in VIDEO_SUFFIXES + IMAGE_SUFFIXES]
    if unsupported:
        raise ValueError(
            f"Unsupported file type(s) in {dataset}: {_listing(unsupported)}. Videos: {', '.join(VIDEO_SUFFIXES)}; "
            f"images: {', '.join(IMAGE_SUFFIXES)}."
        )


def check_media(items: list[MediaItem], num_frames: int, fps: float | None = None) -> None:
    """Checks every sample without decoding it: a caption, a readable file, and for videos enough frames (at `fps`)
    for a clip by the rule of `clip_length`, so unusable samples fail, all named at once, before any model loads."""
    problems = []
    for item in items:
        reasons = [] if item.caption else ["empty or missing caption"]
        try:
            if item.is_image:
                with Image.open(item.path) as image:
                    image.verify()
            else:
                reason = _video_problem(item.path, num_frames, fps)
                reasons += [reason] if reason else []
        except Exception as error:  # any decoder failure is reported the same way
            reason = "empty file" if item.path.stat().st_size == 0 else f"{type(error).__name__}: {error}"
            reasons.append(f"no decodable frame, zero-length or broken ({reason.splitlines()[0]})")
        problems += [f"{item.path}: {'; '.join(reasons)}"] if reasons else []
    if problems:
        raise ValueError(f"{len(problems)} sample(s) cannot be trained on:\n  - " + "\n  - ".join(problems))


def _video_problem(path: Path, num_frames: int, fps: float | None) -> str | None:
    """Why the video at `path` gives no clip (None if it gives one); frames are counted from the container."""
    with imageio.get_reader(path, format="FFMPEG") as reader:
        reader.get_data(0)
        source_fps = float(reader.get_meta_data().get("fps") or 0.0)
        if source_fps <= 0:
            return "reports no frame rate; re-encode it (e.g. with ffmpeg)"
        total = reader.count_frames()
    step = source_fps / (fps or source_fps)
    available = sum(1 for i in range(num_frames) if round(i * step) < total)
    if clip_length(available, num_frames) == 0:
        rate = f"at {fps} fps" if fps else "at its own frame rate"
        return f"has {available} frame(s) {rate}; a clip needs at least 9"
    return None


def load_image(path: Path) -> Image.Image:
    """An RGB image; transparent pixels become white, as in the reference."""
    image = Image.open(path)
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def clip_length(available: int, num_frames: int) -> int:
    """Frames to keep from `available`: `num_frames`, or the longest 1 + 8k that fits; 0 if none does."""
    usable = min(available, num_frames)
    return 0 if usable < 9 else (usable - 1) // 8 * 8 + 1


def read_video_clip(path: Path, num_frames: int, fps: float | None, extra_times: Sequence[float] = ()) -> VideoClip:
    """Decodes the clip that starts at the first frame: up to `num_frames` frames at `fps` (default: the video's
    own rate), plus the frames at `extra_times` seconds that exist. Decoding stops at the last frame needed."""
    with imageio.get_reader(path, format="FFMPEG") as reader:
        source_fps = float(reader.get_meta_data().get("fps") or 0.0)
        if source_fps <= 0:
            raise ValueError(f"Video {path} reports no frame rate; re-encode it (e.g. with ffmpeg).")
        step = source_fps / (fps or source_fps)
        clip_indices = [round(i * step) for i in range(num_frames)]
        time_indices = [round(t * source_fps) for t in extra_times]
        wanted = set(clip_indices) | set(time_indices)
        last = max(wanted)
        decoded: dict[int, np.ndarray] = {}
        for index, frame in enumerate(reader):
            if index in wanted:
                decoded[index] = np.asarray(frame)[..., :3]
            if index >= last:
                break
    available = sum(1 for i in clip_indices if i in decoded)
    length = clip_length(available, num_frames)
    if length == 0:
        rate = f"at {fps} fps" if fps else "at its own frame rate"
        raise ValueError(f"Video {path} has {available} frame(s) {rate}; a clip needs at least 9.")
    return VideoClip(
        frames=[decoded[i] for i in clip_indices[:length]],
        frames_at_times=[decoded[i] for i in time_indices if i in decoded],
        source_fps=source_fps,
    )


def bucket_sizes(resolution: int, max_aspect_ratio: float = 4.0) -> list[tuple[int, int]]:
    """`(height, width)` sizes, multiples of 32 px, whose area is at most `resolution**2` (as many 32 px patches as
    the square has), from wide to tall; the reference's `generate_crop_size_list`."""
    budget = round((resolution / SIZE_MULTIPLE) ** 2)
    sizes = []
    wide, high = budget, 1
    while wide > 0:
        if max(wide, high) / min(wide, high) <= max_aspect_ratio:
            sizes.append((high * SIZE_MULTIPLE, wide * SIZE_MULTIPLE))
        if (high + 1) * wide <= budget:
            high += 1
        else:
            wide -= 1
    return sizes


def nearest_bucket(height: int, width: int, buckets: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The bucket that keeps the largest share of the frame after cover-resize and center crop (the reference's
    `var_center_crop` with `random_top_k=1`)."""

    def kept(bucket: tuple[int, int]) -> tuple[float, int, int]:
        scale_h, scale_w = bucket[0] / height, bucket[1] / width
        return min(scale_h, scale_w) / max(scale_h, scale_w), bucket[1], bucket[0]

    return max(buckets, key=kept)


def resize_and_crop(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Box-halves while the image is twice the target, resizes (bicubic) to cover `size` = (height, width), then
    crops the center, as the reference does."""
    height, width = size
    while image.width >= 2 * width and image.height >= 2 * height:
        image = image.resize((image.width // 2, image.height // 2), resample=Image.BOX)
    scale = max(width / image.width, height / image.height)
    image = image.resize((round(image.width * scale), round(image.height * scale)), resample=Image.BICUBIC)
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))


def frames_to_tensor(frames: Sequence[Image.Image | np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    """`[3, F, H, W]` in [-1, 1], every frame resized and cropped to `size`."""
    arrays = [
        np.asarray(resize_and_crop(f if isinstance(f, Image.Image) else Image.fromarray(f), size)) for f in frames
    ]
    pixels = torch.from_numpy(np.stack(arrays)).permute(3, 0, 1, 2).float()
    return pixels / 127.5 - 1.0
