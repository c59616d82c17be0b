"""Starting a generation from a video (video-to-video), for `generate --video` and the demo: the options, their
checks before any model loads, and the video-to-video pipeline over the loaded text-to-video pipeline's models."""

import argparse
from dataclasses import dataclass
from pathlib import Path

from ..pipelines import LuminaVideoVideoToVideoPipeline
from ..pipelines.lumina_video.pipeline_lumina_video_video2video import DEFAULT_STRENGTH, check_strength, first_step
from ..utils.media_io import VideoFrames, read_video_argument, video_arguments


@dataclass(frozen=True)
class StartVideo:
    """A video to start from, read and checked, with the strength to use."""

    clip: VideoFrames
    strength: float


def add_start_video_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--video",
        type=Path,
        help="Start from this video instead of noise (video-to-video): its first frames, one per output frame, "
        "resized to cover the output size and centre-cropped. The written video keeps its frame rate.",
    )
    parser.add_argument(
        "--strength",
        type=float,
        help=f"With --video: the share of the sampling steps that run, in (0, 1] (default {DEFAULT_STRENGTH}); "
        "lower keeps more of the video, 1 starts from noise.",
    )


def read_start_video(
    video: str | Path | None,
    strength: float | None,
    kwargs: dict,
    num_frames_given: bool,
    names: tuple[str, str, str] = ("--video", "--strength", "--num-frames"),
) -> StartVideo | None:
    """Reads and checks the video to start from, before any model loads. Without a given frame count,
    `kwargs["num_frames"]` (the model's) becomes the video's frame count where that is shorter. `names` are the
    options as the user sees them (video, strength, frame count)."""
    video_name, strength_name, frames_name = names
    if video is None:
        if strength is not None:
            raise ValueError(f"`{strength_name}` needs `{video_name}` (the video to start from).")
        return None
    strength = DEFAULT_STRENGTH if strength is None else strength
    try:
        check_strength(strength)
    except ValueError:
        raise ValueError(f"`{strength_name}` must be a number in (0, 1], got {strength}.") from None
    clip = read_video_argument(video_arguments(str(video))[0])
    available = len(clip.frames)  # at least one: a file without frames is refused when read
    if num_frames_given and kwargs["num_frames"] > available:
        raise ValueError(
            f"`{frames_name}` is {kwargs['num_frames']}, but `{video_name}` has only {available} frames; pass at "
            f"most {available}."
        )
    kwargs["num_frames"] = min(kwargs["num_frames"], available)
    if kwargs["num_inference_steps"] >= 1:  # else the step check names the bad value
        first_step(kwargs["num_inference_steps"], strength)
    return StartVideo(clip=clip, strength=strength)


def video_to_video(pipe, start: StartVideo, kwargs: dict) -> tuple[LuminaVideoVideoToVideoPipeline, dict]:
    """The video-to-video pipeline on `pipe`'s models, and the call arguments with the video and strength."""
    return LuminaVideoVideoToVideoPipeline.from_pipe(pipe), {
        **kwargs,
        "video": start.clip.frames,
        "strength": start.strength,
    }
