"""What the commands that make sound share: the Lumina-V2A sampling options, their checks, and writing a video with
its generated soundtrack (`add-audio`, and `generate --with-audio`)."""

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from ..processors import SynchformerVideoProcessor
from ..utils.media_io import export_to_video_with_audio, write_wav
from ..utils.output_paths import check_output_file


DEFAULT_STEPS = 25
DEFAULT_GUIDANCE_SCALE = 4.5
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
        default=DEFAULT_GUIDANCE_SCALE,
        help="Guidance scale of the sound (<= 1 turns guidance off).",
    )
    parser.add_argument(
        f"--{prefix}negative-prompt", dest="sound_negative_prompt", help="What the sound should not be."
    )
    parser.add_argument("--wav", type=Path, help="Also write the sound alone to this .wav file.")


def check_sound_arguments(args: argparse.Namespace, prefix: str) -> None:
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
) -> float:
    """Generates the sound of `frames` with the V2A pipeline `pipe`, writes the frames it covers with it to `output`
    (and the sound to `args.wav`), and returns the sound's length in seconds."""
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
    export_to_video_with_audio(frames[: max(1, round(seconds * fps))], audio, sample_rate, output, fps)
    if args.wav is not None:
        write_wav(audio, args.wav, sample_rate)
    return seconds
