"""Subcommands of `lumina-video`. Each module exposes `register(subparsers)`, which adds its parser and sets
`run=<callable(args) -> int | None>` as the parser default."""

from . import convert, demo, generate, train_lora


COMMANDS = [generate, convert, train_lora, demo]
