"""Reading a shape clip's colour, shape and motion back from its frames, with image statistics only.

The foreground is what differs from the background fitted to the frame's border (inside the wall, for clips that
have one: `wall_width`); its mean colour names the colour,
and the path of its centroid names the direction. The shape is named from moments of the shape's coverage (how much
of each pixel the named colour covers over the background), which survive the blur of a VAE or a generator: a blur
adds to the second cumulants of the coverage but leaves its third and fourth ones unchanged. Triangles (apex up) are
the only shapes skewed along y; a square's fourth cumulant along the diagonals is half the one along its axes, a
circle's is the same in every direction. Good enough to score prompt following of generated clips, and checked on
the generator's own clips, sharp and blurred.

How the shape moves is read off its track, the centroid of its coverage in every frame (sub-pixel, since the coverage
is linear in the frame): whether each step goes the prompted way (`track_smoothness`), and when a track that goes
left and right reverses (`read_bounce`: where lines fitted to either side of the reversal meet).
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

from .synthetic_shapes import BOUNCING, DIRECTION_CLASSES, DIRECTIONS, SHAPE_COLOURS, WALL_COLOUR, WALL_WIDTH


# Vertical skewness of the coverage below which a shape is a triangle: a quarter of an ideal triangle's (-0.59);
# circles and squares have none, and blur shrinks a triangle's only slowly (-0.49 at sigma 1.5 px).
_TRIANGLE_SKEW_BELOW = -0.15
# Diagonal over axial fourth cumulant below which a shape is a square (ideal square 0.5, circle 1.03, triangle 1.04).
_SQUARE_RATIO_BELOW = 0.77
# Least travel (pixels) of a clip, or of each side of a reversal, that counts as motion.
_MIN_TRAVEL = 1.0
# Least frames on each side of a reversal: a line through two points fits anything.
_MIN_SEGMENT = 3
# Mean step (pixels per frame) below which a clip has no motion to be smooth.
_MIN_MEAN_STEP = 0.1
# How far (per channel, mean over the frame's outermost ring) its colour may be from `WALL_COLOUR` for the clip to
# have a wall: a generated or reconstructed wall is not exact, and no background comes near.
_WALL_TOLERANCE = 40.0
# Share of the clip's mean step that a step must make in the prompted direction to count as smooth.
SMOOTH_STEP_SHARE = 0.25


@dataclass(frozen=True)
class ClipAttributes:
    colour: str | None
    shape: str | None
    direction: str | None
    displacement: tuple[float, float]  # centroid motion, first to last frame (x, y pixels)


def _background(frame: np.ndarray) -> np.ndarray:
    """The background as a linear ramp `a + b x + c y` per channel fitted to the frame's border (plain and gradient
    backgrounds alike; the shape never touches the border)."""
    height, width = frame.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width]
    border = np.zeros((height, width), dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    design = np.stack([np.ones(border.sum()), xs[border], ys[border]], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, frame[border], rcond=None)
    return np.stack([np.ones_like(xs), xs, ys], axis=-1).astype(np.float32) @ coefficients.astype(np.float32)


def _foreground(frame: np.ndarray, background: np.ndarray, threshold: float = 60.0) -> np.ndarray:
    """Pixels far from the background."""
    return np.abs(frame - background).sum(axis=-1) > threshold


def _window(mask: np.ndarray) -> tuple[slice, slice]:
    """The box around `mask` with a margin of a 16th of the frame (where a blurred shape still covers pixels)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    margin = max(mask.shape) // 16
    return (
        slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
        slice(max(cols[0] - margin, 0), cols[-1] + margin + 1),
    )


def _coverage(frame: np.ndarray, background: np.ndarray, window: tuple[slice, slice], rgb: np.ndarray) -> np.ndarray:
    """How much of each pixel `rgb` covers over the background, in [0, 1], in `window` only (so that noise far away
    does not weigh on the moments). Linear in the frame, so a blurred frame gives the blurred coverage."""
    contrast = rgb - background[window]
    alpha = ((frame[window] - background[window]) * contrast).sum(axis=-1) / np.square(contrast).sum(axis=-1)
    return np.clip(alpha, 0.0, 1.0)


def _shape_of(coverage: np.ndarray) -> str | None:
    """Triangle if the coverage is skewed along y, else square or circle by how its fourth cumulant depends on the
    direction. An isotropic blur leaves the third and fourth cumulants unchanged; it only grows the variance that
    scales the skewness, which therefore fades slowly."""
    total = coverage.sum()
    if total < 9.0:
        return None
    ys, xs = np.mgrid[0 : coverage.shape[0], 0 : coverage.shape[1]]
    x = xs - (coverage * xs).sum() / total
    y = ys - (coverage * ys).sum() / total

    def cumulants(u: np.ndarray) -> tuple[float, float, float]:
        second, third, fourth = ((coverage * u**power).sum() / total for power in (2, 3, 4))
        return second, third, fourth - 3.0 * second**2

    variance_y, third_y, fourth_y = cumulants(y)
    if variance_y < 1.0:  # a line, not a shape
        return None
    if third_y / variance_y**1.5 < _TRIANGLE_SKEW_BELOW:
        return "triangle"
    axial = fourth_y + cumulants(x)[2]
    diagonal = cumulants((x + y) / np.sqrt(2.0))[2] + cumulants((x - y) / np.sqrt(2.0))[2]
    return "square" if diagonal / axial < _SQUARE_RATIO_BELOW else "circle"


def wall_width(frames: np.ndarray) -> int:
    """`WALL_WIDTH` if `frames [T, H, W, 3]` (float pixel values) have a wall along their edge (their outermost ring's
    mean colour over the clip is within `_WALL_TOLERANCE` of `WALL_COLOUR`), else 0. Only the outermost ring is looked
    at: blur (a VAE's, a generator's) spreads the wall inwards, so its width cannot be read off the frames."""
    ring = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
    return WALL_WIDTH if np.abs(ring.reshape(-1, 3).mean(axis=0) - WALL_COLOUR).max() <= _WALL_TOLERANCE else 0


def _layers(frames: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], int]:
    """`frames` as float pixel values inside their wall (if they have one), with each frame's fitted background and
    foreground mask, and the pixels cut from each side (the readers' coordinates are the whole frame's)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 2:
        raise ValueError(f"`frames` must be [T >= 2, H, W, 3], got {frames.shape}.")
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
    frames = frames.astype(np.float32)
    wall = wall_width(frames)
    if wall:
        wall += 1  # and the ring next to it, which a blurred wall may tint
        frames = frames[:, wall:-wall, wall:-wall]
    backgrounds = [_background(frame) for frame in frames]
    masks = [_foreground(frame, background) for frame, background in zip(frames, backgrounds, strict=True)]
    return frames, backgrounds, masks, wall


def _colour(frames: np.ndarray, masks: list[np.ndarray]) -> str:
    """The named colour nearest to the foreground's mean (some frame must have a foreground)."""
    mean = np.concatenate([frame[mask] for frame, mask in zip(frames, masks, strict=True)]).mean(axis=0)
    return min(SHAPE_COLOURS, key=lambda name: np.square(mean - SHAPE_COLOURS[name]).sum())


def _track(frames: np.ndarray, backgrounds: list[np.ndarray], masks: list[np.ndarray], colour: str) -> np.ndarray:
    """`[T, 2]` centroid (x, y) of the coverage of `colour` per frame; NaN where a frame has none."""
    rgb = np.asarray(SHAPE_COLOURS[colour], dtype=np.float32)
    pixels = np.mgrid[0 : frames.shape[1], 0 : frames.shape[2]]
    track = np.full((len(frames), 2), np.nan)
    for index, (frame, background, mask) in enumerate(zip(frames, backgrounds, masks, strict=True)):
        if not mask.any():
            continue
        window = _window(mask)
        coverage = _coverage(frame, background, window, rgb)
        if coverage.sum() > 0:
            ys, xs = pixels[(slice(None), *window)]
            track[index] = (coverage * xs).sum() / coverage.sum(), (coverage * ys).sum() / coverage.sum()
    return track


def read_track(frames: np.ndarray) -> np.ndarray:
    """`[T, 2]` centroid (x, y, pixels) of the moving shape in each of `frames [T, H, W, 3]` (uint8, or float in
    [0, 1]), weighted by how much of each pixel the shape covers; NaN rows where a frame shows no shape."""
    frames, backgrounds, masks, wall = _layers(frames)
    if not any(mask.any() for mask in masks):
        return np.full((len(frames), 2), np.nan)
    return _track(frames, backgrounds, masks, _colour(frames, masks)) + wall


def _line(times: np.ndarray, values: np.ndarray) -> tuple[float, float, float]:
    """(slope, intercept, squared error) of the least-squares line through `values` over `times`."""
    design = np.stack([times, np.ones_like(times)], axis=1)
    (slope, intercept), *_ = np.linalg.lstsq(design, values, rcond=None)
    return slope, intercept, float(np.square(design @ (slope, intercept) - values).sum())


def _reversal(track: np.ndarray) -> tuple[float, float] | None:
    """(moment, slope before) of the track's reversal along x: the split of the frames into two runs of at least
    `_MIN_SEGMENT` whose two fitted lines explain x best, if those lines go opposite ways, each for at least
    `_MIN_TRAVEL` pixels, and faster than y does; the moment (sub-frame) is where the two lines meet. None
    otherwise."""
    times = np.flatnonzero(np.isfinite(track).all(axis=1)).astype(np.float64)
    if len(times) < 2 * _MIN_SEGMENT:
        return None
    x, y = track[times.astype(int)].T
    split = min(
        range(_MIN_SEGMENT, len(times) - _MIN_SEGMENT + 1),
        key=lambda k: _line(times[:k], x[:k])[2] + _line(times[k:], x[k:])[2],
    )
    sides = (slice(None, split), slice(split, None))
    (before, start, _), (after, end, _) = (_line(times[side], x[side]) for side in sides)
    if before * after >= 0:
        return None
    for side, slope in zip(sides, (before, after), strict=True):
        moves = abs(slope) * (times[side][-1] - times[side][0]) >= _MIN_TRAVEL
        if not moves or abs(slope) < abs(_line(times[side], y[side])[0]):
            return None
    return float((end - start) / (before - after)), float(before)


def read_bounce(track: np.ndarray) -> float | None:
    """The moment (in frames from the first, sub-frame) at which a track from `read_track` reverses along x, where
    lines fitted to either side of the reversal meet; None if it does not reverse. The moment may lie outside the
    clip when the two sides do not meet inside it."""
    reversal = _reversal(_checked_track(track))
    return None if reversal is None else reversal[0]


def _checked_track(track: np.ndarray) -> np.ndarray:
    track = np.asarray(track, dtype=np.float64)
    if track.ndim != 2 or track.shape[1] != 2 or len(track) < 2:
        raise ValueError(f"`track` must be [T >= 2, 2] (x, y per frame), got {track.shape}.")
    return track


def track_smoothness(track: np.ndarray, direction: str) -> float:
    """Share of the frame-to-frame steps of a track from `read_track` that go `direction` (one of
    `DIRECTION_CLASSES`) by at least `SMOOTH_STEP_SHARE` of the clip's mean step: 1 for a shape moving at a steady
    speed, low for one that stands still and jumps. A bouncing track is split at its reversal (`read_bounce`): the
    steps before it must go the way the first side goes, those after it the other way, and the step across it counts
    for neither; one that does not reverse must go left or right throughout. A frame without a shape fails both its
    steps; a track whose mean step is under a tenth of a pixel scores 0."""
    if direction not in DIRECTION_CLASSES:
        raise ValueError(f"`direction` must be one of {list(DIRECTION_CLASSES)}, got {direction!r}.")
    track = _checked_track(track)
    steps = np.diff(track, axis=0)
    units = np.tile(np.asarray(DIRECTIONS.get(direction, (1, 0)), dtype=np.float64), (len(steps), 1))
    counted = np.ones(len(steps), dtype=bool)
    if direction == BOUNCING:
        reversal = _reversal(track)
        if reversal is None:
            x = track[np.isfinite(track[:, 0]), 0]
            units[:, 0] = -1.0 if len(x) and x[-1] < x[0] else 1.0
        else:
            moment, before = reversal
            first = np.arange(len(steps)) + 1 <= moment  # steps that end by the reversal
            counted = first | (np.arange(len(steps)) >= moment)
            units[:, 0] = np.where(first, np.sign(before), -np.sign(before))
    lengths = np.linalg.norm(steps[counted], axis=1)
    if not np.isfinite(lengths).any() or np.nanmean(lengths) < _MIN_MEAN_STEP:
        return 0.0
    along = (steps[counted] * units[counted]).sum(axis=1)
    return float(np.mean(np.nan_to_num(along, nan=-np.inf) >= SMOOTH_STEP_SHARE * np.nanmean(lengths)))


def read_clip_attributes(frames: np.ndarray, bouncing: bool = False) -> ClipAttributes:
    """Colour, shape and direction of the moving shape in `frames [T, H, W, 3]` (uint8, or float in [0, 1]). The
    direction is the one of `DIRECTIONS` nearest to the first-to-last motion, or, with `bouncing`, `BOUNCING` when the
    track reverses along x (`read_bounce`)."""
    frames, backgrounds, masks, _ = _layers(frames)
    if not any(mask.any() for mask in masks):
        return ClipAttributes(None, None, None, (0.0, 0.0))

    colour = _colour(frames, masks)
    rgb = np.asarray(SHAPE_COLOURS[colour], dtype=np.float32)
    shapes = [
        _shape_of(_coverage(frame, background, _window(mask), rgb))
        for frame, background, mask in zip(frames, backgrounds, masks, strict=True)
        if mask.any()
    ]
    votes = Counter(shape for shape in shapes if shape is not None)
    shape = votes.most_common(1)[0][0] if votes else None  # a tie goes to the shape seen first

    centroids = [np.argwhere(mask).mean(axis=0)[::-1] for mask in masks if mask.any()]  # (x, y)
    displacement = centroids[-1] - centroids[0]
    if bouncing and _reversal(_track(frames, backgrounds, masks, colour)) is not None:
        direction = BOUNCING
    elif np.abs(displacement).max() < _MIN_TRAVEL:
        direction = None
    else:
        unit = displacement / np.linalg.norm(displacement)
        direction = max(DIRECTIONS, key=lambda name: float(np.dot(unit, DIRECTIONS[name])))
    return ClipAttributes(colour, shape, direction, (float(displacement[0]), float(displacement[1])))
