import numpy as np
import pytest
import torch
from synthetic_av_media import save_tiny_v2a_pipeline

from diffusers_lumina_video.evaluation.waveform_sync import (
    HeardSound,
    hear_video,
    hear_waveform,
    onsets_moved_by,
    score_sound,
)
from diffusers_lumina_video.showcase.shapes_vae import shapes_vae
from diffusers_lumina_video.showcase.sounding_shapes import (
    BACKGROUND_NOISE,
    COLOUR_TONES,
    DROPPED_FRAMES,
    pass_through_vae,
    read_bounce_times,
    read_sounding_manifest,
    render_sounding_clip,
    write_sounding_dataset,
)
from diffusers_lumina_video.showcase.synthetic_flashes import FLASH_COLOURS, tone
from diffusers_lumina_video.showcase.synthetic_shapes import (
    BOUNCING,
    CLIP_FORMAT_V1,
    CLIP_FORMAT_V2,
    SHAPE_COLOURS,
    SHAPES,
    ShapeSpec,
    split_specs,
)
from diffusers_lumina_video.training.av_data import load_av_items
from diffusers_lumina_video.training.av_prepare import prepare_av_dataset
from diffusers_lumina_video.utils.media_io import read_audio, read_video


BOUNCING_SPECS = [
    ShapeSpec(colour, shape, BOUNCING, speed)
    for colour, shape, speed in zip(SHAPE_COLOURS, (*SHAPES, "circle"), ("slowly", "quickly") * 2, strict=True)
]
STILL_SPEC = ShapeSpec("blue", "square", "left", "quickly")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Four bouncing clips (one per colour) and two moving one way, written as mp4 with sound."""
    folder = tmp_path_factory.mktemp("sounding")
    manifest = write_sounding_dataset(folder, [*BOUNCING_SPECS, STILL_SPEC], clips_per_spec=1, seed=3)
    write_sounding_dataset(folder / "more", [STILL_SPEC], clips_per_spec=1, seed=4)
    return manifest


def test_a_bounce_sounds_its_colour_at_the_bounce_in_the_written_mp4(dataset):
    records = read_sounding_manifest(dataset)
    bouncing = [record for record in records if record.spec.direction == BOUNCING]
    assert len(bouncing) == 4
    for record in bouncing:
        heard = hear_video(record.path, COLOUR_TONES)
        (bounce,) = record.bounce_times
        assert len(heard.onsets) == 1 and abs(heard.onsets[0] - bounce) <= 0.02, (record, heard)
        assert heard.names == (record.spec.colour,)
        assert abs(heard.frequencies[0] - COLOUR_TONES[record.spec.colour]) < 20
        video = read_video(record.path)
        assert video.frames.shape == (CLIP_FORMAT_V2.num_frames - DROPPED_FRAMES, 64, 64, 3) and video.fps == 8
        # The moment read off the written frames is the generator's, in the same time as the sound.
        assert read_bounce_times(video.frames, video.fps) == pytest.approx(record.bounce_times, abs=0.02)


def test_a_shape_moving_one_way_sounds_only_a_quiet_hiss(dataset):
    records = [r for r in read_sounding_manifest(dataset) if r.spec == STILL_SPEC]
    records += read_sounding_manifest(dataset.parent / "more" / "manifest.csv")
    for record in records:
        audio = read_audio(record.path)
        assert len(audio) == 32000 and np.sqrt(np.mean(np.square(audio))) == pytest.approx(BACKGROUND_NOISE, rel=0.2)
        assert record.bounce_times == () and hear_video(record.path, COLOUR_TONES).onsets == ()


def test_v2a_training_prepares_every_clip_the_silent_ones_too(dataset, tmp_path):
    items, _ = load_av_items(dataset)
    summary = prepare_av_dataset(
        save_tiny_v2a_pipeline(tmp_path / "v2a"), items, tmp_path / "cache", clip_duration=2.0
    )
    assert summary.skipped == {} and summary.prepared == len(items) == 5


def test_the_manifest_round_trips_and_the_v2a_trainer_reads_it(dataset):
    records = read_sounding_manifest(dataset)
    assert [r.spec for r in records] == [*BOUNCING_SPECS, STILL_SPEC]
    assert [r.background for r in records] == ["plain"] * 5  # one copy per spec: the first background
    assert [r.seed for r in records] == [3 * 1_000_003 + index for index in range(5)]
    for record in records:
        clip = render_sounding_clip(record.spec, record.seed, record.background, 0.25)
        expected = [round(time, 4) for time in clip.true_bounce_times]
        assert list(record.bounce_times) == list(record.true_bounce_times) == expected
        assert record.caption in (record.spec.caption, record.spec.caption_without_speed)
    items, skipped = load_av_items(dataset)
    assert skipped == {} and [(i.path, i.caption) for i in items] == [(r.path, r.caption) for r in records]


def test_clips_are_seeded_and_bounce_times_are_those_of_the_drawn_frames():
    spec = BOUNCING_SPECS[0]
    first, again = render_sounding_clip(spec, seed=5), render_sounding_clip(spec, seed=5)
    assert np.array_equal(first.audio, again.audio) and np.array_equal(first.frames, again.frames)
    assert not np.array_equal(first.audio, render_sounding_clip(spec, seed=6).audio)
    (bounce,) = first.rendered.bounces
    assert first.bounce_times == ((bounce - 1) / 8,)
    assert np.array_equal(first.frames, first.rendered.frames[1:])
    assert len(first.audio) == round(len(first.frames) / first.fps * first.sample_rate) == 32000


def test_a_shape_sounds_its_timbre_and_a_colour_its_pitch():
    def spectrum(shape: str, timbre: bool = True) -> tuple[np.ndarray, np.ndarray]:
        clip = render_sounding_clip(ShapeSpec("red", shape, BOUNCING, "slowly"), seed=1, timbre=timbre)
        start = round(clip.bounce_times[0] * clip.sample_rate)
        segment = clip.audio[start : start + 1280].astype(np.float64)
        return np.fft.rfftfreq(1280, 1 / 16000), np.abs(np.fft.rfft(segment * np.hanning(1280)))

    def third_harmonic(shape: str, timbre: bool = True) -> float:
        frequencies, magnitude = spectrum(shape, timbre)
        return magnitude[np.argmin(np.abs(frequencies - 3 * 440))] / magnitude[np.argmin(np.abs(frequencies - 440))]

    assert third_harmonic("square") == pytest.approx(1 / 3, rel=0.1)
    assert third_harmonic("triangle") == pytest.approx(1 / 9, rel=0.1)
    assert third_harmonic("circle") < 0.01 and third_harmonic("square", timbre=False) < 0.01
    # The colours' tones are the flash clips' own.
    assert COLOUR_TONES == {name: frequency for name, (_, frequency) in FLASH_COLOURS.items()}


def test_held_out_combinations_stay_out_of_a_training_dataset(tmp_path):
    training, held_out = split_specs(CLIP_FORMAT_V2.directions)
    held_out_bouncing = {(s.colour, s.shape) for s in held_out if s.direction == BOUNCING}
    assert len(held_out_bouncing) == 3
    assert not held_out_bouncing & {(s.colour, s.shape) for s in training if s.direction == BOUNCING}
    bouncing = [s for s in training if s.direction == BOUNCING][:3], [s for s in held_out if s.direction == BOUNCING]
    write_sounding_dataset(tmp_path / "train", bouncing[0], clips_per_spec=1)
    write_sounding_dataset(tmp_path / "held-out", bouncing[1][:1], clips_per_spec=1)
    assert not any(r.spec.is_held_out for r in read_sounding_manifest(tmp_path / "train" / "manifest.csv"))
    assert all(r.spec.is_held_out for r in read_sounding_manifest(tmp_path / "held-out" / "manifest.csv"))


@pytest.fixture(scope="module")
def tiny_vae():
    torch.manual_seed(0)
    return shapes_vae(temporal_compression_ratio=2).eval()


def test_the_vae_pass_keeps_frame_count_and_size_and_batching(tiny_vae):
    clips = [render_sounding_clip(spec, seed=2).rendered.frames for spec in BOUNCING_SPECS[:3]]
    together = pass_through_vae(tiny_vae, clips, batch_size=3)
    alone = pass_through_vae(tiny_vae, clips, batch_size=1)
    assert [f.shape for f in together] == [(16, 64, 64, 3)] * 3 and together[0].dtype == np.uint8
    # Batched convolutions round differently: a few levels at under 2% of the pixels.
    differences = [np.abs(a.astype(int) - b) for a, b in zip(together, alone, strict=True)]
    assert all(d.max() <= 4 and (d > 0).mean() < 0.02 for d in differences)
    assert not np.array_equal(together[0], clips[0][1:])  # an untrained VAE changes the picture


def test_a_vae_dataset_sounds_where_its_frames_bounce(tiny_vae, tmp_path, monkeypatch):
    # The frames written are the VAE's; the beep follows the bounce those frames show (here: the frames shifted by
    # one frame stand in for a reconstruction that lags the motion).
    monkeypatch.setattr(
        "diffusers_lumina_video.showcase.sounding_shapes.pass_through_vae",
        lambda vae, clips, batch_size: [np.concatenate([clip[1:2], clip[1:-1]]) for clip in clips],
    )
    manifest = write_sounding_dataset(tmp_path, BOUNCING_SPECS[:2], clips_per_spec=1, vae=tiny_vae)
    for record in read_sounding_manifest(manifest):
        assert record.bounce_times[0] == pytest.approx(record.true_bounce_times[0] + 1 / 8, abs=0.03)
        video = read_video(record.path)
        assert read_bounce_times(video.frames, video.fps) == pytest.approx(record.bounce_times, abs=0.01)
        assert hear_video(record.path, COLOUR_TONES).onsets == pytest.approx(record.bounce_times, abs=0.01)


def test_a_vae_dataset_is_written_with_the_clip_length(tiny_vae, tmp_path):
    manifest = write_sounding_dataset(tmp_path, [BOUNCING_SPECS[0]], clips_per_spec=1, vae=tiny_vae)
    (record,) = read_sounding_manifest(manifest)
    assert read_video(record.path).frames.shape == (16, 64, 64, 3) and len(read_audio(record.path)) == 32000


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"specs": []}, "`specs` must hold at least one"),
        ({"clips_per_spec": 0}, "`clips_per_spec` must be a positive int, got 0"),
        ({"batch_size": 0}, "`batch_size` must be a positive int, got 0"),
        ({"speedless_captions": 2.0}, r"`speedless_captions` must be in \[0, 1\], got 2.0"),
        ({"specs": [ShapeSpec("pink", "circle", BOUNCING, "slowly")]}, "`colour` must be one of"),
        (
            {"specs": [STILL_SPEC], "clip_format": CLIP_FORMAT_V1, "vae": shapes_vae(temporal_compression_ratio=8)},
            r"clips must have 1 \+ a multiple of 16 frames for a VAE of 8x temporal compression .*, got 9\.",
        ),
    ],
)
def test_bad_dataset_arguments_are_refused_before_anything_is_written(tmp_path, arguments, message):
    settings = {"folder": tmp_path / "out", "specs": BOUNCING_SPECS, "clips_per_spec": 1, **arguments}
    with pytest.raises(ValueError, match=message):
        write_sounding_dataset(**settings)
    assert not (tmp_path / "out").exists()


def test_the_vae_pass_refuses_bad_clips(tiny_vae):
    clip = render_sounding_clip(BOUNCING_SPECS[0]).rendered.frames
    with pytest.raises(ValueError, match="clips must have 1 \\+ a multiple of 4 frames .* got 16"):
        pass_through_vae(tiny_vae, [clip[1:]])
    with pytest.raises(ValueError, match="`clips` must all be \\[T, H, W, 3\\] of one shape"):
        pass_through_vae(tiny_vae, [clip, clip[:, :32]])
    with pytest.raises(ValueError, match="`clips` must be uint8 frames, got \\['float64'\\]"):
        pass_through_vae(tiny_vae, [clip / 255.0])
    with pytest.raises(TypeError, match="`vae` must be an AutoencoderKLCogVideoX, got Linear"):
        pass_through_vae(torch.nn.Linear(1, 1), [clip])


# Measurements on synthetic waveforms.


def beeps(times: list[float], frequency: float, duration: float = 2.0, noise: float = 1e-4) -> np.ndarray:
    audio = np.random.default_rng(0).normal(0.0, noise, round(duration * 16000))
    beep = tone(frequency, 0.1)
    for time in times:
        start = round(time * 16000)
        audio[start : start + len(beep)] += beep
    return audio


def test_hearing_finds_onsets_and_names_pitches():
    heard = hear_waveform(beeps([0.3, 1.2], 880.0), 16000, COLOUR_TONES)
    assert heard.onsets == pytest.approx((0.3, 1.2), abs=0.006)
    assert heard.names == ("green", "green")
    assert hear_waveform(beeps([0.5], 1700.0), 16000, COLOUR_TONES).names == ("blue",)
    # Background noise alone has no onset, however its loudest moment compares with the rest.
    assert hear_waveform(beeps([], 440.0, noise=1e-3), 16000, COLOUR_TONES).onsets == ()
    # Without the floor it would: that is what the floor is for.
    assert hear_waveform(beeps([], 440.0, noise=1e-3), 16000, COLOUR_TONES, floor_db=-200).onsets != ()


def test_delayed_sound_moves_its_onsets_by_the_delay():
    audio = beeps([0.3, 1.1], 440.0)
    delayed = np.concatenate([np.zeros(8000), audio])
    before = hear_waveform(audio, 16000, COLOUR_TONES).onsets
    after = hear_waveform(delayed, 16000, COLOUR_TONES).onsets
    assert np.subtract(after, before) == pytest.approx([0.5, 0.5], abs=0.006)
    assert onsets_moved_by([before], [after], 0.5) == pytest.approx(0.5, abs=0.006)
    assert onsets_moved_by([[0.3]], [[0.84]], 0.5) == pytest.approx(0.54)
    assert np.isnan(onsets_moved_by([[0.3]], [[1.2]], 0.5))


def test_scores_count_hits_pitches_and_silent_clips():
    heard = [
        HeardSound((0.52,), (440.0,), ("red",)),  # a hit of the right pitch
        HeardSound((1.2, 1.05), (880.0, 440.0), ("green", "red")),  # one hit (1.05), one extra, one wrong pitch
        HeardSound((0.3,), (440.0,), ("red",)),  # a silent clip that sounds
        HeardSound((), (), ()),  # a silent clip that is silent
        HeardSound((), (), ()),  # a miss
    ]
    score = score_sound([[0.5], [1.0], [], [], [0.7]], ["red", "red", None, None, "blue"], heard)
    assert (score.precision, score.recall) == (0.5, 2 / 3)
    assert score.onset_f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert score.mean_absolute_offset == pytest.approx(0.035) and score.mean_signed_offset == pytest.approx(0.035)
    assert score.pitch_accuracy == pytest.approx(2 / 3)
    assert score.onsets_per_silent_clip == 0.5
    tight = score_sound([[0.5], [1.0], [], [], [0.7]], ["red", "red", None, None, "blue"], heard, tolerance=0.03)
    assert tight.recall == 1 / 3
    with pytest.raises(ValueError, match="one entry per clip"):
        score_sound([[0.5]], ["red", "red"], heard[:1])
    with pytest.raises(ValueError, match="`tolerance` must be > 0"):
        score_sound([[0.5]], ["red"], heard[:1], tolerance=0)
