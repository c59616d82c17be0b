"""Measuring a text-to-video model trained on the shape clips: does it draw the colour, shape and direction the prompt
asks for, does the shape move smoothly (and bounce inside the clip when asked to), does its motion follow the motion
score, and what does multi-scale sampling cost and save.

Every number is read off generated frames (`read_clip_attributes`, `read_track`, `flow_motion_score`), never from the
model's inputs, so a model that ignores its prompt scores at chance.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..training.motion import flow_motion_score
from .builtin_models import TINY_SHAPES_ID, TINY_SHAPES_PRESETS
from .shape_attributes import read_bounce, read_clip_attributes, read_track, track_smoothness
from .synthetic_shapes import BOUNCE_MARGIN, BOUNCING, DIRECTIONS, SHAPE_COLOURS, SHAPES, ShapeSpec


ATTRIBUTES = ("colour", "shape", "direction")
CHANCE = {"colour": 1 / len(SHAPE_COLOURS), "shape": 1 / len(SHAPES), "direction": 1 / len(DIRECTIONS)}
# The finest patchification throughout, and the coarse-to-fine schedule the shape benchmarks compare it with.
SINGLE_SCALE = TINY_SHAPES_PRESETS[TINY_SHAPES_ID]["patch_size"]
MULTI_SCALE = TINY_SHAPES_PRESETS[f"{TINY_SHAPES_ID}-MultiScale"]["patch_size"]


@dataclass(frozen=True)
class AdherenceResult:
    accuracy: dict[str, float]  # attribute -> share of clips where the attribute read back matches the prompt
    clips: int
    seconds: float  # sampling time of all clips, decoding included
    transformer_seconds: float  # of which in the transformer's forward passes
    smoothness: float  # mean over clips of `track_smoothness` in the prompted direction
    bounce_inside: float | None  # share of bouncing clips whose read bounce lies inside the clip (None: no such clip)
    # share of bouncing clips whose shape first heads for the nearer edge (`heads_for_nearer_edge`; None: no such clip)
    toward_nearer_edge: float | None
    # share of clips moving left or right whose shape heads for the farther edge, as a whole path in view must
    # (None: no such clip): a model that places a path by where it is in the frame does so
    one_way_toward_farther_edge: float | None
    # "straight" (one way) and "bouncing" clips apart, when both are measured: attribute -> share, and "smoothness"
    by_motion: dict[str, dict[str, float]] | None = None


class TransformerTimer:
    """Time spent in a module's forward passes while the context is open (forward hooks), the part of sampling that
    coarse-to-fine patchification shortens."""

    def __init__(self, module: torch.nn.Module):
        self.module, self.seconds, self._start = module, 0.0, 0.0

    def _before(self, *_) -> None:
        self._start = time.perf_counter()

    def _after(self, *_) -> None:
        self.seconds += time.perf_counter() - self._start

    def __enter__(self) -> "TransformerTimer":
        self._handles = [
            self.module.register_forward_pre_hook(self._before),
            self.module.register_forward_hook(self._after),
        ]
        return self

    def __exit__(self, *_) -> None:
        for handle in self._handles:
            handle.remove()


def generate_clips(
    pipe,
    specs: Sequence[ShapeSpec],
    seeds: Sequence[int],
    batch_size: int = 8,
    without_speed: bool = False,
    output_type: str = "np",
    **call_kwargs,
) -> list:
    """One clip per (spec, seed) pair, generated in batches; the seed makes the noise. A clip is `[T, H, W, 3]` in
    [0, 1], or its latents `[C, F, h, w]` with `output_type="latent"`. `without_speed` prompts with the captions a
    user who leaves the speed out types ("a red circle moving left")."""
    if len(specs) != len(seeds):
        raise ValueError(f"`specs` and `seeds` must have the same length, got {len(specs)} and {len(seeds)}.")
    clips = []
    for start in range(0, len(specs), batch_size):
        chunk = range(start, min(start + batch_size, len(specs)))
        output = pipe(
            [specs[i].caption_without_speed if without_speed else specs[i].caption for i in chunk],
            generator=[torch.Generator().manual_seed(int(seeds[i])) for i in chunk],
            output_type=output_type,
            **call_kwargs,
        )
        clips += list(output.frames)
    return clips


def bounce_inside(track: np.ndarray) -> bool:
    """Whether the track reverses (`read_bounce`) at a moment inside the clip."""
    moment = read_bounce(track)
    return moment is not None and 0.0 <= moment <= len(track) - 1


def heads_for_nearer_edge(track: np.ndarray, width: int, frames: int = BOUNCE_MARGIN) -> bool:
    """Whether the shape's first `frames` steps (along x) go towards the nearer of the frame's left and right edges,
    as a bounce that turns inside the clip must (the data's do, but for the few that start mid-frame): a model that
    sees where the shape is relative to the frame's edges starts a bounce that way, one that does not at chance."""
    start, later = track[0, 0], track[frames, 0]
    return bool(np.sign(later - start) == np.sign(start - (width - 1) / 2))


def measure_adherence(
    pipe,
    specs: Sequence[ShapeSpec],
    seeds: Sequence[int],
    without_speed: bool = False,
    bouncing: bool = False,
    **call_kwargs,
) -> AdherenceResult:
    """Share of clips whose colour, shape and direction, read from the frames, are the prompt's, and how smoothly
    their shapes move. `bouncing`: the model knows bouncing, so a track that reverses reads as `BOUNCING` (required
    when `specs` hold bouncing ones)."""
    if not bouncing and any(spec.direction == BOUNCING for spec in specs):
        raise ValueError("`bouncing` must be True when `specs` hold bouncing ones.")
    pipe.set_progress_bar_config(disable=True)
    start = time.perf_counter()
    with TransformerTimer(pipe.transformer) as timer:
        clips = generate_clips(pipe, specs, seeds, without_speed=without_speed, **call_kwargs)
    return score_clips(specs, clips, bouncing, time.perf_counter() - start, timer.seconds)


def score_clips(
    specs: Sequence[ShapeSpec],
    clips: Sequence[np.ndarray],
    bouncing: bool = False,
    seconds: float = 0.0,
    transformer_seconds: float = 0.0,
) -> AdherenceResult:
    """`measure_adherence`'s scores of clips `[T, H, W, 3]` in [0, 1] made for `specs` (by a model, or by the shape
    generator as the reference a model is measured against), with the seconds they took."""
    scores, inside, toward, farther = [], [], [], []  # per clip: each attribute read right (0 or 1), smoothness
    for spec, clip in zip(specs, clips, strict=True):
        found = read_clip_attributes(clip, bouncing=bouncing)
        track = read_track(clip)
        scores.append({name: float(getattr(found, name) == getattr(spec, name)) for name in ATTRIBUTES})
        scores[-1]["smoothness"] = track_smoothness(track, spec.direction)
        if spec.direction == BOUNCING:
            inside.append(bounce_inside(track))
            toward.append(heads_for_nearer_edge(track, clip.shape[2]))
        elif spec.direction in ("left", "right"):
            farther.append(not heads_for_nearer_edge(track, clip.shape[2]))
    overall = _means(scores)
    motions = {"straight": [s for s, spec in zip(scores, specs, strict=True) if spec.direction != BOUNCING]}
    motions["bouncing"] = [s for s, spec in zip(scores, specs, strict=True) if spec.direction == BOUNCING]
    return AdherenceResult(
        {name: overall[name] for name in ATTRIBUTES},
        len(specs),
        seconds,
        transformer_seconds,
        overall["smoothness"],
        float(np.mean(inside)) if inside else None,
        float(np.mean(toward)) if toward else None,
        float(np.mean(farther)) if farther else None,
        {motion: _means(part) for motion, part in motions.items()} if all(motions.values()) else None,
    )


def _means(scores: list[dict[str, float]]) -> dict[str, float]:
    return {name: float(np.mean([score[name] for score in scores])) for name in scores[0]}


def clip_motion(clip: np.ndarray, fps: float) -> float:
    """Motion of a generated clip on the training data's scale (`flow_motion_score` of consecutive frames)."""
    frames = (np.clip(clip, 0, 1) * 255).round().astype(np.uint8)
    return flow_motion_score(list(frames), 1.0 / fps)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""

    def ranks(values: Sequence[float]) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        order = values.argsort(kind="stable")
        result = np.empty(len(values))
        result[order] = np.arange(len(values))
        for value in np.unique(values):  # ties share their mean rank
            tied = values == value
            result[tied] = result[tied].mean()
        return result

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def motion_sweep(
    pipe,
    specs: Sequence[ShapeSpec],
    seeds: Sequence[int],
    sweep_name: str,
    values: Sequence[float],
    fps: float,
    **call_kwargs,
) -> dict[float, list[float]]:
    """Measured motion of the clips of (spec, seed) pairs at each value of the call argument `sweep_name`
    (`motion_score` or `negative_motion_score`); same noise at every value."""
    pipe.set_progress_bar_config(disable=True)
    measured = {}
    for value in tqdm(values, desc=f"Sweeping {sweep_name}", unit="value"):
        clips = generate_clips(pipe, specs, seeds, **{**call_kwargs, sweep_name: float(value)})
        measured[float(value)] = [clip_motion(clip, fps) for clip in clips]
    return measured


def sweep_correlation(measured: dict[float, list[float]]) -> float:
    """Spearman correlation between the swept value and the measured motion, over all clips."""
    xs = [value for value, motions in measured.items() for _ in motions]
    ys = [motion for motions in measured.values() for motion in motions]
    return spearman(xs, ys)


def frame_strip(clips: Sequence[np.ndarray], captions: Sequence[str], every: int = 1):
    """A PIL image: one row of frames per clip, its caption above it."""
    from PIL import Image, ImageDraw

    rows = [np.concatenate(list((np.clip(clip[::every], 0, 1) * 255).astype(np.uint8)), axis=1) for clip in clips]
    height, width = rows[0].shape[:2]
    label = 14
    strip = Image.new("RGB", (width, len(rows) * (height + label)), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for index, (row, caption) in enumerate(zip(rows, captions, strict=True)):
        top = index * (height + label)
        draw.text((2, top + 1), caption, fill=(0, 0, 0))
        strip.paste(Image.fromarray(row), (0, top + label))
    return strip


def animated_preview(clips: Sequence[np.ndarray], path, fps: float, scale: int = 2) -> None:
    """An animated GIF of `clips` (`[T, H, W, 3]` in [0, 1], one length) side by side, each pixel `scale` x `scale`,
    looping at `fps`: how the motion looks, which a strip of frames cannot show."""
    from PIL import Image

    if len({len(clip) for clip in clips}) != 1:
        raise ValueError(f"`clips` must have one length, got {sorted({len(clip) for clip in clips})}.")
    rows = np.concatenate([(np.clip(clip, 0, 1) * 255).round().astype(np.uint8) for clip in clips], axis=2)
    frames = [Image.fromarray(frame.repeat(scale, axis=0).repeat(scale, axis=1)) for frame in rows]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0)
