"""Reading a shape clip's colour, shape and direction of motion back from its frames, with image statistics only.

The foreground is what differs from the background fitted to the frame's border; its mean colour names the colour,
and the path of its centroid names the direction. The shape is named from moments of the shape's coverage (how much
of each pixel the named colour covers over the background), which survive the blur of a VAE or a generator: a blur
adds to the second cumulants of the coverage but leaves its third and fourth ones unchanged. Triangles (apex up) are
the only shapes skewed along y; a square's fourth cumulant along the diagonals is half the one along its axes, a
circle's is the same in every direction. Good enough to score prompt following of generated clips, and checked on
the generator's own clips, sharp and blurred.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..training.synthetic_shapes import DIRECTIONS, SHAPE_COLOURS


# Vertical skewness of the coverage below which a shape is a triangle: a quarter of an ideal triangle's (-0.59);
# circles and squares have none, and blur shrinks a triangle's only slowly (-0.49 at sigma 1.5 px).
_TRIANGLE_SKEW_BELOW = -0.15
# Diagonal over axial fourth cumulant below which a shape is a square (ideal square 0.5, circle 1.03, triangle 1.04).
_SQUARE_RATIO_BELOW = 0.77


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


def _coverage(frame: np.ndarray, background: np.ndarray, mask: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """How much of each pixel `rgb` covers over the background, in [0, 1], in a window around `mask` only (so that
    noise far away does not weigh on the moments). Linear in the frame, so a blurred frame gives the blurred
    coverage."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    margin = max(frame.shape[:2]) // 16
    window = (
        slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
        slice(max(cols[0] - margin, 0), cols[-1] + margin + 1),
    )
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


def _foreground_masks(frames: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """The frames as float32, each one's fitted background and its foreground mask."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 2:
        raise ValueError(f"`frames` must be [T >= 2, H, W, 3], got {frames.shape}.")
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
    frames = frames.astype(np.float32)
    backgrounds = [_background(frame) for frame in frames]
    masks = [_foreground(frame, background) for frame, background in zip(frames, backgrounds, strict=True)]
    return frames, backgrounds, masks


def _centroid(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(axis=0)[::-1]  # (x, y)


def shape_track(frames: np.ndarray) -> np.ndarray:
    """The moving shape's centroid `(x, y)` in each frame of `frames [T, H, W, 3]`: `[T, 2]`, NaN in a frame where
    nothing stands out from the background."""
    _, _, masks = _foreground_masks(frames)
    return np.stack([_centroid(mask) if mask.any() else np.full(2, np.nan) for mask in masks])


def read_clip_attributes(frames: np.ndarray) -> ClipAttributes:
    """Colour, shape and direction of the moving shape in `frames [T, H, W, 3]` (uint8, or float in [0, 1])."""
    frames, backgrounds, masks = _foreground_masks(frames)
    if not any(mask.any() for mask in masks):
        return ClipAttributes(None, None, None, (0.0, 0.0))

    mean = np.concatenate([frame[mask] for frame, mask in zip(frames, masks, strict=True)]).mean(axis=0)
    colour = min(SHAPE_COLOURS, key=lambda name: np.square(mean - SHAPE_COLOURS[name]).sum())
    rgb = np.asarray(SHAPE_COLOURS[colour], dtype=np.float32)
    shapes = [
        _shape_of(_coverage(frame, background, mask, rgb))
        for frame, background, mask in zip(frames, backgrounds, masks, strict=True)
        if mask.any()
    ]
    votes = Counter(shape for shape in shapes if shape is not None)
    shape = votes.most_common(1)[0][0] if votes else None  # a tie goes to the shape seen first

    centroids = [_centroid(mask) for mask in masks if mask.any()]
    displacement = centroids[-1] - centroids[0]
    if np.abs(displacement).max() < 1.0:
        direction = None
    else:
        unit = displacement / np.linalg.norm(displacement)
        direction = max(DIRECTIONS, key=lambda name: float(np.dot(unit, DIRECTIONS[name])))
    return ClipAttributes(colour, shape, direction, (float(displacement[0]), float(displacement[1])))
