"""`lumina-video convert`: the checkpoint converter (docs/conversion.md)."""

import argparse

from ..conversion import add_arguments, convert_lumina_video_checkpoint


def _run(args: argparse.Namespace) -> int:
    options = {key: value for key, value in vars(args).items() if key not in ("command", "run")}
    convert_lumina_video_checkpoint(**options)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("convert", help="Convert a released Lumina-Video checkpoint to a Diffusers folder.")
    add_arguments(parser).set_defaults(run=_run)
