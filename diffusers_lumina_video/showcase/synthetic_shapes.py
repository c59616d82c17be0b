"""Procedural clips of simple shapes moving over a plain or gradient background, with captions that say what moves,
which way and how fast ("a red circle moving left, slowly", "a red circle bouncing left and right, quickly").

Small enough to train a text-to-video model on a CPU, and checkable: colour, shape and direction of a generated clip
can be read back from its frames (`showcase/shape_attributes.py`), so prompt following is a number. Some colour x
shape x direction combinations are held out of training (`is_held_out`) to measure whether a model composes words it
has only seen apart. A `ClipFormat` names the clips a built-in model learns from: the first `tiny-shapes` learnt from
`CLIP_FORMAT_V1` (one second), the shipped one from those, then from `CLIP_FORMAT_V2` (two seconds, bouncing as
well), then from `CLIP_FORMAT_V4` (v2 with every bounce heading left first) and last from `CLIP_FORMAT_V5` (v4 with
every bounce nearer the clip's middle); `CLIP_FORMAT_V3` draws v2's clips inside a wall along the frame's edge.
"""

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
# Left and right, reversing at the frame's edge ("a red circle bouncing left and right").
BOUNCING = "bouncing"
# Every motion a clip can show, in a fixed order (`ShapeSpec.direction` takes one of them).
DIRECTION_CLASSES = (*DIRECTIONS, BOUNCING)
# Pixels per frame at 64 px; scaled with the frame size.
SPEEDS: dict[str, float] = {"slowly": 1.5, "quickly": 3.5}
BACKGROUNDS = ("plain", "gradient")
_MOVING_WORDS = ("a", "moving", ",", *SHAPE_COLOURS, *SHAPES, *DIRECTIONS, *SPEEDS)
# Every word a caption can hold, in a fixed order (the vocabulary of a word-level tokenizer). The words of bouncing
# captions come last, so a tokenizer of the other words alone (the shipped `tiny-shapes`) gives every word it knows
# the same id.
CAPTION_WORDS = (*_MOVING_WORDS, BOUNCING, "and")
MANIFEST_NAME = "metadata.jsonl"
# A shape's radius as a share of the frame's side: 26 px across at 64 px, large enough for corners to survive the VAE.
SHAPE_RADIUS = 0.2
# The wall some clip formats draw along the frame's edge (`ClipFormat.wall`): light grey, far from every shape colour.
WALL_COLOUR = (200, 200, 200)
# Its width in pixels, in every format that draws it.
WALL_WIDTH = 2
# Frames a bounce keeps from either end of its clip, so that a line can be fitted to the track on each side of it.
BOUNCE_MARGIN = 3


@dataclass(frozen=True)
class ClipFormat:
    """The clips a built-in model learns from and makes: length, rate and size, what its speed words mean and which
    motions its captions name. The speeds keep paths of `num_frames` frames in view at the datasets' 25% speed
    jitter."""

    name: str
    num_frames: int
    fps: int
    size: int
    speeds: dict[str, float]  # pixels per frame at 64 px, scaled with the frame size
    directions: tuple[str, ...]
    # The shape is drawn at this many times the resolution and averaged down: edges are antialiased, so a step of
    # less than a pixel still moves the shape's centroid by that step.
    supersample: int
    # `motion_score` values across its training clips' measured scores (about their 5th to 95th percentile), where a
    # motion sweep is read.
    motion_sweep: tuple[float, ...]
    # Pixels of wall (`WALL_COLOUR`) drawn along the frame's edge, which the shape stays inside and bounces off: an
    # edge a transformer with rotary positions alone (which sees offsets between tokens, not where they are) can see,
    # to tell whether not seeing it is why a model does not bounce (docs/showcase.md: it is not). 0: no wall.
    wall: int = 0
    # The way every bouncing shape first heads ("left": towards the left edge, turning there, as "bouncing left and
    # right" reads), so that where a bounce starts follows from its caption as a one-way path's does; None: either
    # way, towards the edge it turns at. docs/showcase.md: a model places a path by its caption, but does not choose
    # a bounce's first direction by where the shape is.
    bounce_heading: str | None = None
    # Frames from either end of the clip between which a bounce's moment is drawn: a wider margin keeps every bounce
    # nearer the middle, so that where it starts and when it turns vary less (docs/showcase.md, v5).
    bounce_margin: int = BOUNCE_MARGIN

    @property
    def margin(self) -> int:
        """Pixels between the frame's edge and the nearest the shape comes: 1, or the wall and a gap of 2 (which a
        reader of blurred frames keeps as background)."""
        return self.wall + 2 if self.wall else 1

    @property
    def caption_words(self) -> tuple[str, ...]:
        """The words its captions can hold, in `CAPTION_WORDS` order."""
        return CAPTION_WORDS if BOUNCING in self.directions else _MOVING_WORDS

    @property
    def max_speed_jitter(self) -> float:
        """The `speed_jitter` at which two speeds' ranges of jittered steps meet."""
        steps = sorted(self.speeds.values())
        return min((high - low) / (high + low) for low, high in itertools.pairwise(steps))


# The shipped `tiny-shapes`: 9 frames at 8 fps (the first is dropped with the first latent frame), 64x64.
CLIP_FORMAT_V1 = ClipFormat(
    "v1", 9, 8, 64, SPEEDS, tuple(DIRECTIONS), supersample=1, motion_sweep=(2.0, 5.0, 10.0, 15.0, 22.0)
)
# The next model's: 17 frames (2 s; 4 latent frames after the first), bouncing as well, at speeds that keep every
# path of 17 frames in view (a quick one at most 1.75 x 1.25 x 16 = 35 px of the 36.4 px its centre can travel).
CLIP_FORMAT_V2 = ClipFormat(
    "v2",
    17,
    8,
    64,
    {"slowly": 1.0, "quickly": 1.75},
    DIRECTION_CLASSES,
    supersample=8,
    motion_sweep=(3.0, 6.0, 9.0, 12.0, 15.0),
)
# v2 inside a wall at the frame's edge, at speeds that keep every 17-frame path inside it (a quick one at most
# 1.5 x 1.25 x 16 = 30 px of the 30.4 px its centre can travel).
CLIP_FORMAT_V3 = replace(CLIP_FORMAT_V2, name="v3", speeds={"slowly": 0.85, "quickly": 1.5}, wall=WALL_WIDTH)
# v2 with every bouncing shape heading left first.
CLIP_FORMAT_V4 = replace(CLIP_FORMAT_V2, name="v4", bounce_heading="left")
# v4 with every bounce between 5 frames from either end (0.6 to 1.4 s) instead of 3.
CLIP_FORMAT_V5 = replace(CLIP_FORMAT_V4, name="v5", bounce_margin=5)
CLIP_FORMATS = {
    clip_format.name: clip_format
    for clip_format in (CLIP_FORMAT_V1, CLIP_FORMAT_V2, CLIP_FORMAT_V3, CLIP_FORMAT_V4, CLIP_FORMAT_V5)
}
# The shipped `tiny-shapes`' clips (trained on v1 clips first, then on v2's and v4's, then on these).
TINY_SHAPES_CLIP_FORMAT = CLIP_FORMAT_V5


@dataclass(frozen=True)
class ShapeSpec:
    """What a clip shows; its caption is the text a user would type."""

    colour: str
    shape: str
    direction: str  # one of `DIRECTION_CLASSES`
    speed: str

    @property
    def caption(self) -> str:
        return f"{self.caption_without_speed}, {self.speed}"

    @property
    def caption_without_speed(self) -> str:
        """The caption a user who does not care about the speed types ("a red circle moving left")."""
        if self.direction == BOUNCING:
            return f"a {self.colour} {self.shape} bouncing left and right"
        return f"a {self.colour} {self.shape} moving {self.direction}"

    @classmethod
    def all(cls, directions: Sequence[str] = tuple(DIRECTIONS)) -> list["ShapeSpec"]:
        """Every colour x shape x direction x speed, directions among `directions` (a format's `directions`)."""
        return [cls(*values) for values in itertools.product(SHAPE_COLOURS, SHAPES, directions, SPEEDS)]

    @property
    def is_held_out(self) -> bool:
        """7 of the 48 colour x shape x direction combinations and 3 of the 12 colour x shape combinations that
        bounce, never trained on. Every pair of attributes of a held-out combination (red + circle, red + left,
        circle + left) is still seen in training, so only the triple is new."""
        indices = (
            list(SHAPE_COLOURS).index(self.colour),
            SHAPES.index(self.shape),
            DIRECTION_CLASSES.index(self.direction),
        )
        return sum(indices) % 6 == 0


def repeat_bouncing(specs: Sequence[ShapeSpec], repeats: int) -> list[ShapeSpec]:
    """`specs` with each bouncing spec `repeats` times in all (the extra ones after them): more clips of the motion
    that is hardest to learn."""
    return [*specs, *[spec for spec in specs if spec.direction == BOUNCING] * (repeats - 1)]


def split_specs(directions: Sequence[str] = tuple(DIRECTIONS)) -> tuple[list[ShapeSpec], list[ShapeSpec]]:
    """(training specs, held-out specs), each in `ShapeSpec.all(directions)` order."""
    specs = ShapeSpec.all(directions)
    return [s for s in specs if not s.is_held_out], [s for s in specs if s.is_held_out]


def _check(
    spec: ShapeSpec, size: int, num_frames: int, background: str, speed_jitter: float, clip_format: ClipFormat
) -> None:
    choices = {
        "colour": SHAPE_COLOURS,
        "shape": SHAPES,
        "direction": clip_format.directions,
        "speed": clip_format.speeds,
    }
    for name, allowed in choices.items():
        if getattr(spec, name) not in allowed:
            raise ValueError(f"`{name}` must be one of {list(allowed)}, got {getattr(spec, name)!r}.")
    if background not in BACKGROUNDS:
        raise ValueError(f"`background` must be one of {list(BACKGROUNDS)}, got {background!r}.")
    if size < 32 or size % 16:
        raise ValueError(f"`size` must be a multiple of 16 and at least 32, got {size}.")
    if num_frames < 2:
        raise ValueError(f"`num_frames` must be >= 2 (motion needs two frames), got {num_frames}.")
    bounce_margin = clip_format.bounce_margin
    if spec.direction == BOUNCING and num_frames < 2 * bounce_margin + 2:
        raise ValueError(
            f"`num_frames` must be >= {2 * bounce_margin + 2} for a bouncing shape ({bounce_margin} frames on "
            f"either side of its bounce), got {num_frames}."
        )
    if not 0.0 <= speed_jitter < clip_format.max_speed_jitter:
        raise ValueError(
            f"`speed_jitter` must be in [0, {clip_format.max_speed_jitter:.3g}) (slow and quick ranges must not "
            f"meet), got {speed_jitter}."
        )
    step = clip_format.speeds[spec.speed] * size / 64 * (1.0 + speed_jitter)  # the largest the jitter allows
    room = size - 2 * (size * SHAPE_RADIUS + clip_format.margin)  # the span the shape's centre can cross
    if step * (num_frames - 1) > room:
        raise ValueError(
            f"`num_frames` must be at most {int(room / step) + 1} for a shape moving {spec.speed} in "
            f"{size} px frames of clip format {clip_format.name!r} (speed jitter {speed_jitter}): longer paths "
            f"leave the frame, got {num_frames}."
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


def _draw(canvas: Image.Image, shape: str, centre: tuple[float, float], radius: float, fill: int):
    x, y = centre
    draw = ImageDraw.Draw(canvas)
    if shape == "circle":
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
    elif shape == "square":
        side = radius * 0.9
        draw.rectangle((x - side, y - side, x + side, y + side), fill=fill)
    else:
        draw.polygon([(x, y - radius), (x - radius, y + radius * 0.8), (x + radius, y + radius * 0.8)], fill=fill)


def _shape_alpha(shape: str, centre: tuple[float, float], radius: float, size: int, supersample: int) -> np.ndarray:
    """`[size, size, 1]` share of each pixel the shape covers, drawn `supersample` times finer and averaged down."""
    fine = size * supersample
    mask = Image.new("L", (fine, fine), 0)
    _draw(mask, shape, (centre[0] * supersample, centre[1] * supersample), radius * supersample, 255)
    if supersample > 1:
        mask = mask.resize((size, size), Image.Resampling.BOX)
    return np.asarray(mask, dtype=np.float32)[..., None] / 255.0


def _path(
    spec: ShapeSpec, rng: np.random.Generator, size: int, num_frames: int, speed_jitter: float, clip_format: ClipFormat
) -> tuple[np.ndarray, tuple[float, ...]]:
    """The shape's centre per frame `[num_frames, 2]` (x, y) and the moments it bounces (frames, sub-frame)."""
    radius = size * SHAPE_RADIUS
    step = clip_format.speeds[spec.speed] * size / 64 * (1.0 + speed_jitter * (2.0 * rng.random() - 1.0))
    low, high = radius + clip_format.margin, size - radius - clip_format.margin
    if spec.direction == BOUNCING:
        bounce = rng.uniform(clip_format.bounce_margin, num_frames - 1 - clip_format.bounce_margin)
        from_wall = step * np.abs(np.arange(num_frames) - bounce)
        heading = clip_format.bounce_heading or ("right" if rng.random() < 0.5 else "left")
        along = high - from_wall if heading == "right" else low + from_wall
        return np.stack([along, np.full(num_frames, rng.uniform(low, high))], axis=1), (float(bounce),)
    dx, dy = DIRECTIONS[spec.direction]
    # Along the motion axis start far enough back that the whole path is visible; across it, anywhere.
    start_along = rng.uniform(low, high - step * (num_frames - 1))
    across = rng.uniform(low, high)
    if (dx, dy) in ((-1, 0), (0, -1)):
        start_along = size - start_along
    start = (start_along, across) if dx else (across, start_along)
    return np.array([(start[0] + dx * step * index, start[1] + dy * step * index) for index in range(num_frames)]), ()


@dataclass(frozen=True)
class RenderedClip:
    frames: np.ndarray  # [T, size, size, 3] uint8
    centres: np.ndarray  # [T, 2] the shape's centre per frame (x, y pixels)
    bounces: tuple[float, ...]  # the moments the shape reverses, in frames from the first (sub-frame)


def render_shape(
    spec: ShapeSpec,
    seed: int = 0,
    size: int | None = None,
    num_frames: int | None = None,
    background: str = "plain",
    speed_jitter: float = 0.0,
    clip_format: ClipFormat = CLIP_FORMAT_V1,
) -> RenderedClip:
    """A clip and the path that made it: the shape moves the same step every frame along `spec.direction`, or
    bounces off the frame's left or right edge once (at a moment drawn between the format's `bounce_margin` frames
    from either end), always whole in view: a clip whose path could leave the frame is refused. `size` and
    `num_frames` default to the format's. `speed_jitter` scales the speed by a random factor in `1 +- jitter`, so
    that motion is a continuum a motion score can describe, not two values."""
    size = clip_format.size if size is None else size
    num_frames = clip_format.num_frames if num_frames is None else num_frames
    _check(spec, size, num_frames, background, speed_jitter, clip_format)
    rng = np.random.default_rng(seed)
    centres, bounces = _path(spec, rng, size, num_frames, speed_jitter, clip_format)
    base = _background(size, background, rng).astype(np.float32)
    if clip_format.wall:
        inside = slice(clip_format.wall, size - clip_format.wall)
        walled = np.broadcast_to(np.asarray(WALL_COLOUR, dtype=np.float32), base.shape).copy()
        walled[inside, inside] = base[inside, inside]
        base = walled
    rgb = np.asarray(SHAPE_COLOURS[spec.colour], dtype=np.float32)
    frames = []
    for centre in centres:
        alpha = _shape_alpha(spec.shape, tuple(centre), size * SHAPE_RADIUS, size, clip_format.supersample)
        frames.append(np.round(base + (rgb - base) * alpha).astype(np.uint8))
    return RenderedClip(np.stack(frames), centres, bounces)


def render_shape_clip(spec: ShapeSpec, *args, **kwargs) -> np.ndarray:
    """Frames `[num_frames, size, size, 3]` uint8 of `render_shape` (the same arguments)."""
    return render_shape(spec, *args, **kwargs).frames


def write_shape_dataset(
    folder: str | Path,
    specs: Sequence[ShapeSpec],
    clips_per_spec: int,
    seed: int = 0,
    size: int | None = None,
    num_frames: int | None = None,
    fps: int | None = None,
    speed_jitter: float = 0.25,
    speedless_captions: float = 0.25,
    clip_format: ClipFormat = CLIP_FORMAT_V1,
) -> Path:
    """Writes `clips_per_spec` clips of every spec as lossless mp4 (RGB H.264, no chroma subsampling, so colours stay
    exact) and a `metadata.jsonl` manifest of `path` and `caption`, the layout `read_manifest` reads; returns the
    manifest. Rows of bouncing clips also hold `bounce_frames`, the true moments of their bounces (frames from the
    clip's first, sub-frame), for readers to be checked against. Motion scores are left to the training preparation,
    which measures them on the frames. Backgrounds alternate between plain and gradient; every clip has its own seed.
    A share `speedless_captions` of the clips (drawn per clip) is captioned without its speed word, so that a model
    also answers prompts that leave it out. `size`, `num_frames` and `fps` default to the format's."""
    size = clip_format.size if size is None else size
    num_frames = clip_format.num_frames if num_frames is None else num_frames
    fps = clip_format.fps if fps is None else fps
    if not specs:
        raise ValueError("`specs` must hold at least one `ShapeSpec`.")
    if clips_per_spec < 1:
        raise ValueError(f"`clips_per_spec` must be >= 1, got {clips_per_spec}.")
    if fps <= 0:
        raise ValueError(f"`fps` must be > 0, got {fps}.")
    if not 0.0 <= speedless_captions <= 1.0:
        raise ValueError(f"`speedless_captions` must be in [0, 1], got {speedless_captions}.")
    for spec in specs:  # every setting is checked before anything is written
        _check(spec, size, num_frames, BACKGROUNDS[0], speed_jitter, clip_format)
    folder = Path(folder)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    jobs = [(spec, copy) for spec in specs for copy in range(clips_per_spec)]
    for index, (spec, copy) in enumerate(tqdm(jobs, desc="Rendering clips", unit="clip")):
        clip_seed = seed * 1_000_003 + index
        clip = render_shape(spec, clip_seed, size, num_frames, BACKGROUNDS[copy % 2], speed_jitter, clip_format)
        name = f"clips/{index:05d}.mp4"
        with atomic_output_file(folder / name) as temporary:
            imageio.mimwrite(
                temporary,
                list(clip.frames),
                fps=fps,
                format="FFMPEG",
                codec="libx264rgb",
                pixelformat="rgb24",
                output_params=["-crf", "0"],
            )
        speedless = np.random.default_rng([clip_seed, 1]).random() < speedless_captions
        rows.append({"path": name, "caption": spec.caption_without_speed if speedless else spec.caption})
        if clip.bounces:
            rows[-1]["bounce_frames"] = list(clip.bounces)
    manifest = folder / MANIFEST_NAME
    with atomic_output_file(manifest) as temporary:
        temporary.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest
