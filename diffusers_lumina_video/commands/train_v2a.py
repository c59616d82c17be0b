"""`lumina-video train-v2a`: LoRA or full training of Lumina-V2A on video files with sound.

    lumina-video train-v2a --config v2a.yaml                       # prepare the clips if needed, then train
    lumina-video train-v2a --config v2a.yaml --prepare_only        # only cache the audio latents and features
    accelerate launch --num_processes 2 -m diffusers_lumina_video.commands.train_v2a --config v2a.yaml

The settings are those of `train-video` (`TrainingConfig`) with `model_family: v2a`: every one is also a flag, and
flags override the file.
"""

import argparse
from collections.abc import Sequence

from .train_video import add_arguments, main_for


DESCRIPTION = "Train the Lumina-V2A transformer (a LoRA, or every weight) on your videos with sound."


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train-v2a", help=DESCRIPTION, description=DESCRIPTION)
    add_arguments(parser, "v2a")


def main(argv: Sequence[str] | None = None) -> int:
    """The same command as a module, for `accelerate launch -m diffusers_lumina_video.commands.train_v2a`."""
    return main_for("v2a", DESCRIPTION, argv)


if __name__ == "__main__":
    raise SystemExit(main())
