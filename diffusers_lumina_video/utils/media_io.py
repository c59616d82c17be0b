"""Media files for video-to-audio work, through PyAV (FFmpeg): a video's frames with their timestamps, its sound as
16 kHz mono, wav files, and mp4 files that carry a video and its generated sound together."""

import contextlib
import os
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import PIL.Image
import torch

from .atomic import atomic_output_file


AUDIO_SAMPLE_RATE = 16000
VIDEO_CODEC = "libx264"
AUDIO_CODEC = "aac"


@dataclass(frozen=True)
class VideoFrames:
    """A video's decoded frames: `frames [T, H, W, 3]` RGB uint8, `timestamps [T]` (presentation times in seconds),
    and the stream's frame rate `fps`."""

    frames: np.ndarray
    timestamps: np.ndarray
    fps: float


def read_video(path: str | os.PathLike, duration: float | None = None) -> VideoFrames:
    """Every frame of the first video stream of `path`, in presentation order.

    With `duration` (seconds from the start), decoding stops at the first frame at or after it, and that frame is
    kept: the result is a prefix of the full read holding every frame that a fixed-rate clock with ticks before
    `duration` takes (`frame_indices_at_rate` takes the first frame at or after each tick), so a clip of a long file
    costs only the clip.
    """
    limit = _check_duration(duration)
    with _open_media(path) as container:
        if not container.streams.video:
            raise ValueError(f"`path` {path} has no video stream.")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        if rate is None:
            raise ValueError(f"`path` {path} does not state the frame rate of its video stream.")
        fps = float(rate)
        frames, timestamps = [], []
        for index, frame in enumerate(container.decode(stream)):
            frames.append(frame.to_ndarray(format="rgb24"))
            timestamps.append(index / fps if frame.time is None else frame.time)
            if timestamps[-1] >= limit:
                break
    if not frames:
        raise ValueError(f"`path` {path} has a video stream but no frames.")
    return VideoFrames(frames=np.stack(frames), timestamps=np.array(timestamps, dtype=np.float64), fps=fps)


def frame_indices_at_rate(timestamps: np.ndarray, rate: float, count: int) -> np.ndarray:
    """Which decoded frame each tick of a fixed-rate clock shows, as MMAudio samples a video for CLIP (8 fps) and
    Synchformer (25 fps): tick `k` takes the first frame whose timestamp is at or after it, so a frame repeats when
    several ticks fall before the next one. The clock adds `1 / rate` in floating point, as MMAudio's `read_frames`
    does; on a video stamped exactly on the same grid the sum overshoots for most `k >= 6` and those ticks take the
    next frame, which is what MMAudio's features were computed from.

    Returns at most `count` indices: fewer when the video ends before the last tick.
    """
    indices, next_tick, step = [], 0.0, 1.0 / rate
    for index, time in enumerate(np.asarray(timestamps, dtype=np.float64)):
        while time >= next_tick and len(indices) < count:
            indices.append(index)
            next_tick += step
    return np.asarray(indices, dtype=np.int64)


def video_arguments(video: Any) -> list[Any]:
    """The videos a pipeline's `video` argument holds, one or several: a file path, frames `[F, H, W, 3]`, a list of
    PIL images, or a list (or a `[B, F, H, W, 3]` array or tensor) of those. Missing files are refused by name."""
    is_batch = isinstance(video, (list, tuple)) and len(video) > 0 and not isinstance(video[0], PIL.Image.Image)
    is_batch = is_batch or (isinstance(video, (np.ndarray, torch.Tensor)) and video.ndim == 5)
    videos = list(video) if is_batch else [video]
    if not videos:
        raise ValueError("`video` is empty: pass a path, frames [F, H, W, 3] or a list of PIL images.")
    missing = [str(v) for v in videos if isinstance(v, (str, os.PathLike)) and not os.path.isfile(v)]
    if missing:
        raise FileNotFoundError(f"`video` {', '.join(missing)} does not exist.")
    return videos


def read_video_argument(path: str | os.PathLike) -> VideoFrames:
    """A video file given as a pipeline's `video`; a file FFmpeg cannot read, or one without video frames, is refused
    as `video`."""
    try:
        return read_video(path)
    except ValueError as error:
        raise ValueError(f"`video` cannot be used: {error}") from error


def frames_argument(video: Any) -> np.ndarray:
    """A video given in memory as a pipeline's `video` (frames `[F, H, W, 3]` uint8 or float in [0, 1], or a list of
    PIL images), as uint8 `[F, H, W, 3]`."""
    if isinstance(video, (list, tuple)):
        if not video:
            raise ValueError("`video` is an empty list of frames.")
        if not all(isinstance(frame, PIL.Image.Image) for frame in video):
            raise ValueError("`video` as a list must hold PIL images (or be a list of videos).")
        frames = np.stack([np.asarray(frame.convert("RGB")) for frame in video])
    elif isinstance(video, (np.ndarray, torch.Tensor)):
        frames = video.detach().cpu().numpy() if isinstance(video, torch.Tensor) else np.asarray(video)
    else:
        raise ValueError(f"`video` must be a path, frames [F, H, W, 3] or a list of PIL images, got {type(video)}.")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"`video` frames must be [F, H, W, 3] (RGB, channels last), got shape {frames.shape}.")
    if frames.shape[0] == 0:
        raise ValueError("`video` has no frames.")
    if frames.dtype != np.uint8:
        if not np.isfinite(frames).all() or frames.min() < 0 or frames.max() > 1:
            raise ValueError("`video` frames as floats must be finite and in [0, 1] (or pass uint8 frames).")
        frames = (frames * 255).round().astype(np.uint8)
    return frames


def read_audio(
    path: str | os.PathLike, sample_rate: int = AUDIO_SAMPLE_RATE, duration: float | None = None
) -> np.ndarray:
    """The first audio stream of `path` as mono float32 samples in [-1, 1] at `sample_rate`, resampled and mixed
    down by FFmpeg's resampler.

    With `duration`, only its first `round(duration * sample_rate)` samples (all of them if the stream is shorter):
    exactly the prefix of the full read, with decoding stopped as soon as they are out of the resampler.
    """
    _check_positive_int(sample_rate, "sample_rate")
    limit = _check_duration(duration)
    wanted = None if limit == float("inf") else round(limit * sample_rate)
    if wanted == 0:
        raise ValueError(f"`duration` {duration} s is shorter than one sample at {sample_rate} Hz.")
    with _open_media(path) as container:
        if not container.streams.audio:
            raise ValueError(f"`path` {path} has no audio stream.")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks, count = [], 0
        for frame in container.decode(stream):
            for resampled in resampler.resample(frame):
                chunks.append(resampled.to_ndarray()[0])
                count += len(chunks[-1])
            if wanted is not None and count >= wanted:
                break
        else:  # the whole stream was decoded: what the resampler still holds is its end
            chunks.extend(resampled.to_ndarray()[0] for resampled in resampler.resample(None))
        declared = None if stream.duration is None else round(stream.duration * stream.time_base * sample_rate)
    if not chunks:
        raise ValueError(f"`path` {path} has an audio stream but no samples.")
    # Decoders of frame-based codecs (AAC) return the padding of the last frame; the stream's duration excludes it.
    return np.concatenate(chunks)[:declared][:wanted].astype(np.float32, copy=False)


def write_wav(audio: np.ndarray | torch.Tensor, path: str | os.PathLike, sample_rate: int = AUDIO_SAMPLE_RATE) -> str:
    """Writes mono samples in [-1, 1] (clipped) as a 16-bit PCM wav file; returns the path."""
    samples = _audio_samples(audio)
    _check_positive_int(sample_rate, "sample_rate")
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with atomic_output_file(path) as temporary, wave.open(str(temporary), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(sample_rate)
        file.writeframes(pcm.tobytes())
    return str(path)


def export_to_video_with_audio(
    frames: list[np.ndarray] | list[PIL.Image.Image] | np.ndarray | torch.Tensor,
    audio: np.ndarray | torch.Tensor,
    sample_rate: int,
    path: str | os.PathLike,
    fps: float,
) -> str:
    """Writes an mp4 of `frames` (H.264) and mono `audio` (AAC); returns the path.

    `frames` are taken as Diffusers' `export_to_video` takes them: PIL images, or arrays `[H, W, 3]` (float in
    [0, 1] or uint8), as a list or stacked `[T, H, W, 3]`.
    """
    video = _video_frames(frames)
    samples = _audio_samples(audio)
    _check_positive_int(sample_rate, "sample_rate")
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction)) or not 0 < fps < float("inf"):
        raise ValueError(f"`fps` must be a positive number, got {fps!r}.")
    with atomic_output_file(path) as temporary, av.open(str(temporary), mode="w") as container:
        video_stream = container.add_stream(VIDEO_CODEC, rate=Fraction(fps).limit_denominator(1001))
        video_stream.height, video_stream.width = video.shape[1:3]
        video_stream.pix_fmt = "yuv420p"
        audio_stream = container.add_stream(AUDIO_CODEC, rate=sample_rate, layout="mono")
        for index, image in enumerate(video):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(video_stream.encode(frame))
        container.mux(video_stream.encode(None))
        sound = av.AudioFrame.from_ndarray(samples[None], format="flt", layout="mono")
        sound.sample_rate = sample_rate
        sound.pts = 0
        container.mux(audio_stream.encode(sound))
        container.mux(audio_stream.encode(None))
    return str(path)


def replace_audio_of_video(
    video_path: str | os.PathLike, audio: np.ndarray | torch.Tensor, sample_rate: int, path: str | os.PathLike
) -> str:
    """Writes an mp4 of the first video stream of `video_path`, copied packet by packet (not decoded, so the picture
    is exactly the source's), and mono `audio` (AAC) in place of any sound it had; returns the path.

    Raises `ValueError` when the mp4 container cannot carry that video stream as it is (e.g. its codec); nothing is
    written then.
    """
    samples = _audio_samples(audio)
    _check_positive_int(sample_rate, "sample_rate")
    with _open_media(video_path) as source:
        if not source.streams.video:
            raise ValueError(f"`video_path` {video_path} has no video stream.")
        source_stream = source.streams.video[0]
        try:
            with atomic_output_file(path) as temporary, av.open(str(temporary), mode="w") as container:
                video_stream = container.add_stream_from_template(source_stream)
                audio_stream = container.add_stream(AUDIO_CODEC, rate=sample_rate, layout="mono")
                for packet in source.demux(source_stream):
                    if packet.dts is None:  # the demuxer's empty end-of-stream packet
                        continue
                    packet.stream = video_stream
                    container.mux(packet)
                sound = av.AudioFrame.from_ndarray(samples[None], format="flt", layout="mono")
                sound.sample_rate = sample_rate
                sound.pts = 0
                container.mux(audio_stream.encode(sound))
                container.mux(audio_stream.encode(None))
        except (av.error.FFmpegError, ValueError) as error:
            codec = source_stream.codec_context.name
            raise ValueError(
                f"An mp4 cannot carry the {codec} video stream of {video_path} as it is ({error})."
            ) from error
    return str(path)


@contextlib.contextmanager
def _open_media(path: str | os.PathLike) -> Iterator[av.container.InputContainer]:
    """Opens `path` for reading; FFmpeg's errors on it (not a media file, corrupt data) become a `ValueError`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"`path` {path} is not a file.")
    try:
        with av.open(str(path)) as container:
            yield container
    except av.error.FFmpegError as error:
        raise ValueError(f"`path` {path} is not a media file FFmpeg can read ({error}).") from error


def _video_frames(frames) -> np.ndarray:
    """`frames` as RGB uint8 `[T, H, W, 3]` with even H and W (H.264's 4:2:0 chroma halves both)."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if isinstance(frames, np.ndarray):
        frames = list(frames) if frames.ndim == 4 else [frames]
    if not isinstance(frames, (list, tuple)) or len(frames) == 0:
        raise ValueError(
            "`frames` must be a non-empty list of PIL images or [H, W, 3] arrays, or a [T, H, W, 3] array."
        )
    images = []
    for index, frame in enumerate(frames):
        if isinstance(frame, PIL.Image.Image):
            frame = np.asarray(frame.convert("RGB"))
        elif not isinstance(frame, np.ndarray):
            raise TypeError(f"`frames[{index}]` must be a PIL image or a numpy array, got {type(frame)}.")
        elif np.issubdtype(frame.dtype, np.floating):
            frame = np.round(np.clip(frame, 0.0, 1.0) * 255)
        if frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(f"`frames[{index}]` must be [H, W, 3] RGB, got shape {frame.shape}.")
        images.append(frame.astype(np.uint8, copy=False))
    if len({image.shape for image in images}) > 1:
        raise ValueError(f"`frames` must all have one size, got {sorted({image.shape for image in images})}.")
    height, width = images[0].shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"`frames` must have an even height and width for H.264 (4:2:0), got {height}x{width}.")
    return np.stack(images)


def _audio_samples(audio) -> np.ndarray:
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().float().numpy()
    if not isinstance(audio, np.ndarray):
        raise TypeError(f"`audio` must be a 1-D numpy array or torch tensor, got {type(audio)}.")
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"`audio` must be 1-D mono samples and not empty, got shape {audio.shape}.")
    if not np.isfinite(audio).all():
        raise ValueError("`audio` contains NaN or infinite samples.")
    return audio.astype(np.float32, copy=False)


def _check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")


def _check_duration(duration) -> float:
    """`duration` (seconds from the start, or None for the whole file) as the time where reading stops."""
    if duration is None:
        return float("inf")
    if isinstance(duration, bool) or not isinstance(duration, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"`duration` must be a number of seconds or None, got {duration!r} ({type(duration).__name__})."
        )
    if not duration > 0:
        raise ValueError(f"`duration` must be a positive number of seconds or None, got {duration!r}.")
    return float(duration)
