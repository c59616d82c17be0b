"""`lumina-video` command line: one subcommand per module in `diffusers_lumina_video.commands`.

A user's mistake ends the command with one line on stderr, `lumina-video <command>: error: ...`, and exit code 1,
never a traceback (`commands/runner.py`); `--verbose` or `LUMINA_VIDEO_DEBUG=1` shows the traceback instead.
"""

import argparse
from collections.abc import Sequence

from .commands import COMMANDS
from .commands.runner import ERROR_EXIT_CODE, add_verbose_argument, run_command


__all__ = ["ERROR_EXIT_CODE", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lumina-video", description="Lumina-Video for Diffusers.")
    add_verbose_argument(parser)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    for subparser in dict.fromkeys(subparsers.choices.values()):  # an alias maps to its command's parser again
        add_verbose_argument(subparser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args, prog=f"lumina-video {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
