import numpy as np
import pytest

from diffusers_lumina_video.evaluation.video_attributes import read_clip_attributes, shape_track
from diffusers_lumina_video.training.data import read_manifest, read_video_clip
from diffusers_lumina_video.training.motion import flow_motion_score
from diffusers_lumina_video.training.synthetic_shapes import (
    SPEEDS,
    ShapeSpec,
    render_shape_clip,
    split_specs,
    write_shape_dataset,
)


@pytest.mark.parametrize("background", ["plain", "gradient"])
def test_every_spec_reads_back_from_its_frames(background):
    wrong = []
    for index, spec in enumerate(ShapeSpec.all()):
        frames = render_shape_clip(spec, seed=index, size=64, num_frames=9, background=background)
        found = read_clip_attributes(frames)
        if (found.colour, found.shape, found.direction) != (spec.colour, spec.shape, spec.direction):
            wrong.append((spec.caption, found))
    assert not wrong, wrong[:5]


@pytest.mark.parametrize(("direction", "step"), [("right", (1.5, 0.0)), ("up", (0.0, -1.5))])
def test_shape_track_follows_the_centre_frame_by_frame(direction, step):
    frames = render_shape_clip(ShapeSpec("red", "circle", direction, "slowly"), seed=1, size=64, num_frames=8)
    track = shape_track(frames)
    assert track.shape == (8, 2)
    np.testing.assert_allclose(np.diff(track, axis=0), np.tile(step, (7, 1)), atol=0.25)
    frames[3] = frames[0, :1, :1]  # a frame of background only: no centroid
    assert np.isnan(shape_track(frames)[3]).all() and np.isfinite(shape_track(frames)[[2, 4]]).all()


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


def _gaussian_blur(frames: np.ndarray, sigma: float) -> np.ndarray:
    """Frames `[T, H, W, 3]` in [0, 1] blurred by a Gaussian of `sigma` pixels, edges replicated."""
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    for axis in (1, 2):
        padded = np.pad(frames, [(radius, radius) if a == axis else (0, 0) for a in range(4)], mode="edge")
        size = frames.shape[axis]
        frames = sum(w * padded.take(range(i, i + size), axis=axis) for i, w in enumerate(kernel))
    return frames


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0])
def test_reader_names_the_shape_of_blurred_clips(sigma):
    specs = ShapeSpec.all()[::4]  # every colour and shape, moving left or up
    backgrounds = ("plain", "gradient")
    right = 0
    for index, spec in enumerate(specs):
        frames = render_shape_clip(spec, seed=index, size=64, num_frames=9, background=backgrounds[index % 2])
        right += read_clip_attributes(_gaussian_blur(frames / 255.0, sigma)).shape == spec.shape
    assert right >= 0.9 * len(specs), f"{right} of {len(specs)} shapes read right"


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


def test_held_out_combinations_are_new_only_as_triples():
    train, held_out = split_specs()
    assert len(held_out) == 14 and len(train) + len(held_out) == len(ShapeSpec.all())
    seen = {(s.colour, s.shape, s.direction) for s in train}
    for spec in held_out:
        assert (spec.colour, spec.shape, spec.direction) not in seen
        # every pair of its attributes is trained on
        assert any(s.colour == spec.colour and s.shape == spec.shape for s in train)
        assert any(s.colour == spec.colour and s.direction == spec.direction for s in train)
        assert any(s.shape == spec.shape and s.direction == spec.direction for s in train)


def test_speed_jitter_varies_speed_within_its_range():
    spec = ShapeSpec("green", "circle", "right", "slowly")
    paths = [
        read_clip_attributes(render_shape_clip(spec, seed, 64, 9, speed_jitter=0.25)).displacement[0]
        for seed in range(6)
    ]
    travel = SPEEDS["slowly"] * 8  # pixels per frame at 64 px, over 8 frame steps
    assert len({round(p) for p in paths}) > 1
    assert all(0.75 * travel - 1 <= p <= 1.25 * travel + 1 for p in paths), paths


def test_dataset_is_written_as_a_manifest_the_trainer_reads(tmp_path):
    specs = split_specs()[0][:2]
    manifest = write_shape_dataset(tmp_path, specs, clips_per_spec=2, seed=1, num_frames=9, speedless_captions=0.0)
    items = read_manifest(manifest)
    assert [item.caption for item in items] == [specs[0].caption] * 2 + [specs[1].caption] * 2
    clip = read_video_clip(items[0].path, 9, None)
    expected = render_shape_clip(specs[0], seed=1_000_003, size=64, num_frames=9, speed_jitter=0.25)
    assert clip.source_fps == 8 and np.array_equal(np.stack(clip.frames), expected)  # lossless


def test_a_share_of_captions_leaves_the_speed_out(tmp_path):
    spec = split_specs()[0][0]
    captions = [
        item.caption
        for item in read_manifest(write_shape_dataset(tmp_path, [spec], clips_per_spec=16, speedless_captions=0.5))
    ]
    assert set(captions) == {spec.caption, "a red circle moving right"} == {spec.caption, spec.caption_without_speed}
    assert 3 <= captions.count(spec.caption_without_speed) <= 13
    everything = write_shape_dataset(tmp_path / "all", [spec], clips_per_spec=2, speedless_captions=1.0)
    assert [item.caption for item in read_manifest(everything)] == [spec.caption_without_speed] * 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"specs": []}, "`specs` must hold at least one"),
        ({"speedless_captions": 1.5}, r"`speedless_captions` must be in \[0, 1\]"),
        ({"clips_per_spec": 0}, "`clips_per_spec` must be >= 1"),
        ({"fps": 0}, "`fps` must be > 0"),
        ({"speed_jitter": 0.5}, r"`speed_jitter` must be in \[0, 0.5\)"),
        ({"num_frames": 1}, "`num_frames` must be >= 2"),
    ],
)
def test_dataset_writer_refuses_bad_settings_before_writing(tmp_path, kwargs, message):
    arguments = {"specs": split_specs()[0][:1], "clips_per_spec": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        write_shape_dataset(tmp_path / "data", **arguments)
    assert not (tmp_path / "data").exists()
