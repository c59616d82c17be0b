"""The original Synchformer checkpoint (`synchformer_state_dict.pth`, as MMAudio ships it): key mapping, config
inference from tensor shapes, and `from_single_file`.

Like the Lumina-Video converter, everything here works on tensors of any device (meta included).
"""

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import init_empty_weights

from .single_file_model import resolve_torch_dtype
from .single_file_utils import CheckpointFormatError, check_keys_and_shapes, listing, load_original_state_dict


SYNCHFORMER_PREFIX = "vfeat_extractor."
# The 2-D patch embedding sets the reference's `pos_embed` length but never runs; the encoder derives that length
# from the frame size instead.
_UNUSED_KEYS = ("patch_embed.proj.weight", "patch_embed.proj.bias")
# Substring renames from the reference names (prefix removed) to `SynchformerEncoder`'s, applied in order.
_RENAMES = (
    ("patch_embed_3d.", "patch_embed."),
    (".timeattn.qkv.", ".time_attn.to_qkv."),
    (".timeattn.proj.", ".time_attn.to_out."),
    (".attn.qkv.", ".space_attn.to_qkv."),
    (".attn.proj.", ".space_attn.to_out."),
    (".norm3.", ".norm_time."),
    (".norm1.", ".norm_space."),
    (".norm2.", ".norm_ff."),
    (".mlp.fc1.", ".ff.net.0.proj."),
    (".mlp.fc2.", ".ff.net.2."),
)
_REQUIRED_KEYS = (
    "patch_embed_3d.proj.weight",
    "pos_embed",
    "temp_embed",
    "blocks.0.mlp.fc1.weight",
)


def _rename_key(key: str) -> str:
    if key.startswith("spatial_attn_agg."):
        # The aggregation layer keeps the parameter names of the `nn.TransformerEncoderLayer` it was.
        rest = key[len("spatial_attn_agg.") :]
        return f"spatial_aggregator.{rest}" if rest == "cls_token" else f"spatial_aggregator.layer.{rest}"
    if key.startswith("norm."):
        return f"norm_out.{key[len('norm.') :]}"
    for old, new in _RENAMES:
        key = key.replace(old, new)
    return key


def visual_branch(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The `vfeat_extractor.` weights with the prefix removed; the rest of the sync model is not used."""
    return {
        key[len(SYNCHFORMER_PREFIX) :]: value
        for key, value in state_dict.items()
        if key.startswith(SYNCHFORMER_PREFIX)
    }


def convert_synchformer_checkpoint_to_diffusers(
    state_dict: Mapping[str, Any], expected_shapes: Mapping[str, Sequence[int]] | None = None
) -> dict[str, Any]:
    """Maps the original state dict (full names, `vfeat_extractor.` prefix included) to `SynchformerEncoder` names.

    With `expected_shapes` it also checks that no weight is missing, left over or of another shape, naming the keys
    (leftovers and wrong shapes by their original names, missing weights by the encoder's). Keys outside
    `vfeat_extractor.` and the unused 2-D patch embedding are dropped.
    """
    original_names = {
        _rename_key(key[len(SYNCHFORMER_PREFIX) :]): key
        for key in state_dict
        if key.startswith(SYNCHFORMER_PREFIX) and key[len(SYNCHFORMER_PREFIX) :] not in _UNUSED_KEYS
    }
    if expected_shapes is not None:
        check_keys_and_shapes(state_dict, original_names, expected_shapes, model_name="Synchformer encoder")
    return {new: state_dict[old] for new, old in original_names.items()}


def _check_num_attention_heads(num_attention_heads: int, hidden_size: int | None = None) -> None:
    if isinstance(num_attention_heads, bool) or not isinstance(num_attention_heads, int) or num_attention_heads < 1:
        raise ValueError(f"`num_attention_heads` must be a positive integer, got {num_attention_heads!r}.")
    if hidden_size is not None and hidden_size % num_attention_heads:
        raise ValueError(
            f"`num_attention_heads` must divide the checkpoint's embed dim {hidden_size}, got {num_attention_heads}."
        )


def infer_synchformer_config(state_dict: Mapping[str, Any], num_attention_heads: int = 12) -> dict[str, Any]:
    """Reads every dimension of the encoder from tensor shapes (original names); the head count is not in the
    weights, so it is given."""
    branch = visual_branch(state_dict)
    missing = [SYNCHFORMER_PREFIX + key for key in _REQUIRED_KEYS if key not in branch]
    if missing:
        raise CheckpointFormatError(f"Not a Synchformer checkpoint: missing {listing(missing)}.")
    hidden_size, in_channels, temporal_patch_size, patch_size, patch_width = branch["patch_embed_3d.proj.weight"].shape
    positions = branch["pos_embed"].shape[1] - 1
    side = math.isqrt(positions)
    if patch_size != patch_width or side * side != positions:
        raise CheckpointFormatError(
            f"Not a Synchformer checkpoint: tubelets of {patch_size}x{patch_width} pixels and {positions} positions "
            "per frame do not describe square frames."
        )
    _check_num_attention_heads(num_attention_heads, hidden_size)
    return {
        "in_channels": in_channels,
        "hidden_size": hidden_size,
        "num_layers": 1 + max(int(key.split(".")[1]) for key in branch if key.startswith("blocks.")),
        "num_attention_heads": num_attention_heads,
        "ffn_dim": branch["blocks.0.mlp.fc1.weight"].shape[0],
        "patch_size": patch_size,
        "temporal_patch_size": temporal_patch_size,
        "frame_size": side * patch_size,
        "num_frames": branch["temp_embed"].shape[1] * temporal_patch_size,
    }


class SynchformerFromOriginalModelMixin:
    """Loads MMAudio's `synchformer_state_dict.pth` directly (pickled tensors only; nothing in the file runs)."""

    @classmethod
    def from_single_file(
        cls,
        pretrained_model_link_or_path: str | os.PathLike,
        num_attention_heads: int = 12,
        torch_dtype: torch.dtype | None = None,
    ):
        r"""
        Args:
            pretrained_model_link_or_path: The `synchformer_state_dict.pth` file.
            num_attention_heads (`int`): Heads of every attention (not stored in the weights; 12 in the release).
            torch_dtype (`torch.dtype`, *optional*): Cast the weights to this dtype.
        """
        torch_dtype = resolve_torch_dtype(torch_dtype)
        _check_num_attention_heads(num_attention_heads)
        path = Path(pretrained_model_link_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"`pretrained_model_link_or_path` {path} is not a file.")
        original = load_original_state_dict(path, kind="Synchformer")
        config = infer_synchformer_config(original, num_attention_heads)
        with init_empty_weights():
            model = cls.from_config(config)
        state_dict = convert_synchformer_checkpoint_to_diffusers(original, expected_shapes=model.state_dict())
        if torch_dtype is not None:
            state_dict = {key: value.to(torch_dtype) for key, value in state_dict.items()}
        model.load_state_dict(state_dict, strict=True, assign=True)
        return model.eval()
