"""Synthetic audio-visual clips whose sound follows the picture in time: a coloured square flashes at random moments
over a plain background, and each flash sounds a short tone whose pitch is the colour's.

A model that learns these clips has to read *when* a flash happens from the video (the onsets), and *which* colour
it is (the pitch); the caption names the colour, so the text alone fixes the pitch but never the timing. Flash times
are continuous and random per clip, so a clip drawn from one seed range never repeats the timing of another range:
held-out clips (`HELD_OUT_SEED_OFFSET`) have timings no training clip had.

`write_flash_dataset` renders clips as real mp4 files (H.264 video, AAC sound) in a VGGSound-style folder with a
manifest, the input V2A training and evaluation read; the manifest also keeps each clip's truth (colour, flash times).
"""

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..utils.atomic import atomic_output_file
from ..utils.media_io import export_to_video_with_audio


SAMPLE_RATE = 16000
# Name, RGB and tone frequency (Hz). Tones are far apart on a mel scale, so a 64-bin mel spectrogram separates them.
FLASH_COLOURS: dict[str, tuple[tuple[int, int, int], float]] = {
    "red": ((230, 40, 40), 440.0),
    "green": ((40, 200, 60), 880.0),
    "blue": ((50, 80, 235), 1760.0),
    "yellow": ((235, 220, 40), 3520.0),
}
BACKGROUND = (24, 24, 28)
HELD_OUT_SEED_OFFSET = 1_000_000


@dataclass(frozen=True)
class FlashClip:
    """One clip: frames `[T, H, W, 3]` uint8 at `fps`, mono float32 audio at `sample_rate`, and the truth."""

    frames: np.ndarray
    audio: np.ndarray
    fps: float
    sample_rate: int
    flash_times: tuple[float, ...]  # seconds, the onsets of flash and tone alike
    colour: str

    @property
    def caption(self) -> str:
        return f"a {self.colour} square flashing with a beep"

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


def _flash_times(
    rng: np.random.Generator, duration: float, count: int, flash_length: float, gap: float
) -> list[float]:
    """`count` onsets in `[0.1, duration - flash_length]`, at least `gap` seconds apart."""
    latest = duration - flash_length - 0.1
    if count * gap > latest:
        raise ValueError(
            f"`num_flashes` ({count}) flashes {gap} s apart do not fit in `duration` {duration} s; lower one or "
            "raise the other."
        )
    # Sorted uniform draws with the gaps added back keep every pattern equally likely.
    spare = latest - (count - 1) * gap - 0.1
    starts = np.sort(rng.uniform(0.0, spare, size=count))
    return [0.1 + float(start) + index * gap for index, start in enumerate(starts)]


def generate_flash_clip(
    seed: int,
    duration: float = 4.0,
    fps: float = 25.0,
    size: int = 64,
    num_flashes: int = 4,
    min_gap: float = 0.4,
    flash_length: float = 0.12,
    colour: str | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> FlashClip:
    """A clip drawn from `seed` (the colour too, unless given). Use seeds below `HELD_OUT_SEED_OFFSET` for training
    and at or above it for evaluation."""
    if colour is not None and colour not in FLASH_COLOURS:
        raise ValueError(f"`colour` must be one of {list(FLASH_COLOURS)}, got {colour!r}.")
    for name, value in (("duration", duration), ("fps", fps), ("flash_length", flash_length), ("min_gap", min_gap)):
        if not value > 0:
            raise ValueError(f"`{name}` must be > 0, got {value}.")
    if size < 16:
        raise ValueError(f"`size` must be at least 16 pixels, got {size}.")
    if num_flashes < 1:
        raise ValueError(f"`num_flashes` must be >= 1, got {num_flashes}.")
    if min_gap < flash_length:
        raise ValueError(f"`min_gap` ({min_gap}) must be at least `flash_length` ({flash_length}).")

    rng = np.random.default_rng(seed)
    colour = colour or str(rng.choice(list(FLASH_COLOURS)))
    rgb, frequency = FLASH_COLOURS[colour]
    times = _flash_times(rng, duration, num_flashes, flash_length, min_gap)

    num_frames = round(duration * fps)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    frames[:] = BACKGROUND
    side = size // 3
    for onset in times:
        top, left = rng.integers(0, size - side, size=2)
        # Every frame whose display interval overlaps the flash shows the square.
        first, last = int(np.floor(onset * fps)), int(np.ceil((onset + flash_length) * fps))
        frames[first:last, top : top + side, left : left + side] = rgb

    audio = tone_track(
        round(duration * sample_rate), times, tone(frequency, flash_length, sample_rate), sample_rate, rng
    )
    return FlashClip(frames, audio, fps, sample_rate, tuple(times), colour)


def tone(
    frequency: float, length: float, sample_rate: int = SAMPLE_RATE, partials: dict[int, float] | None = None
) -> np.ndarray:
    """A beep of `length` seconds: 5 ms attack, then a decay with a time constant of a third of the length. A pure
    sine at `frequency`, or the sum of `partials` (harmonic number -> amplitude relative to the fundamental's), those
    at or above the Nyquist frequency left out so that nothing aliases onto another pitch."""
    t = np.arange(round(length * sample_rate)) / sample_rate
    envelope = np.minimum(1.0, t / 0.005) * np.exp(-t / (length / 3))
    partials = {1: 1.0} if partials is None else partials
    wave = sum(
        amplitude * np.sin(2 * np.pi * number * frequency * t)
        for number, amplitude in partials.items()
        if number * frequency < sample_rate / 2
    )
    return (0.5 * envelope * wave).astype(np.float32)


def tone_track(
    num_samples: int,
    onsets: Sequence[float],
    beep: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    noise: float = 1e-4,
) -> np.ndarray:
    """`num_samples` of mono audio with `beep` starting at each of `onsets` (seconds; cut at the end), over white
    noise of standard deviation `noise` drawn from `rng`: real tracks are never digitally silent, and log-mel front
    ends need some signal."""
    audio = np.zeros(num_samples, dtype=np.float32)
    for onset in onsets:
        start = round(onset * sample_rate)
        audio[start : start + len(beep)] += beep[: len(audio) - start]
    audio += rng.normal(0.0, noise, size=audio.shape).astype(np.float32)
    return audio


MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("id", "path", "caption", "colour", "flash_times", "seed")
# What a dataset may set for all its clips (each clip draws its own colour).
CLIP_SETTINGS = ("duration", "fps", "size", "num_flashes", "min_gap", "flash_length")


@dataclass(frozen=True)
class FlashClipRecord:
    """One row of a written flash dataset: the clip's file and the truth to measure generated sound against."""

    clip_id: str
    path: Path
    caption: str
    colour: str
    flash_times: tuple[float, ...]
    seed: int


def write_flash_dataset(
    output_dir: str | os.PathLike, num_clips: int, held_out: bool = False, first_seed: int = 0, **clip_kwargs
) -> Path:
    """Renders `num_clips` clips (seeds `first_seed`, `first_seed + 1`, ..., above `HELD_OUT_SEED_OFFSET` when
    `held_out`) as `video/<id>.mp4` under `output_dir`, with `manifest.csv` (columns `MANIFEST_COLUMNS`); returns
    the manifest's path. `clip_kwargs` go to `generate_flash_clip`. Clips already written are kept, so an
    interrupted run resumes; the manifest is written last."""
    if isinstance(num_clips, bool) or not isinstance(num_clips, int) or num_clips < 1:
        raise ValueError(f"`num_clips` must be a positive int, got {num_clips!r}.")
    if isinstance(first_seed, bool) or not isinstance(first_seed, int) or not 0 <= first_seed < HELD_OUT_SEED_OFFSET:
        raise ValueError(f"`first_seed` must be an int in [0, {HELD_OUT_SEED_OFFSET}), got {first_seed!r}.")
    if first_seed + num_clips > HELD_OUT_SEED_OFFSET:
        raise ValueError(
            f"`first_seed` + `num_clips` ({first_seed + num_clips}) must not pass {HELD_OUT_SEED_OFFSET}, where "
            "training and held-out seeds meet."
        )
    unknown = sorted(set(clip_kwargs) - set(CLIP_SETTINGS))
    if unknown:
        raise ValueError(f"`clip_kwargs` has {unknown}; allowed: {list(CLIP_SETTINGS)}.")
    output_dir = Path(output_dir)
    (output_dir / "video").mkdir(parents=True, exist_ok=True)
    offset = HELD_OUT_SEED_OFFSET if held_out else 0
    rows = []
    for seed in tqdm(range(offset + first_seed, offset + first_seed + num_clips), desc="Writing flash clips"):
        clip = generate_flash_clip(seed, **clip_kwargs)
        clip_id = f"flash_{seed:07d}"
        path = output_dir / "video" / f"{clip_id}.mp4"
        if not path.is_file():
            export_to_video_with_audio(clip.frames, clip.audio, clip.sample_rate, path, fps=clip.fps)
        times = " ".join(f"{time:.4f}" for time in clip.flash_times)
        rows.append((clip_id, path.relative_to(output_dir).as_posix(), clip.caption, clip.colour, times, seed))

    return write_csv_manifest(output_dir / MANIFEST_NAME, MANIFEST_COLUMNS, rows)


def write_csv_manifest(manifest: Path, columns: Sequence[str], rows: Sequence[Sequence]) -> Path:
    """Writes `rows` under a header of `columns` as the CSV `manifest` (atomically); returns its path."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    with atomic_output_file(manifest) as temporary:
        temporary.write_text(text.getvalue())
    return manifest


def read_csv_manifest(manifest: str | os.PathLike, columns: Sequence[str], kind: str) -> list[dict[str, str]]:
    """The rows of a CSV `manifest` that must hold `columns` (a manifest of a `kind` dataset), as dicts."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"`manifest` {manifest} is not a file.")
    with manifest.open(newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows or set(columns) - set(rows[0]):
        raise ValueError(f"`manifest` {manifest} is not a {kind} dataset manifest (columns {list(columns)}).")
    return rows


def read_flash_manifest(manifest: str | os.PathLike) -> list[FlashClipRecord]:
    """The clips of a manifest written by `write_flash_dataset`, paths resolved against its folder."""
    manifest = Path(manifest)
    rows = read_csv_manifest(manifest, MANIFEST_COLUMNS, "flash")
    return [
        FlashClipRecord(
            clip_id=row["id"],
            path=manifest.parent / row["path"],
            caption=row["caption"],
            colour=row["colour"],
            flash_times=tuple(float(time) for time in row["flash_times"].split()),
            seed=int(row["seed"]),
        )
        for row in rows
    ]
