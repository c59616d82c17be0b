"""Procedural clips of simple shapes moving over a plain or gradient background, with captions that say what moves,
which way and how fast ("a red circle moving left, slowly").

Small enough to train a text-to-video model on a CPU, and checkable: colour, shape and direction of a generated clip
can be read back from its frames (`showcase/shape_attributes.py`), so prompt following is a number. Some colour x
shape x direction combinations are held out of training (`is_held_out`) to measure whether a model composes words it
has only seen apart.
"""

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from ..utils.atomic import atomic_output_file


SHAPE_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 215, 40),
}
SHAPES = ("circle", "square", "triangle")
# Unit steps in image coordinates (x right, y down).
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
# Pixels per frame at 64 px; scaled with the frame size.
SPEEDS: dict[str, float] = {"slowly": 1.5, "quickly": 3.5}
BACKGROUNDS = ("plain", "gradient")
# Every word a caption can hold, in a fixed order (the vocabulary of a word-level tokenizer).
CAPTION_WORDS = ("a", "moving", ",", *SHAPE_COLOURS, *SHAPES, *DIRECTIONS, *SPEEDS)
MANIFEST_NAME = "metadata.jsonl"


@dataclass(frozen=True)
class ShapeSpec:
    """What a clip shows; its caption is the text a user would type."""

    colour: str
    shape: str
    direction: str
    speed: str

    @property
    def caption(self) -> str:
        return f"{self.caption_without_speed}, {self.speed}"

    @property
    def caption_without_speed(self) -> str:
        """The caption a user who does not care about the speed types ("a red circle moving left")."""
        return f"a {self.colour} {self.shape} moving {self.direction}"

    @classmethod
    def all(cls) -> list["ShapeSpec"]:
        return [cls(*values) for values in itertools.product(SHAPE_COLOURS, SHAPES, DIRECTIONS, SPEEDS)]

    @property
    def is_held_out(self) -> bool:
        """7 of the 48 colour x shape x direction combinations, never trained on. Every pair of attributes of a
        held-out combination (red + circle, red + left, circle + left) is still seen in training, so only the triple
        is new."""
        indices = (
            list(SHAPE_COLOURS).index(self.colour),
            SHAPES.index(self.shape),
            list(DIRECTIONS).index(self.direction),
        )
        return sum(indices) % 6 == 0


def split_specs() -> tuple[list[ShapeSpec], list[ShapeSpec]]:
    """(training specs, held-out specs), each in `ShapeSpec.all()` order."""
    specs = ShapeSpec.all()
    return [s for s in specs if not s.is_held_out], [s for s in specs if s.is_held_out]


def _check(spec: ShapeSpec, size: int, num_frames: int, background: str, speed_jitter: float) -> None:
    choices = {"colour": SHAPE_COLOURS, "shape": SHAPES, "direction": DIRECTIONS, "speed": SPEEDS}
    for name, allowed in choices.items():
        if getattr(spec, name) not in allowed:
            raise ValueError(f"`{name}` must be one of {list(allowed)}, got {getattr(spec, name)!r}.")
    if background not in BACKGROUNDS:
        raise ValueError(f"`background` must be one of {list(BACKGROUNDS)}, got {background!r}.")
    if size < 32 or size % 16:
        raise ValueError(f"`size` must be a multiple of 16 and at least 32, got {size}.")
    if num_frames < 2:
        raise ValueError(f"`num_frames` must be >= 2 (motion needs two frames), got {num_frames}.")
    if not 0.0 <= speed_jitter < 0.5:
        raise ValueError(
            f"`speed_jitter` must be in [0, 0.5) (slow and quick ranges must not meet), got {speed_jitter}."
        )


def _background(size: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    tone = rng.integers(20, 70, size=3)
    if kind == "plain":
        return np.broadcast_to(tone.astype(np.uint8), (size, size, 3)).copy()
    other = rng.integers(60, 120, size=3)
    ramp = (
        np.linspace(0.0, 1.0, size)[:, None, None]
        if rng.random() < 0.5
        else np.linspace(0.0, 1.0, size)[None, :, None]
    )
    return np.broadcast_to(tone + (other - tone) * ramp, (size, size, 3)).astype(np.uint8)


def _draw(canvas: Image.Image, shape: str, centre: tuple[float, float], radius: float, rgb: tuple[int, int, int]):
    x, y = centre
    draw = ImageDraw.Draw(canvas)
    if shape == "circle":
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=rgb)
    elif shape == "square":
        side = radius * 0.9
        draw.rectangle((x - side, y - side, x + side, y + side), fill=rgb)
    else:
        draw.polygon([(x, y - radius), (x - radius, y + radius * 0.8), (x + radius, y + radius * 0.8)], fill=rgb)


def render_shape_clip(
    spec: ShapeSpec,
    seed: int = 0,
    size: int = 64,
    num_frames: int = 9,
    background: str = "plain",
    speed_jitter: float = 0.0,
) -> np.ndarray:
    """Frames `[num_frames, size, size, 3]` uint8: the shape crosses the frame along `spec.direction`, starting from
    a random point chosen so it stays in view (every path of up to 9 frames fits; longer quick ones run off the
    edge). `speed_jitter` scales the speed by a random factor in `1 +- jitter`, so that motion is a continuum a motion
    score can describe, not two values."""
    _check(spec, size, num_frames, background, speed_jitter)
    rng = np.random.default_rng(seed)
    radius = size * 0.2
    step = SPEEDS[spec.speed] * size / 64 * (1.0 + speed_jitter * (2.0 * rng.random() - 1.0))
    dx, dy = DIRECTIONS[spec.direction]
    travel = step * (num_frames - 1)
    low, high = radius + 1, size - radius - 1
    # Along the motion axis start far enough back that the whole path is visible; across it, anywhere.
    start_along = rng.uniform(low, max(low, high - travel))
    across = rng.uniform(low, high)
    if (dx, dy) in ((-1, 0), (0, -1)):
        start_along = size - start_along
    start = (start_along, across) if dx else (across, start_along)
    base = _background(size, background, rng)
    frames = []
    for index in range(num_frames):
        canvas = Image.fromarray(base)
        centre = (start[0] + dx * step * index, start[1] + dy * step * index)
        _draw(canvas, spec.shape, centre, radius, SHAPE_COLOURS[spec.colour])
        frames.append(np.asarray(canvas))
    return np.stack(frames)


def write_shape_dataset(
    folder: str | Path,
    specs: Sequence[ShapeSpec],
    clips_per_spec: int,
    seed: int = 0,
    size: int = 64,
    num_frames: int = 9,
    fps: int = 8,
    speed_jitter: float = 0.25,
    speedless_captions: float = 0.25,
) -> Path:
    """Writes `clips_per_spec` clips of every spec as lossless mp4 (RGB H.264, no chroma subsampling, so colours stay
    exact) and a `metadata.jsonl` manifest of `path` and `caption`, the layout `read_manifest` reads; returns the
    manifest. Motion scores are left to the training preparation, which measures them on the frames. Backgrounds
    alternate between plain and gradient; every clip has its own seed. A share `speedless_captions` of the clips
    (drawn per clip) is captioned without its speed word, so that a model also answers prompts that leave it out."""
    if not specs:
        raise ValueError("`specs` must hold at least one `ShapeSpec`.")
    if clips_per_spec < 1:
        raise ValueError(f"`clips_per_spec` must be >= 1, got {clips_per_spec}.")
    if fps <= 0:
        raise ValueError(f"`fps` must be > 0, got {fps}.")
    if not 0.0 <= speedless_captions <= 1.0:
        raise ValueError(f"`speedless_captions` must be in [0, 1], got {speedless_captions}.")
    for spec in specs:  # every setting is checked before anything is written
        _check(spec, size, num_frames, BACKGROUNDS[0], speed_jitter)
    folder = Path(folder)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    jobs = [(spec, copy) for spec in specs for copy in range(clips_per_spec)]
    for index, (spec, copy) in enumerate(tqdm(jobs, desc="Rendering clips", unit="clip")):
        clip_seed = seed * 1_000_003 + index
        frames = render_shape_clip(spec, clip_seed, size, num_frames, BACKGROUNDS[copy % 2], speed_jitter)
        name = f"clips/{index:05d}.mp4"
        with atomic_output_file(folder / name) as temporary:
            imageio.mimwrite(
                temporary,
                list(frames),
                fps=fps,
                format="FFMPEG",
                codec="libx264rgb",
                pixelformat="rgb24",
                output_params=["-crf", "0"],
            )
        speedless = np.random.default_rng([clip_seed, 1]).random() < speedless_captions
        rows.append({"path": name, "caption": spec.caption_without_speed if speedless else spec.caption})
    manifest = folder / MANIFEST_NAME
    with atomic_output_file(manifest) as temporary:
        temporary.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest
