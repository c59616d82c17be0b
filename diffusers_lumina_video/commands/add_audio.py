"""`lumina-video add-audio`: a synchronized soundtrack for a video, written as an mp4 of the picture and the sound."""

import argparse
import math
from pathlib import Path

import torch

from ..showcase.builtin_models import TINY_RANDOM_ID, TINY_SHAPES_V2A_ID
from ..utils.media_io import read_video
from ..utils.output_paths import check_output_file
from .generate import DTYPES, check_model_id, default_dtype, load_pipeline
from .lora_options import add_lora_arguments, apply_loras, checked_loras
from .soundtrack import MIN_DURATION, add_sound_arguments, check_sound_arguments, write_with_soundtrack


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "add-audio", help="Generate a soundtrack for a video with a Lumina-V2A model and write video + sound as mp4."
    )
    parser.add_argument("video", type=Path, help="The video file (a sound track it has is replaced).")
    parser.add_argument(
        "--model",
        default=TINY_SHAPES_V2A_ID,
        help=f"A Lumina-V2A pipeline folder or Hub id, `{TINY_SHAPES_V2A_ID}` (the default: the built-in model that "
        f"sounds `tiny-shapes`' bouncing shapes) or `{TINY_RANDOM_ID}` (a tiny random-weight one).",
    )
    parser.add_argument("--output", required=True, type=Path, help="The .mp4 file to write.")
    parser.add_argument("--prompt", default="", help="What the sound should be (optional).")
    parser.add_argument("--duration", type=float, help="Seconds of sound from the start (default: the whole video).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="Default: bf16 on CUDA, fp32 on CPU.")
    add_sound_arguments(parser, prefix="")
    add_lora_arguments(parser, family="v2a")
    parser.set_defaults(run=run)


def _check_args(args: argparse.Namespace) -> None:
    """Everything that can be checked before loading a model."""
    if not args.video.is_file():
        raise FileNotFoundError(f"`VIDEO` {args.video} does not exist.")
    check_output_file(args.output, "--output", suffixes=(".mp4",))
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration >= MIN_DURATION):
        raise ValueError(
            f"`--duration` must be at least {MIN_DURATION} s (one Synchformer segment), got {args.duration}."
        )
    if not 0 <= args.seed < 2**63:
        raise ValueError(f"`--seed` must be an integer in [0, 2**63), got {args.seed}.")
    check_sound_arguments(args, prefix="", model=args.model)
    check_model_id(args.model, "--model", family="v2a")


def run(args: argparse.Namespace) -> int:
    from ..pipelines import LuminaV2APipeline

    _check_args(args)
    loras = checked_loras(args, "", args.model, LuminaV2APipeline)
    # Refuses a file that is not a video before the model loads; with `--duration`, decodes only what is used.
    video = read_video(args.video, duration=args.duration)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = DTYPES[args.dtype] if args.dtype else default_dtype(device)
    pipe = load_pipeline(args.model, dtype, LuminaV2APipeline)
    apply_loras(pipe, loras, args.fuse_lora)
    pipe.to(device)
    seconds = write_with_soundtrack(
        pipe, video.frames, video.fps, args.output, args, args.prompt, args.duration, source=args.video
    )
    print(f"Wrote {args.output}: {seconds:.2f} s of sound")
    return 0
