"""`lumina-video convert`: the checkpoint converter (docs/conversion.md); also the conversion script's options."""

import argparse
import logging
from collections.abc import Sequence

from ..conversion import (
    DEFAULT_MAX_SHARD_SIZE,
    DEFAULT_SAMPLING_PRESET,
    DEFAULT_TEXT_ENCODER,
    DEFAULT_VAE,
    DTYPES,
    convert_lumina_video_checkpoint,
)
from ..pipelines import SAMPLING_PRESETS
from .runner import add_verbose_argument, run_command


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("convert", help="Convert a released Lumina-Video checkpoint to a Diffusers folder.")
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The converter's command-line options, one per argument of `convert_lumina_video_checkpoint`."""
    parser.add_argument("--checkpoint_path", required=True, help="Release folder, weights file or Hub repository id.")
    parser.add_argument("--output_path", required=True, help="Folder to write.")
    parser.add_argument("--transformer_only", action="store_true", help="Write the transformer alone.")
    parser.add_argument("--dtype", choices=list(DTYPES), default="bf16", help="Dtype of the written weights.")
    parser.add_argument("--model_args_path", help="`model_args.pth`, if it is not beside the weights.")
    parser.add_argument(
        "--text_encoder_path", default=DEFAULT_TEXT_ENCODER, help="Gemma-2-2B: local folder or Hub id."
    )
    parser.add_argument("--tokenizer_path", help="Defaults to `--text_encoder_path`.")
    parser.add_argument("--vae_path", default=DEFAULT_VAE, help="CogVideoX-2b: local folder or Hub id.")
    parser.add_argument("--vae_subfolder", default="vae", help="The VAE's subfolder in `--vae_path` ('' for none).")
    parser.add_argument(
        "--sampling_preset",
        choices=list(SAMPLING_PRESETS),
        default=DEFAULT_SAMPLING_PRESET,
        help="Sampling preset whose time shift the scheduler takes.",
    )
    parser.add_argument("--base_model", help="Hub id the model card names as the source model.")
    parser.add_argument("--max_shard_size", default=DEFAULT_MAX_SHARD_SIZE, help="Largest weights shard, e.g. 2GB.")
    parser.add_argument("--overwrite", action="store_true", help="Replace a non-empty `--output_path`.")
    parser.add_argument("--push_to_hub", metavar="REPO", help="Upload the finished folder to this Hub repository.")
    parser.add_argument("--private", action="store_true", help="Create the `--push_to_hub` repository as private.")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Converts as the parsed options say (`lumina-video convert` and the conversion script)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options = {key: value for key, value in vars(args).items() if key not in ("command", "run", "verbose")}
    convert_lumina_video_checkpoint(**options)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The conversion script (`conversion/convert_lumina_video_to_diffusers.py`), with the same options."""
    parser = add_arguments(argparse.ArgumentParser(description="Convert a Lumina-Video checkpoint to Diffusers."))
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    return run_command(args, prog=parser.prog)
