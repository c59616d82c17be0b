"""Subcommands of `lumina-video`. Each module exposes `register(subparsers)`, which adds its parser and sets
`run=<callable(args) -> int | None>` as the parser default."""

from . import add_audio, assemble_v2a, convert, demo, generate, train_v2a, train_video


COMMANDS = [generate, add_audio, convert, assemble_v2a, train_video, train_v2a, demo]
