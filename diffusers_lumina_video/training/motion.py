"""Motion scores for clips whose manifest gives none, on the reference's scale, with OpenCV's Farneback flow.

The reference scores a clip with UniMatch (a learned flow network): frames at 0, 0.5, ..., 4 s, each stretched to
576x320 (portrait clips transposed first), flow between consecutive frames, and the score is the mean *absolute flow
component*, `mean(|u|, |v|)` over all pixels and pairs, in pixels. This module keeps that protocol and units and
swaps UniMatch for Farneback (`cv2.calcOpticalFlowFarneback`), which needs no network weights.

How the two compare: on textured content Farneback recovers displacements to within 1% up to about 50 px between
the sampled frames (a horizontal pan of 50 px per 0.5 s scores 25, as it should), so ordinary motion lands on the
reference's scale. Beyond that it under-reports (a 100 px pan scores about 15 instead of 50), and in flat, textureless
regions it sees less motion than UniMatch does. Fast clips therefore get lower scores than the reference would give
them; pass scores in the manifest where this matters.

One departure: frames smaller than 576x320 are not upscaled. Farneback fits polynomials to texture at its window
scale, which an upscaled frame no longer has (a 96 px clip stretched 6x reads as almost still), so such frames are
measured at their own scale, in the 576:320 shape, and the flow is scaled up to 576x320 pixels.
"""

from collections.abc import Sequence

import numpy as np


# The reference's sampling: frames every 0.5 s up to 4 s, flow computed at 576x320 (width x height).
MOTION_INTERVAL = 0.5
MOTION_TIMES = tuple(i * MOTION_INTERVAL for i in range(9))
MOTION_SIZE = (576, 320)
# Farneback settings that track large displacements (more iterations and a wider polynomial than OpenCV's example).
_FARNEBACK = {
    "pyr_scale": 0.5,
    "levels": 5,
    "winsize": 15,
    "iterations": 10,
    "poly_n": 7,
    "poly_sigma": 1.5,
    "flags": 0,
}


def _gray_for_flow(frame: np.ndarray) -> np.ndarray:
    """The frame in grey, stretched to the 576:320 shape at 576x320 or, when smaller, at its own scale."""
    import cv2

    if frame.shape[0] > frame.shape[1]:  # portrait: transposed to landscape, as the reference does
        frame = frame.transpose(1, 0, 2)
    gray = cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2GRAY)
    scale = min(1.0, gray.shape[1] / MOTION_SIZE[0], gray.shape[0] / MOTION_SIZE[1])
    size = (max(8, round(MOTION_SIZE[0] * scale)), max(8, round(MOTION_SIZE[1] * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def flow_motion_score(frames: Sequence[np.ndarray], seconds_between: float = MOTION_INTERVAL) -> float:
    """Mean absolute Farneback flow component between consecutive `[H, W, 3]` uint8 frames, in pixels at 576x320,
    rescaled to frames 0.5 s apart when `seconds_between` differs (assuming steady motion)."""
    try:
        import cv2
    except ImportError as error:
        raise ImportError(
            "Computing motion scores needs OpenCV: `pip install opencv-python-headless` (or the `train` extra), or "
            "give every video a motion score in the manifest."
        ) from error
    if len(frames) < 2:
        raise ValueError(f"A motion score needs at least 2 frames, got {len(frames)}.")
    if seconds_between <= 0:
        raise ValueError(f"`seconds_between` must be > 0, got {seconds_between}.")
    grays = [_gray_for_flow(frame) for frame in frames]
    # Flow measured below 576x320 is scaled up to it, per axis.
    to_motion_size = np.array([MOTION_SIZE[0] / grays[0].shape[1], MOTION_SIZE[1] / grays[0].shape[0]])
    flows = [
        cv2.calcOpticalFlowFarneback(a, b, None, **_FARNEBACK) for a, b in zip(grays[:-1], grays[1:], strict=True)
    ]
    score = np.mean([np.abs(flow * to_motion_size).mean() for flow in flows])
    return float(score) * MOTION_INTERVAL / seconds_between
