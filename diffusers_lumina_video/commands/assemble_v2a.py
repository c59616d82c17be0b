"""`lumina-video assemble-v2a`: an untrained Lumina-V2A pipeline folder from released component models."""

import argparse
from pathlib import Path

from ..pipelines.lumina_v2a.assembly import (
    DEFAULT_AUDIOLDM_MODEL,
    DEFAULT_CLIP_MODEL,
    TRANSFORMER_SETTINGS,
    assemble_v2a_pipeline,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "assemble-v2a",
        help="Build a Lumina-V2A pipeline (CLIP, AudioLDM, Synchformer and a new transformer) to train from.",
    )
    parser.add_argument("--synchformer", required=True, type=Path, help="MMAudio's synchformer_state_dict.pth.")
    parser.add_argument("--output", required=True, type=Path, help="The pipeline folder to write.")
    parser.add_argument("--clip", default=DEFAULT_CLIP_MODEL, help="CLIP folder or Hub id (text and image towers).")
    parser.add_argument(
        "--audioldm", default=DEFAULT_AUDIOLDM_MODEL, help="AudioLDM folder or Hub id with vae/ and vocoder/."
    )
    parser.add_argument("--synchformer-heads", type=int, default=12, help="Attention heads of the Synchformer.")
    for name in ("hidden_size", "num_layers", "num_attention_heads", "num_kv_heads", "context_dim"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, help=f"Transformer `{name}`.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the transformer's initial weights.")
    parser.add_argument("--overwrite", action="store_true", help="Replace a non-empty `--output`.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = {name: getattr(args, name) for name in TRANSFORMER_SETTINGS if getattr(args, name, None) is not None}
    assemble_v2a_pipeline(
        output_path=args.output,
        synchformer_checkpoint=args.synchformer,
        clip_model=args.clip,
        audioldm_model=args.audioldm,
        transformer_settings=settings,
        synchformer_num_attention_heads=args.synchformer_heads,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(f"Wrote {args.output}: a Lumina-V2A pipeline with an untrained transformer, ready to train.")
    return 0
