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


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML, JSON or TOML file of settings; flags override it.")
    parser.add_argument(
        "--prepare_only",
        "--prepare-only",
        action="store_true",
        help="Check the dataset and cache its latents and text features, then stop (run it in one process).",
    )
    add_config_arguments(parser)
    parser.set_defaults(run=run)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train-video", aliases=["train-lora"], help=DESCRIPTION, description=DESCRIPTION)
    _add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..training import prepare_data, train

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    config = config_from_args(args)
    if args.prepare_only:
        prepare_data(config)
    else:
        train(config)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The same command as a module, for `accelerate launch -m diffusers_lumina_video.commands.train_video`."""
    from ..cli import add_verbose_argument, run_command

    parser = argparse.ArgumentParser(prog="lumina-video train-video", description=DESCRIPTION)
    _add_arguments(parser)
    add_verbose_argument(parser)
    return run_command(parser.parse_args(argv), prog=parser.prog)


if __name__ == "__main__":
    raise SystemExit(main())
