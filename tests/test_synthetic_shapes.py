import json

import numpy as np
import pytest

from diffusers_lumina_video.showcase.shape_attributes import (
    read_bounce,
    read_clip_attributes,
    read_track,
    track_smoothness,
    wall_width,
)
from diffusers_lumina_video.showcase.synthetic_shapes import (
    BACKGROUNDS,
    BOUNCE_MARGIN,
    BOUNCING,
    CAPTION_WORDS,
    CLIP_FORMAT_V1,
    CLIP_FORMAT_V2,
    CLIP_FORMAT_V3,
    CLIP_FORMAT_V4,
    CLIP_FORMAT_V5,
    DIRECTION_CLASSES,
    DIRECTIONS,
    SHAPE_COLOURS,
    SHAPE_RADIUS,
    SPEEDS,
    WALL_COLOUR,
    ShapeSpec,
    render_shape,
    render_shape_clip,
    split_specs,
    write_shape_dataset,
)
from diffusers_lumina_video.training.data import read_manifest, read_video_clip
from diffusers_lumina_video.training.motion import flow_motion_score


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
def test_read_track_follows_the_centre_frame_by_frame(direction, step):
    frames = render_shape_clip(ShapeSpec("red", "circle", direction, "slowly"), seed=1, size=64, num_frames=8)
    track = read_track(frames)
    assert track.shape == (8, 2)
    np.testing.assert_allclose(np.diff(track, axis=0), np.tile(step, (7, 1)), atol=0.25)
    frames[3] = frames[0, :1, :1]  # a frame of background only: no centroid
    assert np.isnan(read_track(frames)[3]).all() and np.isfinite(read_track(frames)[[2, 4]]).all()


def test_clip_shape_caption_and_reproducibility():
    spec = ShapeSpec("blue", "triangle", "up", "quickly")
    frames = render_shape_clip(spec, seed=3, size=96, num_frames=17, clip_format=CLIP_FORMAT_V2)
    assert frames.shape == (17, 96, 96, 3) and frames.dtype == np.uint8
    assert spec.caption == "a blue triangle moving up, quickly"
    assert np.array_equal(frames, render_shape_clip(spec, seed=3, size=96, num_frames=17, clip_format=CLIP_FORMAT_V2))
    assert render_shape_clip(spec, seed=3).shape == (9, 64, 64, 3)  # sizes default to the format's
    assert render_shape_clip(spec, seed=3, clip_format=CLIP_FORMAT_V2).shape == (17, 64, 64, 3)


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
        (ShapeSpec("red", "circle", BOUNCING, "slowly"), {}, r"`direction` must be one of \['left', 'right', 'up', "),
        (
            ShapeSpec("red", "circle", BOUNCING, "slowly"),
            {"num_frames": 7, "clip_format": CLIP_FORMAT_V2},
            r"`num_frames` must be >= 8 for a bouncing shape \(3 frames on either side of its bounce\), got 7",
        ),
        (
            ShapeSpec("red", "circle", "left", "quickly"),
            {"num_frames": 18, "speed_jitter": 0.25, "clip_format": CLIP_FORMAT_V2},
            "`num_frames` must be at most 17 for a shape moving quickly in 64 px frames of clip format 'v2' "
            r"\(speed jitter 0.25\): longer paths leave the frame, got 18",
        ),
        (
            ShapeSpec("red", "circle", "left", "quickly"),
            {"speed_jitter": 0.3, "clip_format": CLIP_FORMAT_V2},
            r"`speed_jitter` must be in \[0, 0.273\) \(slow and quick ranges must not meet\), got 0.3",
        ),
    ],
)
def test_generator_refuses_bad_settings(spec, kwargs, message):
    with pytest.raises(ValueError, match=message):
        render_shape_clip(spec, **kwargs)


@pytest.mark.parametrize(("directions", "held_out_count"), [(tuple(DIRECTIONS), 14), (DIRECTION_CLASSES, 20)])
def test_held_out_combinations_are_new_only_as_triples(directions, held_out_count):
    train, held_out = split_specs(directions)
    assert len(held_out) == held_out_count and len(train) + len(held_out) == len(ShapeSpec.all(directions))
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
        ({"speed_jitter": 0.5}, r"`speed_jitter` must be in \[0, 0.4\)"),
        ({"num_frames": 1}, "`num_frames` must be >= 2"),
    ],
)
def test_dataset_writer_refuses_bad_settings_before_writing(tmp_path, kwargs, message):
    arguments = {"specs": split_specs()[0][:1], "clips_per_spec": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        write_shape_dataset(tmp_path / "data", **arguments)
    assert not (tmp_path / "data").exists()


def _plain_clip_area(frames: np.ndarray, colour: str) -> np.ndarray:
    """The shape's area per frame of a clip on a plain background (its corner pixel), in pixels."""
    background = frames[0, 0, 0].astype(np.float64)
    contrast = np.asarray(SHAPE_COLOURS[colour]) - background
    return ((frames - background) @ contrast / (contrast @ contrast)).sum(axis=(1, 2))


@pytest.mark.parametrize("num_frames", [9, 17])
def test_v2_shapes_move_at_one_speed_and_stay_whole_in_view(num_frames):
    radius = CLIP_FORMAT_V2.size * SHAPE_RADIUS
    for index, spec in enumerate(ShapeSpec.all(CLIP_FORMAT_V2.directions)):
        for seed in (index, 1000 + index):
            clip = render_shape(spec, seed, num_frames=num_frames, speed_jitter=0.25, clip_format=CLIP_FORMAT_V2)
            steps = np.linalg.norm(np.diff(clip.centres, axis=0), axis=1)
            # the step across a bounce is shorter (the shape turns inside it); every other is the same
            across = [int(moment) for moment in clip.bounces]
            steady = np.delete(steps, across)
            assert np.ptp(steady) < 1e-9 and 0.75 <= steady[0] <= 1.25 * 1.75, (spec, steps)
            assert (clip.centres - radius >= 1).all() and (clip.centres + radius <= 63).all(), spec
            assert (clip.frames[:, [0, -1]] == clip.frames[0, 0, 0]).all()  # nothing on the border rows
            assert (clip.frames[:, :, [0, -1]] == clip.frames[0, 0, 0]).all()
            area = _plain_clip_area(clip.frames, spec.colour)
            assert area.max() - area.min() < 0.02 * area.mean(), (spec, area)  # no part leaves the frame


def test_bounces_happen_once_at_the_edge_at_a_moment_that_varies():
    specs = [spec for spec in ShapeSpec.all(CLIP_FORMAT_V2.directions) if spec.direction == BOUNCING]
    moments, first_ways = [], set()
    low, high = CLIP_FORMAT_V2.size * SHAPE_RADIUS + 1, CLIP_FORMAT_V2.size * (1 - SHAPE_RADIUS) - 1
    for index, spec in enumerate(specs):
        clip = render_shape(spec, index, speed_jitter=0.25, clip_format=CLIP_FORMAT_V2)
        (moment,) = clip.bounces
        assert BOUNCE_MARGIN <= moment <= CLIP_FORMAT_V2.num_frames - 1 - BOUNCE_MARGIN
        x, y = clip.centres.T
        assert np.ptp(y) == 0  # left and right only
        turn = int(moment)  # x turns between frames turn and turn + 1, at the frame's edge
        assert np.sign(np.diff(x[: turn + 1])).std() == 0 and np.sign(np.diff(x[turn + 1 :])).std() == 0
        assert np.sign(x[1] - x[0]) != np.sign(x[-1] - x[-2])
        wall = high if x[1] > x[0] else low
        assert min(abs(x[turn] - wall), abs(x[turn + 1] - wall)) <= 1.25 * 1.75
        moments.append(moment)
        first_ways.add(bool(x[1] > x[0]))
    assert np.std(moments) > 2 and first_ways == {True, False}


def test_v4_bounces_head_left_first_and_are_v2_bounces_otherwise():
    low = CLIP_FORMAT_V4.size * SHAPE_RADIUS + CLIP_FORMAT_V4.margin
    moments = []
    for index, spec in enumerate(ShapeSpec.all(CLIP_FORMAT_V4.directions)):
        clip = render_shape(spec, index, speed_jitter=0.25, clip_format=CLIP_FORMAT_V4)
        v2 = render_shape(spec, index, speed_jitter=0.25, clip_format=CLIP_FORMAT_V2)
        if spec.direction != BOUNCING:
            np.testing.assert_array_equal(clip.frames, v2.frames)  # one-way clips are v2's, seed for seed
            continue
        (moment,) = clip.bounces
        x = clip.centres[:, 0]
        assert x[1] < x[0] and x[-1] > x[-2]  # left first, then right
        assert x.min() == pytest.approx(low, abs=2.5)  # turning at the left edge
        moments.append(moment)
    assert np.std(moments) > 2


def test_v5_bounces_nearer_the_middle_and_are_v4_clips_otherwise():
    last = CLIP_FORMAT_V5.num_frames - 1
    moments = []
    for index, spec in enumerate(ShapeSpec.all(CLIP_FORMAT_V5.directions)):
        clip = render_shape(spec, index, speed_jitter=0.25, clip_format=CLIP_FORMAT_V5)
        v4 = render_shape(spec, index, speed_jitter=0.25, clip_format=CLIP_FORMAT_V4)
        if spec.direction != BOUNCING:
            np.testing.assert_array_equal(clip.frames, v4.frames)
            continue
        (moment,) = clip.bounces
        assert CLIP_FORMAT_V5.bounce_margin <= moment <= last - CLIP_FORMAT_V5.bounce_margin
        x = clip.centres[:, 0]
        assert x[1] < x[0] and x[-1] > x[-2]  # still left first, then right
        moments.append(moment)
    assert CLIP_FORMAT_V5.bounce_margin > BOUNCE_MARGIN and np.std(moments) > 1  # nearer the middle, still varying
    assert np.ptp(moments) > 4


def test_bouncing_captions_and_vocabulary():
    spec = ShapeSpec("red", "circle", BOUNCING, "slowly")
    assert spec.caption == "a red circle bouncing left and right, slowly"
    assert spec.caption_without_speed == "a red circle bouncing left and right"
    # the shipped model's words first, in its order, so that its tokenizer's ids hold
    assert CAPTION_WORDS[: len(CLIP_FORMAT_V1.caption_words)] == CLIP_FORMAT_V1.caption_words
    assert CLIP_FORMAT_V2.caption_words == CAPTION_WORDS
    for clip_format in (CLIP_FORMAT_V1, CLIP_FORMAT_V2):
        for spec in ShapeSpec.all(clip_format.directions):
            words = spec.caption.replace(",", " ,").split()
            assert set(words) <= set(clip_format.caption_words), spec.caption


def test_v2_specs_read_back_from_their_frames_bouncing_included():
    wrong = []
    for index, spec in enumerate(ShapeSpec.all(CLIP_FORMAT_V2.directions)):
        frames = render_shape_clip(spec, index, background=BACKGROUNDS[index % 2], clip_format=CLIP_FORMAT_V2)
        found = read_clip_attributes(frames, bouncing=True)
        if (found.colour, found.shape, found.direction) != (spec.colour, spec.shape, spec.direction):
            wrong.append((spec.caption, found))
    assert not wrong, wrong[:5]
    bouncing = render_shape_clip(ShapeSpec("red", "circle", BOUNCING, "quickly"), 0, clip_format=CLIP_FORMAT_V2)
    assert read_clip_attributes(bouncing).direction in (*DIRECTIONS, None)  # without `bouncing`: not a class


def test_smoothness_is_one_on_generated_clips_of_both_kinds():
    for index, spec in enumerate(ShapeSpec.all(CLIP_FORMAT_V2.directions)[::2]):
        clip = render_shape(
            spec, index, background=BACKGROUNDS[index % 2], speed_jitter=0.25, clip_format=CLIP_FORMAT_V2
        )
        track = read_track(clip.frames)
        assert track_smoothness(track, spec.direction) == 1.0, spec
        # the track follows the drawn path to a small fraction of a pixel (a triangle's centroid sits lower)
        offset = track - clip.centres
        assert np.ptp(offset, axis=0).max() < 0.12, (spec, offset)


def test_bounce_moment_is_read_within_a_quarter_frame():
    specs = [spec for spec in ShapeSpec.all(CLIP_FORMAT_V2.directions) if spec.direction == BOUNCING]
    errors = []
    for index, spec in enumerate(specs * 2):
        clip = render_shape(spec, 50 + index, None, None, BACKGROUNDS[index % 2], 0.25, CLIP_FORMAT_V2)
        moment = read_bounce(read_track(clip.frames))
        errors.append(abs(moment - clip.bounces[0]))
    assert max(errors) < 0.25, errors


def test_a_clip_that_stands_still_then_jumps_is_not_smooth():
    clip = render_shape_clip(ShapeSpec("red", "square", "right", "quickly"), 3, clip_format=CLIP_FORMAT_V2)
    held = clip[[0, 0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12]]  # groups of four still frames, then a jump
    assert read_clip_attributes(held).direction == "right"
    assert track_smoothness(read_track(held), "right") == 3 / 16
    assert track_smoothness(read_track(clip[[0] * 17]), "right") == 0.0  # no motion at all
    assert track_smoothness(read_track(clip), "left") == 0.0  # the wrong way


def test_smoothness_and_bounce_of_hand_made_tracks():
    # the old model's jump: centroid steps 0, 0, 0, 6.7, 4.1, 1.5, 0.3 px; mean 1.8, so steps of 0.45 px count
    track = np.stack([np.cumsum([20, 0, 0, 0, 6.7, 4.1, 1.5, 0.3]), np.full(8, 30.0)], axis=1)
    assert track_smoothness(track, "right") == pytest.approx(3 / 7)
    # out to the right, back from t = 4.5: the step across the bounce counts for neither side
    times = np.arange(10.0)
    bounce = np.stack([40 - 2 * np.abs(times - 4.5), np.full(10, 30.0)], axis=1)
    assert read_bounce(bounce) == pytest.approx(4.5)
    assert track_smoothness(bounce, BOUNCING) == 1.0
    assert track_smoothness(bounce, "right") == pytest.approx(4 / 9)
    stalled = bounce.copy()
    stalled[7:] = stalled[6]  # stops after the bounce
    assert track_smoothness(stalled, BOUNCING) < 0.8
    assert read_bounce(np.stack([times, times], axis=1)) is None  # straight on: no reversal
    vertical = bounce[:, ::-1]  # up and down: not a bounce left and right
    assert read_bounce(vertical) is None
    missing = bounce.copy()
    missing[2] = np.nan  # a frame without a shape fails both of its steps
    assert track_smoothness(missing, BOUNCING) == pytest.approx(6 / 8)


def test_track_readers_refuse_bad_input():
    with pytest.raises(ValueError, match=r"`direction` must be one of \['left', 'right', 'up', 'down', 'bouncing'\]"):
        track_smoothness(np.zeros((4, 2)), "sideways")
    with pytest.raises(ValueError, match=r"`track` must be \[T >= 2, 2\] \(x, y per frame\), got \(4, 3\)"):
        read_bounce(np.zeros((4, 3)))
    assert np.isnan(read_track(np.zeros((3, 32, 32, 3), dtype=np.uint8))).all()


def test_v2_dataset_records_its_bounces(tmp_path):
    specs = [ShapeSpec("red", "circle", BOUNCING, "slowly"), ShapeSpec("blue", "square", "left", "quickly")]
    manifest = write_shape_dataset(tmp_path, specs, clips_per_spec=2, seed=2, clip_format=CLIP_FORMAT_V2)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    items = read_manifest(manifest)
    for index, (row, item) in enumerate(zip(rows, items, strict=True)):
        spec = specs[index // 2]
        clip = render_shape(spec, 2 * 1_000_003 + index, None, None, BACKGROUNDS[index % 2], 0.25, CLIP_FORMAT_V2)
        assert row.get("bounce_frames") == (list(clip.bounces) or None)
        video = read_video_clip(item.path, 17, None)
        assert video.source_fps == 8 and np.array_equal(np.stack(video.frames), clip.frames)


def test_v3_clips_are_v2_clips_inside_a_wall_the_shape_bounces_off_and_never_touches():
    wall, size = CLIP_FORMAT_V3.wall, CLIP_FORMAT_V3.size
    radius = size * SHAPE_RADIUS
    low, high = radius + wall + 2, size - radius - wall - 2  # a gap of 2 px between the shape and the wall
    for index, spec in enumerate(ShapeSpec.all(CLIP_FORMAT_V3.directions)[::3]):
        clip = render_shape(
            spec, index, background=BACKGROUNDS[index % 2], speed_jitter=0.25, clip_format=CLIP_FORMAT_V3
        )
        for ring in (
            clip.frames[:, :wall],
            clip.frames[:, -wall:],
            clip.frames[:, :, :wall],
            clip.frames[:, :, -wall:],
        ):
            assert (ring == WALL_COLOUR).all(), spec
        assert (clip.centres >= low - 1e-9).all() and (clip.centres <= high + 1e-9).all(), spec
        if spec.direction == BOUNCING:  # it turns where it comes nearest the wall
            turn = int(clip.bounces[0])
            x = clip.centres[:, 0]
            assert min(abs(x[turn : turn + 2] - low).min(), abs(x[turn : turn + 2] - high).min()) <= 1.5 * 1.25
    with pytest.raises(ValueError, match=r"`num_frames` must be at most 17 for a shape moving quickly in 64 px"):
        render_shape(
            ShapeSpec("red", "circle", "left", "quickly"),
            0,
            num_frames=18,
            speed_jitter=0.25,
            clip_format=CLIP_FORMAT_V3,
        )


@pytest.mark.parametrize("sigma", [0.0, 1.0])
def test_walled_clips_read_back_as_their_specs_the_track_in_whole_frame_pixels(sigma):
    wrong, offsets = [], []
    for index, spec in enumerate(ShapeSpec.all(CLIP_FORMAT_V3.directions)[::2]):
        clip = render_shape(
            spec, index, background=BACKGROUNDS[index % 2], speed_jitter=0.25, clip_format=CLIP_FORMAT_V3
        )
        frames = _gaussian_blur(clip.frames / 255.0, sigma) if sigma else clip.frames
        assert wall_width(np.asarray(clip.frames, dtype=np.float32)) == CLIP_FORMAT_V3.wall
        found = read_clip_attributes(frames, bouncing=True)
        if (found.colour, found.direction) != (spec.colour, spec.direction) or (
            not sigma and found.shape != spec.shape
        ):
            wrong.append((spec.caption, found))
        offsets.append(np.ptp(read_track(frames) - clip.centres, axis=0).max())
    assert not wrong, wrong[:5]
    assert max(offsets) < 0.25, max(offsets)  # the same offset every frame: whole-frame coordinates
    v2 = render_shape(ShapeSpec("red", "circle", "left", "slowly"), 0, clip_format=CLIP_FORMAT_V2)
    assert wall_width(v2.frames.astype(np.float32)) == 0
