import av
import numpy as np
import PIL.Image
import pytest
import torch

from diffusers_lumina_video.evaluation.audio_events import detect_onsets, dominant_frequency, match_onsets
from diffusers_lumina_video.showcase.synthetic_flashes import BACKGROUND, generate_flash_clip
from diffusers_lumina_video.utils.media_io import (
    export_to_video_with_audio,
    frame_indices_at_rate,
    read_audio,
    read_video,
    write_wav,
)


AAC_FRAME = 1024


def tone(seconds: float, sample_rate: int, frequency: float = 440.0) -> np.ndarray:
    time = np.arange(round(seconds * sample_rate)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def gradient_frames(num_frames: int, height: int = 32, width: int = 48) -> np.ndarray:
    """Smooth float frames in [0, 1] that H.264 keeps close, each a little brighter than the last."""
    ramp = np.linspace(0.1, 0.7, width, dtype=np.float32)[None, :, None] * np.ones((height, 1, 3), np.float32)
    return np.stack([ramp + 0.02 * index for index in range(num_frames)])


@pytest.fixture(scope="module")
def muxed(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    assert export_to_video_with_audio(gradient_frames(12), tone(0.5, 16000), 16000, path, fps=24) == str(path)
    return str(path)


def test_muxed_mp4_has_both_streams_with_the_right_durations(muxed):
    with av.open(muxed) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
        assert container.streams.audio[0].codec_context.name == "aac"
    video = read_video(muxed)
    assert video.frames.shape == (12, 32, 48, 3) and video.frames.dtype == np.uint8
    assert video.fps == 24.0
    np.testing.assert_allclose(video.timestamps, np.arange(12) / 24)
    assert len(video.frames) / video.fps == 0.5
    audio = read_audio(muxed)
    assert audio.dtype == np.float32
    assert abs(len(audio) - 8000) <= AAC_FRAME
    assert abs(dominant_frequency(audio, 16000) - 440) <= 2


def test_muxed_frames_keep_their_content(muxed):
    frames = read_video(muxed).frames.astype(np.float32)
    expected = np.round(gradient_frames(12) * 255)
    assert np.abs(frames - expected).mean() < 3


def test_muxed_sound_stays_in_sync_with_the_picture(tmp_path):
    clip = generate_flash_clip(seed=3, duration=2.0, num_flashes=3, size=32)
    path = export_to_video_with_audio(clip.frames, clip.audio, clip.sample_rate, tmp_path / "flashes.mp4", clip.fps)
    video = read_video(path)
    lit = np.abs(video.frames.astype(np.int16) - np.array(BACKGROUND)).max(axis=(1, 2, 3)) > 60
    first_lit = video.timestamps[np.flatnonzero(lit[1:] & ~lit[:-1]) + 1]
    np.testing.assert_allclose(first_lit, np.floor(np.array(clip.flash_times) * clip.fps) / clip.fps)
    match = match_onsets(list(clip.flash_times), detect_onsets(read_audio(path), 16000), tolerance=0.01)
    assert match.f1 == 1.0, match


@pytest.mark.parametrize(
    "frames",
    [
        [PIL.Image.new("RGB", (16, 8), (200, 10, 10))] * 3,
        [np.full((8, 16, 3), 200, dtype=np.uint8)] * 3,
        torch.full((3, 8, 16, 3), 200 / 255),
    ],
    ids=["pil", "uint8", "tensor"],
)
def test_export_takes_frames_as_export_to_video_does(tmp_path, frames):
    path = export_to_video_with_audio(frames, torch.tensor(tone(0.2, 8000)), 8000, tmp_path / "clip.mp4", fps=15)
    video = read_video(path)
    assert video.frames.shape == (3, 8, 16, 3)
    assert abs(int(video.frames[..., 0].mean()) - 200) <= 3


@pytest.mark.parametrize("written_rate", [16000, 22050, 44100])
def test_wav_round_trip_keeps_pitch_and_length(tmp_path, written_rate):
    written = tone(1.0, written_rate)
    path = write_wav(written, tmp_path / "tone.wav", sample_rate=written_rate)
    audio = read_audio(path)
    assert abs(len(audio) - 16000) <= 1
    assert abs(dominant_frequency(audio, 16000) - 440) <= 1
    if written_rate == 16000:
        np.testing.assert_allclose(audio, written, atol=1 / 32767)


def test_read_audio_resamples_to_the_requested_rate(tmp_path):
    path = write_wav(tone(0.5, 16000, frequency=1000), tmp_path / "tone.wav")
    audio = read_audio(path, sample_rate=48000)
    assert abs(len(audio) - 24000) <= 1
    assert abs(dominant_frequency(audio, 48000) - 1000) <= 2


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(ValueError):
        export_to_video_with_audio(gradient_frames(2), tone(0.1, 16000), 16000, tmp_path / "clip.unknown", fps=24)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bad")
    not_media = folder / "notes.mp4"
    not_media.write_text("not a video")
    no_frames = folder / "no_frames.mkv"  # a video stream and only audio packets
    with av.open(str(no_frames), "w") as container:
        video = container.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = container.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone(0.1, 16000)[None], format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    silent_video = folder / "silent.mp4"
    with av.open(str(silent_video), "w") as container:
        video = container.add_stream("libx264", rate=8)
        video.width, video.height, video.pix_fmt = 48, 32, "yuv420p"
        for image in np.round(gradient_frames(4) * 255).astype(np.uint8):
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
    return {
        "missing": str(folder / "missing.mp4"),
        "not_media": str(not_media),
        "no_frames": str(no_frames),
        "wav": write_wav(tone(0.1, 16000), folder / "tone.wav"),
        "silent_video": str(silent_video),
    }


@pytest.mark.parametrize(
    ("reader", "name", "error", "match"),
    [
        (read_video, "missing", FileNotFoundError, "is not a file"),
        (read_audio, "missing", FileNotFoundError, "is not a file"),
        (read_video, "not_media", ValueError, "is not a media file FFmpeg can read"),
        (read_audio, "not_media", ValueError, "is not a media file FFmpeg can read"),
        (read_video, "wav", ValueError, "has no video stream"),
        (read_video, "no_frames", ValueError, "has a video stream but no frames"),
        (read_audio, "silent_video", ValueError, "has no audio stream"),
    ],
)
def test_unreadable_files_are_refused(bad_files, reader, name, error, match):
    with pytest.raises(error, match=match):
        reader(bad_files[name])


def test_read_audio_refuses_a_bad_sample_rate(bad_files):
    with pytest.raises(ValueError, match="`sample_rate` must be a positive int"):
        read_audio(bad_files["wav"], sample_rate=0)


@pytest.mark.parametrize(
    ("frames", "audio", "kwargs", "error", "match"),
    [
        ([], tone(0.1, 16000), {}, ValueError, "`frames` must be a non-empty list"),
        (np.zeros((2, 9, 16, 3)), tone(0.1, 16000), {}, ValueError, "even height and width.*9x16"),
        (np.zeros((2, 8, 16, 4)), tone(0.1, 16000), {}, ValueError, r"`frames\[0\]` must be \[H, W, 3\] RGB"),
        ([np.zeros((8, 16, 3)), np.zeros((8, 8, 3))], tone(0.1, 16000), {}, ValueError, "must all have one size"),
        (["frame.png"], tone(0.1, 16000), {}, TypeError, r"`frames\[0\]` must be a PIL image or a numpy array"),
        (gradient_frames(2), np.zeros((2, 1600)), {}, ValueError, "`audio` must be 1-D mono samples"),
        (gradient_frames(2), np.zeros(0), {}, ValueError, "`audio` must be 1-D mono samples and not empty"),
        (gradient_frames(2), np.full(1600, np.nan), {}, ValueError, "`audio` contains NaN or infinite"),
        (gradient_frames(2), [0.0] * 1600, {}, TypeError, "`audio` must be a 1-D numpy array or torch tensor"),
        (gradient_frames(2), tone(0.1, 16000), {"fps": 0}, ValueError, "`fps` must be a positive number"),
        (gradient_frames(2), tone(0.1, 16000), {"sample_rate": 0}, ValueError, "`sample_rate` must be a positive"),
    ],
)
def test_bad_export_arguments_are_refused(tmp_path, frames, audio, kwargs, error, match):
    kwargs = {"sample_rate": 16000, "fps": 24, **kwargs}
    with pytest.raises(error, match=match):
        export_to_video_with_audio(frames, audio, path=tmp_path / "clip.mp4", **kwargs)
    assert not (tmp_path / "clip.mp4").exists()


def test_write_wav_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="`audio` must be 1-D mono samples"):
        write_wav(np.zeros((1, 100)), tmp_path / "a.wav")
    with pytest.raises(ValueError, match="`sample_rate` must be a positive int"):
        write_wav(np.zeros(100), tmp_path / "a.wav", sample_rate=16000.0)


LONG_SECONDS = 3.0


@pytest.fixture(scope="module")
def long_clips(tmp_path_factory) -> dict[tuple[float, int], str]:
    """3 s clips of noise frames (every frame differs) and a tone, at several frame and sample rates."""
    folder = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(0)
    clips = {}
    for fps, source_rate in [(8, 16000), (24, 44100), (25, 16000), (30000 / 1001, 22050)]:
        frames = rng.integers(0, 256, (int(LONG_SECONDS * fps), 16, 16, 3), dtype=np.uint8)
        path = folder / f"clip_{fps:.2f}_{source_rate}.mp4"
        clips[fps, source_rate] = export_to_video_with_audio(
            frames, tone(LONG_SECONDS, source_rate), source_rate, path, fps
        )
    return clips


class CountingContainer:
    """An opened container that counts the frames its `decode` gives out."""

    def __init__(self, container, counts: list[int]):
        self.container, self.counts = container, counts

    def __getattr__(self, name):
        return getattr(self.container, name)

    def __enter__(self):
        self.container.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.container.__exit__(*exc_info)

    def decode(self, *args, **kwargs):
        self.counts.append(0)
        for frame in self.container.decode(*args, **kwargs):
            self.counts[-1] += 1
            yield frame


@pytest.fixture
def decoded_frames(monkeypatch) -> list[int]:
    """The number of frames decoded by each file opened during the test."""
    counts, open_file = [], av.open
    monkeypatch.setattr(av, "open", lambda *args, **kwargs: CountingContainer(open_file(*args, **kwargs), counts))
    return counts


@pytest.mark.parametrize("fps", [8, 24, 25, 30000 / 1001])
def test_read_video_with_a_duration_is_the_prefix_every_clock_of_that_duration_needs(long_clips, fps):
    path = next(path for (rate, _), path in long_clips.items() if rate == fps)
    full = read_video(path)
    assert len(full.frames) == int(LONG_SECONDS * fps)
    for duration in (0.3, 1, 1.25, 2.99, 100.0, float("inf")):
        video = read_video(path, duration=duration)
        count = len(video.frames)
        np.testing.assert_array_equal(video.frames, full.frames[:count])
        np.testing.assert_array_equal(video.timestamps, full.timestamps[:count])
        assert video.fps == full.fps
        if full.timestamps[-1] >= duration:  # every frame before `duration` and the first one at or after it
            assert (video.timestamps[:-1] < duration).all() and video.timestamps[-1] >= duration
        else:
            assert count == len(full.frames)
        for rate in (8, 25):  # CLIP's and Synchformer's clocks take the same frames from the prefix
            ticks = int(rate * min(duration, LONG_SECONDS))
            np.testing.assert_array_equal(
                frame_indices_at_rate(video.timestamps, rate, ticks),
                frame_indices_at_rate(full.timestamps, rate, ticks),
            )


@pytest.mark.parametrize("sample_rate", [8000, 16000, 48000])
@pytest.mark.parametrize("source_rate", [16000, 22050, 44100])
def test_read_audio_with_a_duration_is_the_sample_exact_prefix(long_clips, source_rate, sample_rate):
    path = next(path for (_, rate), path in long_clips.items() if rate == source_rate)
    full = read_audio(path, sample_rate)
    assert len(full) == LONG_SECONDS * sample_rate
    for duration in (0.3, 1, 1.2345, 2.99, 100.0, float("inf")):
        audio = read_audio(path, sample_rate, duration=duration)
        assert len(audio) == round(min(duration * sample_rate, len(full)))
        np.testing.assert_array_equal(audio, full[: len(audio)])


def test_wav_read_with_a_duration_is_the_sample_exact_prefix(tmp_path):
    path = write_wav(tone(1.0, 22050), tmp_path / "tone.wav", sample_rate=22050)
    full = read_audio(path)
    np.testing.assert_array_equal(read_audio(path, duration=0.25), full[:4000])


def test_reading_a_duration_stops_decoding_there(long_clips, decoded_frames):
    path = long_clips[25, 16000]
    video = read_video(path, duration=0.5)
    assert len(video.frames) == 14  # 0.00 s ... 0.52 s
    assert decoded_frames == [14]  # of 75
    audio = read_audio(path, duration=0.5)
    assert len(audio) == 8000
    assert decoded_frames[1] <= 8000 // AAC_FRAME + 2  # of the 47 AAC frames of the file
    read_audio(path)
    assert decoded_frames[2] >= LONG_SECONDS * 16000 // AAC_FRAME  # the hook sees a full read


@pytest.mark.parametrize("reader", [read_video, read_audio])
@pytest.mark.parametrize(
    ("duration", "error", "match"),
    [
        (0, ValueError, r"`duration` must be a positive number of seconds or None, got 0\."),
        (-1.5, ValueError, r"`duration` must be a positive number of seconds or None, got -1\.5\."),
        (float("nan"), ValueError, r"`duration` must be a positive number of seconds or None, got nan\."),
        ("2", TypeError, r"`duration` must be a number of seconds or None, got '2' \(str\)\."),
        (True, TypeError, r"`duration` must be a number of seconds or None, got True \(bool\)\."),
    ],
)
def test_a_bad_duration_is_refused_before_the_file_is_opened(bad_files, reader, duration, error, match):
    with pytest.raises(error, match=match):
        reader(bad_files["missing"], duration=duration)


def test_read_audio_refuses_a_duration_shorter_than_one_sample(bad_files):
    with pytest.raises(ValueError, match=r"`duration` 1e-05 s is shorter than one sample at 16000 Hz\."):
        read_audio(bad_files["wav"], duration=1e-5)
