"""`lumina-video convert`: the checkpoint converter (docs/conversion.md)."""

import argparse

from ..conversion import add_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("convert", help="Convert a released Lumina-Video checkpoint to a Diffusers folder.")
    add_arguments(parser)
