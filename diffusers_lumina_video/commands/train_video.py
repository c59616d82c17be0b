"""`lumina-video train-video` (alias `train-lora`): LoRA or full training from a config file and/or flags.

    lumina-video train-video --config lora.yaml                     # prepare the data if needed, then train
    lumina-video train-video --config lora.yaml --prepare_only      # only cache latents and text features
    lumina-video train-video --config full.yaml --training_mode full
    accelerate launch --num_processes 2 -m diffusers_lumina_video.commands.train_video --config lora.yaml

Every setting of `TrainingConfig` is also a flag (`--max_train_steps 500` or `--max-train-steps 500`); flags
override the file.
"""

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from ..training.config import add_config_arguments, config_from_args


DESCRIPTION = "Train the Lumina-Video transformer (a LoRA, or every weight) on your videos and images."


def add_arguments(parser: argparse.ArgumentParser, model_family: str) -> None:
    """The flags of a training command for `model_family`: `--config`, `--prepare_only` and every setting."""
    parser.add_argument("--config", type=Path, help="YAML, JSON or TOML file of settings; flags override it.")
    parser.add_argument(
        "--prepare_only",
        "--prepare-only",
        action="store_true",
        help="Check the dataset and cache its features, then stop (run it in one process).",
    )
    add_config_arguments(parser)
    parser.set_defaults(run=run, command_family=model_family)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train-video", aliases=["train-lora"], help=DESCRIPTION, description=DESCRIPTION)
    add_arguments(parser, "video")


def run(args: argparse.Namespace) -> int:
    from ..training import prepare_data, train

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    config = config_from_args(args, model_family=args.command_family)
    if args.prepare_only:
        prepare_data(config)
    else:
        train(config)
    return 0


def main_for(model_family: str, description: str, argv: Sequence[str] | None) -> int:
    """A training command run as a module, for `accelerate launch -m ...`."""
    from ..cli import add_verbose_argument, run_command

    parser = argparse.ArgumentParser(prog=f"lumina-video train-{model_family}", description=description)
    add_arguments(parser, model_family)
    add_verbose_argument(parser)
    return run_command(parser.parse_args(argv), prog=parser.prog)


def main(argv: Sequence[str] | None = None) -> int:
    """The same command as a module, for `accelerate launch -m diffusers_lumina_video.commands.train_video`."""
    return main_for("video", DESCRIPTION, argv)


if __name__ == "__main__":
    raise SystemExit(main())
