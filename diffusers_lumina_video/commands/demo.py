"""`lumina-video demo`: a local web page to try a model (needs the `[demo]` extra)."""

import argparse

from ..showcase.builtin_models import TINY_SHAPES_ID


INSTALL_HINT = 'The demo needs Gradio: pip install "diffusers-lumina-video[demo]"'


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="Start a local web page to generate videos from prompts.")
    parser.add_argument(
        "--model",
        default=TINY_SHAPES_ID,
        help=f"The model the page starts with: a pipeline folder or Hub id (default: `{TINY_SHAPES_ID}`, the built-in "
        "model trained on moving shapes).",
    )
    parser.add_argument(
        "--audio-model",
        help="A Lumina-V2A pipeline folder or Hub id, to add sound to the videos (default: the built-in video "
        "model's own sound model, `tiny-shapes-v2a` for `tiny-shapes`).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default: this machine only).")
    parser.add_argument("--port", type=int, help="Port to listen on (default: the first free one from 7860).")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.port is not None and not 1 <= args.port <= 65535:
        raise ValueError(f"`--port` must be in 1..65535, got {args.port}.")
    try:
        from .. import demo
    except ImportError as error:
        if error.name != "gradio":
            raise
        print(INSTALL_HINT)
        return 1
    model = demo.check_model(args.model, "video", "--model")
    audio_model = None if args.audio_model is None else demo.check_model(args.audio_model, "v2a", "--audio-model")
    demo.launch(demo.build_demo(model, audio_model), host=args.host, port=args.port)
    return 0
