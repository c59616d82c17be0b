"""Converts a released Lumina-Video checkpoint into a Diffusers folder.

    python conversion/convert_lumina_video_to_diffusers.py --checkpoint_path PATH --output_path OUT \
        [--transformer_only] [--dtype {fp32,fp16,bf16}]

Run with `--help` for every option; docs/conversion.md explains them. The work is done by
`diffusers_lumina_video.conversion` (`convert_lumina_video_checkpoint`), which can also be called from Python.
"""

from diffusers_lumina_video.commands.convert import main


if __name__ == "__main__":
    raise SystemExit(main())
