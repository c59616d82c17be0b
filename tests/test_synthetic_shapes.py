import numpy as np
import pytest

from diffusers_lumina_video.evaluation.video_attributes import read_clip_attributes
from diffusers_lumina_video.training.motion import flow_motion_score
from diffusers_lumina_video.training.synthetic_shapes import ShapeSpec, render_shape_clip


@pytest.mark.parametrize("background", ["plain", "gradient"])
def test_every_spec_reads_back_from_its_frames(background):
    wrong = []
    for index, spec in enumerate(ShapeSpec.all()):
        frames = render_shape_clip(spec, seed=index, size=64, num_frames=9, background=background)
        found = read_clip_attributes(frames)
        if (found.colour, found.shape, found.direction) != (spec.colour, spec.shape, spec.direction):
            wrong.append((spec.caption, found))
    assert not wrong, wrong[:5]


def test_clip_shape_caption_and_reproducibility():
    spec = ShapeSpec("blue", "triangle", "up", "quickly")
    frames = render_shape_clip(spec, seed=3, size=96, num_frames=17)
    assert frames.shape == (17, 96, 96, 3) and frames.dtype == np.uint8
    assert spec.caption == "a blue triangle moving up, quickly"
    assert np.array_equal(frames, render_shape_clip(spec, seed=3, size=96, num_frames=17))


def test_quick_clips_score_more_motion_than_slow_ones():
    scores = {
        speed: flow_motion_score(list(render_shape_clip(ShapeSpec("red", "square", "right", speed), seed=1)), 1 / 8)
        for speed in ("slowly", "quickly")
    }
    assert scores["quickly"] > 1.5 * scores["slowly"] > 0


def test_reader_handles_empty_and_still_frames():
    still = np.zeros((5, 32, 32, 3), dtype=np.uint8)
    assert read_clip_attributes(still).colour is None
    with pytest.raises(ValueError, match=r"`frames` must be \[T >= 2, H, W, 3\]"):
        read_clip_attributes(still[:1])


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        (ShapeSpec("pink", "circle", "left", "slowly"), {}, "`colour` must be one of"),
        (ShapeSpec("red", "star", "left", "slowly"), {}, "`shape` must be one of"),
        (ShapeSpec("red", "circle", "sideways", "slowly"), {}, "`direction` must be one of"),
        (ShapeSpec("red", "circle", "left", "fast"), {}, "`speed` must be one of"),
        (ShapeSpec("red", "circle", "left", "slowly"), {"background": "noise"}, "`background` must be one of"),
        (ShapeSpec("red", "circle", "left", "slowly"), {"size": 40}, "`size` must be a multiple of 16"),
        (ShapeSpec("red", "circle", "left", "slowly"), {"num_frames": 1}, "`num_frames` must be >= 2"),
    ],
)
def test_generator_refuses_bad_settings(spec, kwargs, message):
    with pytest.raises(ValueError, match=message):
        render_shape_clip(spec, **kwargs)
