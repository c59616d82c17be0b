"""`from_single_file` for the original Lumina-Video checkpoint, and the loading steps it shares with the converter."""

import os
from pathlib import Path

import torch
from accelerate import init_empty_weights

from .single_file_utils import (
    convert_lumina_video_transformer_checkpoint_to_diffusers,
    infer_transformer_config,
    load_model_args,
    load_original_state_dict,
    resolve_checkpoint_paths,
)


def load_original_checkpoint(
    model_cls: type, checkpoint_path: str | os.PathLike, model_args_path: str | os.PathLike | None = None
) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """Reads a released checkpoint (folder, weights file or Hub repository id) without copying its weights.

    Returns an empty `model_cls` (parameters on the meta device) built from the config the tensor shapes describe,
    and the weights under this package's names, checked against that model (nothing missing, left over or of another
    shape). The tensors stay memory-mapped from the file until they are used.
    """
    if model_args_path is not None and not Path(model_args_path).is_file():
        raise FileNotFoundError(f"`model_args_path` {model_args_path} does not exist.")
    weights, found_args = resolve_checkpoint_paths(checkpoint_path)
    args_path = model_args_path or found_args
    model_args = load_model_args(args_path) if args_path is not None else None
    original = load_original_state_dict(weights)
    config = infer_transformer_config(original, model_args, source=f"Checkpoint {weights}")
    with init_empty_weights():
        model = model_cls.from_config(config)
    state_dict = convert_lumina_video_transformer_checkpoint_to_diffusers(original, expected_shapes=model.state_dict())
    return model, state_dict


def storage_dtype(model_cls: type, key: str, dtype: torch.dtype) -> torch.dtype:
    """`dtype` for a weight, except float32 inside the modules the model keeps in float32 (`_keep_in_fp32_modules`),
    the rule Diffusers' `from_pretrained` applies, so converted and loaded models agree."""
    keep_in_fp32 = getattr(model_cls, "_keep_in_fp32_modules", None) or []
    return torch.float32 if any(module in key.split(".") for module in keep_in_fp32) else dtype


def resolve_torch_dtype(torch_dtype: torch.dtype | None, dtype: torch.dtype | None = None) -> torch.dtype | None:
    """The dtype `from_single_file` casts to: `dtype` (the newer name) wins over `torch_dtype`; None keeps the file's."""
    torch_dtype = dtype if dtype is not None else torch_dtype
    if torch_dtype is not None and not (isinstance(torch_dtype, torch.dtype) and torch_dtype.is_floating_point):
        raise ValueError(f"`torch_dtype` must be a floating-point `torch.dtype`, got {torch_dtype!r}.")
    return torch_dtype


class LuminaVideoFromOriginalModelMixin:
    """Loads a released `consolidated.00-of-01.{pth,safetensors}` (plus `model_args.pth` beside it) directly.

    Diffusers' own `FromOriginalModelMixin` only knows the classes listed inside Diffusers, so this plugin class
    carries its own loader built on the same key mapping and checks as the converter.
    """

    @classmethod
    def from_single_file(
        cls,
        pretrained_model_link_or_path: str | os.PathLike,
        torch_dtype: torch.dtype | None = None,
        model_args_path: str | os.PathLike | None = None,
        dtype: torch.dtype | None = None,
    ):
        r"""
        Args:
            pretrained_model_link_or_path: The release folder, the weights file itself, or a Hub repository id such
                as `"Alpha-VLLM/Lumina-Video-f24R960"`.
            torch_dtype (`torch.dtype`, *optional*): Cast the weights to this dtype (the modules listed in
                `_keep_in_fp32_modules` stay in float32, as with `from_pretrained`).
            model_args_path (*optional*): `model_args.pth`, if it is not beside the weights.
            dtype (`torch.dtype`, *optional*): The newer name of `torch_dtype`, as in `from_pretrained`; wins if both
                are given.
        """
        torch_dtype = resolve_torch_dtype(torch_dtype, dtype)
        model, state_dict = load_original_checkpoint(cls, pretrained_model_link_or_path, model_args_path)
        if torch_dtype is not None:
            state_dict = {key: value.to(storage_dtype(cls, key, torch_dtype)) for key, value in state_dict.items()}
        # Parameters are created on the meta device and take the loaded tensors as they are (no second copy);
        # buffers such as the RoPE tables are built for real by `init_empty_weights`.
        model.load_state_dict(state_dict, strict=True, assign=True)
        return model.eval()
