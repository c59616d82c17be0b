"""`lumina-video train-video` (alias `train-lora`): LoRA or full training from a config file and/or flags.

    lumina-video train-video --config lora.yaml                     # prepare the data if needed, then train
    lumina-video train-video --config lora.yaml --prepare_only      # only cache latents and text features
    lumina-video train-video --config full.yaml --training_mode full
    accelerate launch --num_processes 2 -m diffusers_lumina_video.commands.train_video --config lora.yaml

Every setting of `TrainingConfig` is also a flag (`--max_train_steps 500` or `--max-train-steps 500`); flags
override the file.
"""

import argparse
import dataclasses
import logging
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..training.config import TrainingConfig, load_training_config
from .runner import add_verbose_argument, run_command


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


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting (`--max_train_steps` and `--max-train-steps`); only flags given on the command line are
    set, so they override the config file without resetting its other values."""
    hints = typing.get_type_hints(TrainingConfig)
    for f in dataclasses.fields(TrainingConfig):
        names = [f"--{f.name}"] + ([f"--{f.name.replace('_', '-')}"] if "_" in f.name else [])
        names += list(f.metadata["aliases"])
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": f.metadata["help"]}
        if hints[f.name] is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hints[f.name]) is list or list in [
            typing.get_origin(a) for a in typing.get_args(hints[f.name])
        ]:
            kwargs["nargs"] = "+"
        parser.add_argument(*names, **kwargs)


def config_from_args(args: argparse.Namespace, model_family: str = "video") -> TrainingConfig:
    """The config file named by `--config` (if any) with the flags given on top, validated."""
    overrides = {name: getattr(args, name) for name in TrainingConfig.field_names() if hasattr(args, name)}
    return load_training_config(getattr(args, "config", None), overrides, model_family)


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
    parser = argparse.ArgumentParser(prog=f"lumina-video train-{model_family}", description=description)
    add_arguments(parser, model_family)
    add_verbose_argument(parser)
    return run_command(parser.parse_args(argv), prog=parser.prog)


def main(argv: Sequence[str] | None = None) -> int:
    """The same command as a module, for `accelerate launch -m diffusers_lumina_video.commands.train_video`."""
    return main_for("video", DESCRIPTION, argv)


if __name__ == "__main__":
    raise SystemExit(main())
