"""`from_single_file` for the original Lumina-Video checkpoint."""

import os

import torch
from accelerate import init_empty_weights

from .single_file_utils import (
    convert_lumina_video_transformer_checkpoint_to_diffusers,
    infer_transformer_config,
    load_model_args,
    load_original_state_dict,
    resolve_checkpoint_paths,
)


class LuminaVideoFromOriginalModelMixin:
    """Loads a released `consolidated.00-of-01.{pth,safetensors}` (plus `model_args.pth` beside it) directly.

    Diffusers' own `FromOriginalModelMixin` only knows the classes listed inside Diffusers, so this plugin class
    carries its own loader built on the same key mapping as the converter.
    """

    @classmethod
    def from_single_file(
        cls,
        pretrained_model_link_or_path: str | os.PathLike,
        torch_dtype: torch.dtype | None = None,
        model_args_path: str | os.PathLike | None = None,
    ):
        r"""
        Args:
            pretrained_model_link_or_path: The release folder, or the weights file itself.
            torch_dtype (`torch.dtype`, *optional*): Cast the weights to this dtype.
            model_args_path (*optional*): `model_args.pth`, if it is not beside the weights.
        """
        weights, found_args = resolve_checkpoint_paths(pretrained_model_link_or_path)
        args_path = model_args_path or found_args
        model_args = load_model_args(args_path) if args_path is not None else None
        original = load_original_state_dict(weights)
        config = infer_transformer_config(original, model_args)
        state_dict = convert_lumina_video_transformer_checkpoint_to_diffusers(original)
        if torch_dtype is not None:
            state_dict = {key: value.to(torch_dtype) for key, value in state_dict.items()}
        with init_empty_weights():
            model = cls.from_config(config)
        # Parameters are created on the meta device and take the loaded tensors as they are (no second copy);
        # buffers such as the RoPE tables are built for real by `init_empty_weights`.
        model.load_state_dict(state_dict, strict=True, assign=True)
        return model.eval()
