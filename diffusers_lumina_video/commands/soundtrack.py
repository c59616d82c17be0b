"""What the commands that make sound share: the Lumina-V2A sampling options, their checks, and writing a video with
its generated soundtrack (`add-audio`, and `generate --with-audio`)."""

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from ..processors import SynchformerVideoProcessor
from ..showcase.builtin_models import SOUND_GUIDANCE_SCALES
from ..utils.media_io import export_to_video_with_audio, replace_audio_of_video, write_wav
from ..utils.output_paths import check_output_file


DEFAULT_STEPS = 25
DEFAULT_GUIDANCE_SCALE = 4.5  # the pipeline's; a built-in model has its own (`SOUND_GUIDANCE_SCALES`)
# The shortest video a soundtrack can be made for: one Synchformer segment.
MIN_DURATION = SynchformerVideoProcessor().min_duration


def add_sound_arguments(parser: argparse.ArgumentParser, prefix: str) -> None:
    """`--{prefix}steps`, `--{prefix}guidance-scale`, `--{prefix}negative-prompt` and `--wav`."""
    parser.add_argument(
        f"--{prefix}steps", dest="sound_steps", type=int, default=DEFAULT_STEPS, help="Sampling steps of the sound."
    )
    parser.add_argument(
        f"--{prefix}guidance-scale",
        dest="sound_guidance_scale",
        type=float,
        help=f"Guidance scale of the sound (<= 1 turns guidance off; default {DEFAULT_GUIDANCE_SCALE}, or the one a "
        f"built-in sound model was measured at: {SOUND_GUIDANCE_SCALES}).",
    )
    parser.add_argument(
        f"--{prefix}negative-prompt", dest="sound_negative_prompt", help="What the sound should not be."
    )
    parser.add_argument("--wav", type=Path, help="Also write the sound alone to this .wav file.")


def sound_guidance_scale(model: str) -> float:
    """The default guidance scale of the sound model `model`: a built-in model's own, else the pipeline's."""
    return SOUND_GUIDANCE_SCALES.get(model, DEFAULT_GUIDANCE_SCALE)


def check_sound_arguments(args: argparse.Namespace, prefix: str, model: str) -> None:
    """Checks the sound options, and fills in the guidance scale of the sound model `model` if none was given."""
    if args.sound_guidance_scale is None:
        args.sound_guidance_scale = sound_guidance_scale(model)
    if args.sound_steps < 1:
        raise ValueError(f"`--{prefix}steps` must be >= 1, got {args.sound_steps}.")
    if not math.isfinite(args.sound_guidance_scale) or args.sound_guidance_scale < 0:
        raise ValueError(f"`--{prefix}guidance-scale` must be a finite number >= 0, got {args.sound_guidance_scale}.")
    if args.wav is not None:
        check_output_file(args.wav, "--wav", suffixes=(".wav",))


def write_with_soundtrack(
    pipe,
    frames: np.ndarray,
    fps: float,
    output: Path,
    args: argparse.Namespace,
    prompt: str,
    duration: float | None = None,
    source: Path | None = None,
) -> float:
    """Generates the sound of `frames` with the V2A pipeline `pipe`, writes the frames it covers with it to `output`
    (and the sound to `args.wav`), and returns the sound's length in seconds. When the frames were read from the
    video file `source` and the sound covers all of it, the picture is that file's video stream, copied as it is;
    otherwise it is encoded again, which the command line says."""
    result = pipe(
        video=frames,
        fps=fps,
        prompt=prompt,
        negative_prompt=args.sound_negative_prompt,
        duration=duration,
        num_inference_steps=args.sound_steps,
        guidance_scale=args.sound_guidance_scale,
        generator=torch.Generator().manual_seed(args.seed),
    )
    audio, sample_rate = result.audios[0], result.sample_rate
    seconds = len(audio) / sample_rate
    _write_video(frames, fps, audio, sample_rate, output, source, duration)
    if args.wav is not None:
        write_wav(audio, args.wav, sample_rate)
    return seconds


def _write_video(
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray,
    sample_rate: int,
    output: Path,
    source: Path | None,
    duration: float | None,
) -> None:
    """`output` with the sound: `source`'s own video stream when the sound covers all of it and an mp4 can carry
    that stream, else the frames the sound covers, encoded again (said on the command line for a `source`)."""
    if source is not None:
        if duration is None:
            try:
                replace_audio_of_video(source, audio, sample_rate, output)
                return
            except ValueError as error:
                reason = str(error)
        else:
            reason = "`--duration` cuts the clip."
        print(f"Encoding the picture again: {reason}")
    covered = frames[: max(1, round(len(audio) / sample_rate * fps))]
    export_to_video_with_audio(covered, audio, sample_rate, output, fps)
