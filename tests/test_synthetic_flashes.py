import numpy as np
import pytest

from diffusers_lumina_video.evaluation.audio_events import (
    detect_mel_onsets,
    detect_onsets,
    dominant_frequency,
    dominant_mel_frequency,
    match_onsets,
    mel_bin_frequencies,
    nearest_colour,
)
from diffusers_lumina_video.processors import AudioLDMMelFeatureExtractor
from diffusers_lumina_video.showcase.synthetic_flashes import (
    FLASH_COLOURS,
    HELD_OUT_SEED_OFFSET,
    generate_flash_clip,
    read_flash_manifest,
    write_flash_dataset,
)
from diffusers_lumina_video.utils.media_io import read_audio, read_video


TONES = {name: frequency for name, (_, frequency) in FLASH_COLOURS.items()}


def flashing_frames(clip) -> list[int]:
    """Frames where the square first appears (the picture's own onsets)."""
    lit = np.abs(clip.frames.astype(int) - clip.frames[0].astype(int)).sum(axis=(1, 2, 3)) > 0
    return [i for i in range(len(lit)) if lit[i] and (i == 0 or not lit[i - 1])]


def test_flash_clip_picture_and_sound_share_their_onsets():
    clip = generate_flash_clip(seed=3, duration=4.0, num_flashes=5)
    assert clip.frames.shape == (100, 64, 64, 3) and clip.audio.shape == (64000,)
    assert clip.caption == f"a {clip.colour} square flashing with a beep"
    assert [int(t * clip.fps) for t in clip.flash_times] == flashing_frames(clip)
    match = match_onsets(list(clip.flash_times), detect_onsets(clip.audio, clip.sample_rate))
    assert match.f1 == 1.0 and match.mean_absolute_offset < 0.01
    for onset in clip.flash_times:
        assert (
            nearest_colour(dominant_frequency(clip.audio, clip.sample_rate, onset, onset + 0.1), TONES) == clip.colour
        )


def test_flash_clips_are_reproducible_and_held_out_timings_differ():
    first, again = generate_flash_clip(seed=7), generate_flash_clip(seed=7)
    assert first.flash_times == again.flash_times and np.array_equal(first.audio, again.audio)
    training = {generate_flash_clip(seed=s).flash_times for s in range(20)}
    held_out = {generate_flash_clip(seed=HELD_OUT_SEED_OFFSET + s).flash_times for s in range(20)}
    assert len(training) == 20 and not training & held_out
    gaps = np.diff(generate_flash_clip(seed=1, num_flashes=6, min_gap=0.5).flash_times)
    assert (gaps >= 0.5 - 1e-9).all()


def test_onset_matching_counts_misses_extras_and_offsets():
    match = match_onsets([1.0, 2.0, 3.0], [1.02, 2.5, 3.0, 3.03])
    assert (match.precision, match.recall) == (0.5, 2 / 3)
    assert match.matched == ((1.0, 1.02), (3.0, 3.0))
    assert match.mean_absolute_offset == pytest.approx(0.01)
    assert match_onsets([1.0], []).f1 == 0.0


def test_onsets_of_a_shifted_track_move_with_it():
    clip = generate_flash_clip(seed=11)
    shift = round(0.5 * clip.sample_rate)
    shifted = np.concatenate([np.zeros(shift, dtype=np.float32), clip.audio[:-shift]])
    onsets = detect_onsets(shifted, clip.sample_rate)
    expected = [t + 0.5 for t in clip.flash_times if t + 0.5 < clip.duration]
    assert match_onsets(expected, onsets, tolerance=0.01).f1 == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"colour": "purple"}, "`colour` must be one of"),
        ({"duration": 0}, "`duration` must be > 0"),
        ({"fps": -1}, "`fps` must be > 0"),
        ({"size": 8}, "`size` must be at least 16"),
        ({"num_flashes": 0}, "`num_flashes` must be >= 1"),
        ({"min_gap": 0.05}, "must be at least `flash_length`"),
        ({"num_flashes": 20, "duration": 2.0}, "do not fit in `duration`"),
    ],
)
def test_generator_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_flash_clip(seed=0, **kwargs)


def test_measurements_refuse_unusable_audio():
    with pytest.raises(ValueError, match="`waveform` must be a non-empty array of finite samples"):
        detect_onsets(np.array([0.0, np.nan]), 16000)
    with pytest.raises(ValueError, match="at least 16 are needed"):
        dominant_frequency(np.zeros(100), 16000, 0.0, 0.0001)
    assert detect_onsets(np.zeros(1600), 16000) == []


def test_mel_onsets_and_pitch_read_the_clip_as_the_waveform_does():
    clip = generate_flash_clip(seed=5, duration=3.0, num_flashes=4)
    extractor = AudioLDMMelFeatureExtractor()
    log_mel = extractor(clip.audio, sampling_rate=clip.sample_rate, return_tensors="np").input_features[0, 0]
    onsets = detect_mel_onsets(log_mel, min_gap=0.25)
    match = match_onsets(list(clip.flash_times), onsets)
    assert match.f1 == 1.0 and match.mean_absolute_offset < 0.02
    frequencies = mel_bin_frequencies(extractor.mel_filters, extractor.sampling_rate)
    assert frequencies.shape == (64,) and 0 < frequencies[0] < 100 and np.all(np.diff(frequencies) > 0)
    for onset in onsets:
        pitch = dominant_mel_frequency(log_mel, frequencies, start=onset, end=onset + 0.1)
        assert nearest_colour(pitch, TONES) == clip.colour


def test_mel_measurements_refuse_bad_spectrograms():
    with pytest.raises(ValueError, match=r"`log_mel` must be a finite \[frames, mel_bins\]"):
        detect_mel_onsets(np.zeros(10))
    with pytest.raises(ValueError, match="`bin_frequencies` has 3 entries for a spectrogram of 4 bins"):
        dominant_mel_frequency(np.zeros((10, 4)), np.arange(3.0))
    with pytest.raises(ValueError, match="holds no frame"):
        dominant_mel_frequency(np.zeros((10, 4)), np.arange(4.0), start=1.0)
    assert detect_mel_onsets(np.full((20, 4), -np.log(1e5))) == [0.0]


def test_flash_dataset_writes_playable_clips_and_their_truth(tmp_path):
    manifest = write_flash_dataset(tmp_path / "flashes", 2, held_out=True, duration=2.0, num_flashes=2, size=32)
    records = read_flash_manifest(manifest)
    assert [r.seed for r in records] == [HELD_OUT_SEED_OFFSET, HELD_OUT_SEED_OFFSET + 1]
    for record in records:
        clip = generate_flash_clip(record.seed, duration=2.0, num_flashes=2, size=32)
        assert (record.caption, record.colour) == (clip.caption, clip.colour)
        assert record.flash_times == pytest.approx(clip.flash_times, abs=1e-4)
        video = read_video(record.path)
        assert video.frames.shape == (50, 32, 32, 3) and video.fps == 25.0
        audio = read_audio(record.path)
        assert audio.shape == (32000,)
        assert match_onsets(list(record.flash_times), detect_onsets(audio, 16000), tolerance=0.01).f1 == 1.0
    # A second run keeps the files it finds (resuming) and rewrites the manifest.
    stamp = records[0].path.stat().st_mtime_ns
    write_flash_dataset(tmp_path / "flashes", 3, held_out=True, duration=2.0, num_flashes=2, size=32)
    assert records[0].path.stat().st_mtime_ns == stamp and len(read_flash_manifest(manifest)) == 3
    training = read_flash_manifest(write_flash_dataset(tmp_path / "train", 1, first_seed=4, duration=2.0, size=32))
    assert training[0].seed == 4 and training[0].path.name == "flash_0000004.mp4"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_clips": 0}, "`num_clips` must be a positive int"),
        ({"num_clips": 1, "first_seed": -1}, "`first_seed` must be an int in"),
        ({"num_clips": 2, "first_seed": HELD_OUT_SEED_OFFSET - 1}, "must not pass"),
        ({"num_clips": 1, "colour": "red"}, r"`clip_kwargs` has \['colour'\]"),
    ],
)
def test_flash_dataset_refuses_bad_settings(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_flash_dataset(tmp_path, **kwargs)
    with pytest.raises(FileNotFoundError, match="is not a file"):
        read_flash_manifest(tmp_path / "missing.csv")
