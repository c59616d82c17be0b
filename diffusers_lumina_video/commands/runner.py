"""Running a command the way a user sees it: their mistake (a bad value, a missing file, a checkpoint that is not
one) ends it with one line on stderr, `<prog>: error: ...`, and exit code 1, never a traceback. `--verbose` or
`LUMINA_VIDEO_DEBUG=1` shows the traceback instead, for bug reports.

Shared by `lumina-video` and the commands that also run as scripts or modules (the conversion script,
`accelerate launch -m diffusers_lumina_video.commands.train_video`).
"""

import argparse
import os
import sys


# Errors the package raises for what the user gave it; the converter's `CheckpointFormatError` is a `ValueError`.
# Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, TypeError, OSError)
DEBUG_ENV = "LUMINA_VIDEO_DEBUG"
ERROR_EXIT_CODE = 1


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,  # a subcommand's parser must not reset the top-level flag
        help=f"Show the full traceback of an error (also: {DEBUG_ENV}=1).",
    )


def run_command(args: argparse.Namespace, prog: str) -> int:
    """Runs `args.run(args)`, turning the package's user-facing errors into one line on stderr and a non-zero exit."""
    debug = getattr(args, "verbose", False) or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return args.run(args) or 0
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"{prog}: error: {_one_line(error)}", file=sys.stderr)
        return ERROR_EXIT_CODE


def _one_line(error: BaseException) -> str:
    message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        message = f"{error.strerror}: {error.filename}"  # `[Errno 2] No such file or directory: 'x'` without errno
    return message or type(error).__name__
