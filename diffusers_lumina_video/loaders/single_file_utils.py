"""The original Lumina-Video checkpoint format: reading it safely, mapping its keys, and inferring the config.

Everything here works on tensors of any device (meta included), so the full-size mapping can be checked without
the weights.
"""

import math
import os
import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from diffusers.utils import logging


logger = logging.get_logger(__name__)

WEIGHTS_NAMES = ("consolidated.00-of-01.safetensors", "consolidated.00-of-01.pth")
MODEL_ARGS_NAME = "model_args.pth"

# Substring renames from the reference names to this package's module names, applied in order.
_RENAMES = (
    ("t_embedder.mlp.0.", "condition_embedder.timestep_embedder.linear_1."),
    ("t_embedder.mlp.2.", "condition_embedder.timestep_embedder.linear_2."),
    ("motion_embedder.mlp.0.", "condition_embedder.motion_embedder.linear_1."),
    ("motion_embedder.mlp.2.", "condition_embedder.motion_embedder.linear_2."),
    ("cap_embedder.", "condition_embedder.caption_embedder."),
    (".attention.wq.", ".attn.to_q."),
    (".attention.wk.", ".attn.to_k."),
    (".attention.wv.", ".attn.to_v."),
    (".attention.wo.", ".attn.to_out.0."),
    (".attention.wk_y.", ".attn.add_k_proj."),
    (".attention.wv_y.", ".attn.add_v_proj."),
    (".attention.q_norm.", ".attn.norm_q."),
    (".attention.k_norm.", ".attn.norm_k."),
    (".attention.ky_norm.", ".attn.norm_added_k."),
    (".attention.gate", ".attn.gate"),
    (".feed_forward.w1.", ".feed_forward.linear_1."),
    (".feed_forward.w2.", ".feed_forward.linear_2."),
    (".feed_forward.w3.", ".feed_forward.linear_3."),
    (".attention_norm1.", ".norm1.norm."),
    (".adaLN_modulation.1.", ".norm1.linear."),
    (".attention_norm2.", ".norm2."),
    (".attention_y_norm.", ".norm1_context."),
)
_PATCH_MODULE = re.compile(r"^all_(x_embedder|final_layer)\.(\d+)-(\d+)\.(.+)$")
_FINAL_LAYER_PARTS = {"linear.": "linear_2.", "adaLN_modulation.1.": "linear_1."}
_UNUSED_KEYS = ("pad_token",)

# Defaults of the fields that tensor shapes cannot tell (the released model's values).
MODEL_ARGS_DEFAULTS = {"rope_theta": 256.0, "t_scale": 1000.0, "motion_scale": 20.0}


class CheckpointFormatError(ValueError):
    """The file is not a Lumina-Video checkpoint this package can read."""


def strip_compile_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Removes the `_orig_mod.` segment that `torch.compile` leaves in key names."""
    return {key.replace("_orig_mod.", ""): value for key, value in state_dict.items()}


def _rename_key(key: str) -> str:
    match = _PATCH_MODULE.match(key)
    if match:
        kind, patch, f_patch, rest = match.groups()
        module = f"{f_patch}x{patch}x{patch}"
        if kind == "x_embedder":
            return f"patch_embedders.{module}.{rest}"
        for old, new in _FINAL_LAYER_PARTS.items():
            if rest.startswith(old):
                return f"norm_outs.{module}.{new}{rest[len(old):]}"
        raise CheckpointFormatError(f"Unexpected final-layer key {key!r}.")
    for old, new in _RENAMES:
        key = key.replace(old, new)
    return key


def convert_lumina_video_transformer_checkpoint_to_diffusers(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Maps an original state dict (`_orig_mod.` allowed) to `LuminaVideoTransformer3DModel` names."""
    state_dict = strip_compile_prefix(state_dict)
    return {_rename_key(key): value for key, value in state_dict.items() if key not in _UNUSED_KEYS}


def _ffn_rounding(hidden_size: int, ffn_hidden: int) -> tuple[int, float | None]:
    """Finds the (`multiple_of`, `ffn_dim_multiplier`) that rebuild a SwiGLU width, preferring the reference's."""
    base = int(2 * 4 * hidden_size / 3)
    for multiple_of in (256, 128, 64, 32, 16, 8, 4, 2, 1):
        if multiple_of * math.ceil(base / multiple_of) == ffn_hidden:
            return multiple_of, None
    return 1, ffn_hidden / base


def infer_transformer_config(state_dict: Mapping[str, Any], model_args: Any | None = None) -> dict[str, Any]:
    """Reads every dimension back from tensor shapes (original key names) and takes the fields shapes cannot
    tell (RoPE theta, time and motion scales) from `model_args`; a disagreement between the two is an error."""
    state_dict = strip_compile_prefix(state_dict)
    patch_sizes, in_channels, hidden_size = [], None, None
    for key, tensor in state_dict.items():
        match = _PATCH_MODULE.match(key)
        if match and match.group(1) == "x_embedder" and match.group(4) == "weight":
            patch, f_patch = int(match.group(2)), int(match.group(3))
            patch_sizes.append((f_patch, patch, patch))
            hidden_size, fan_in = tensor.shape
            in_channels = fan_in // (f_patch * patch * patch)
    required = (
        "layers.0.attention.gate",
        "layers.0.attention.wk.weight",
        "layers.0.feed_forward.w1.weight",
        "cap_embedder.0.weight",
    )
    missing = [key for key in required if key not in state_dict]
    if not patch_sizes or missing:
        raise CheckpointFormatError(
            "Not a Lumina-Video Multi-scale Next-DiT checkpoint: "
            + (f"missing {missing}" if missing else "no `all_x_embedder.*` patch embedders")
        )
    num_layers = 1 + max(int(key.split(".")[1]) for key in state_dict if key.startswith("layers."))
    num_heads = state_dict["layers.0.attention.gate"].shape[0]
    head_dim = hidden_size // num_heads
    multiple_of, ffn_dim_multiplier = _ffn_rounding(hidden_size, state_dict["layers.0.feed_forward.w1.weight"].shape[0])
    config = {
        "patch_sizes": sorted(patch_sizes, key=math.prod),
        "in_channels": in_channels,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_kv_heads": state_dict["layers.0.attention.wk.weight"].shape[0] // head_dim,
        "multiple_of": multiple_of,
        "ffn_dim_multiplier": ffn_dim_multiplier,
        "qk_norm": "layers.0.attention.q_norm.weight" in state_dict,
        "cap_feat_dim": state_dict["cap_embedder.0.weight"].shape[0],
    }
    config.update(_config_from_model_args(model_args, config))
    return config


def _config_from_model_args(model_args: Any | None, inferred: dict[str, Any]) -> dict[str, Any]:
    if model_args is None:
        logger.warning(
            f"No `{MODEL_ARGS_NAME}` given: dimensions come from the tensor shapes, and the rest takes the released "
            f"model's values {MODEL_ARGS_DEFAULTS}."
        )
        args = dict(MODEL_ARGS_DEFAULTS)
    else:
        args = {name: getattr(model_args, name, default) for name, default in MODEL_ARGS_DEFAULTS.items()}
        checks = {}
        if hasattr(model_args, "patch_sizes") and hasattr(model_args, "f_patch_sizes"):
            from_args = sorted(
                ((int(f), int(p), int(p)) for p, f in zip(model_args.patch_sizes, model_args.f_patch_sizes)),
                key=math.prod,
            )
            checks["patch_sizes / f_patch_sizes"] = (from_args, inferred["patch_sizes"])
        if hasattr(model_args, "qk_norm"):
            checks["qk_norm"] = (bool(model_args.qk_norm), inferred["qk_norm"])
        for field, (declared, found) in checks.items():
            if declared != found:
                raise CheckpointFormatError(
                    f"`{MODEL_ARGS_NAME}` field {field} says {declared}, but the weights have {found}."
                )
    return {
        "rope_theta": float(args["rope_theta"]),
        "timestep_scale": float(args["t_scale"]),
        "motion_scale": float(args["motion_scale"]),
    }


def resolve_checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path | None]:
    """Accepts the release folder or the weights file itself; returns (weights file, `model_args.pth` or None)."""
    path = Path(path)
    if path.is_dir():
        weights = next((path / name for name in WEIGHTS_NAMES if (path / name).is_file()), None)
        if weights is None:
            raise FileNotFoundError(f"`checkpoint_path` {path} holds none of {list(WEIGHTS_NAMES)}.")
    elif path.is_file():
        weights = path
    else:
        raise FileNotFoundError(f"`checkpoint_path` {path} does not exist.")
    model_args = weights.parent / MODEL_ARGS_NAME
    return weights, model_args if model_args.is_file() else None


def load_original_state_dict(weights: str | os.PathLike, mmap: bool = True) -> dict[str, torch.Tensor]:
    """Loads tensors without executing pickled code (`weights_only=True`), memory-mapped where possible."""
    weights = Path(weights)
    try:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(weights))
        state_dict = torch.load(weights, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as error:  # a truncated zip, a foreign pickle, a corrupt safetensors header...
        raise CheckpointFormatError(f"Cannot read {weights} as a Lumina-Video checkpoint: {error}") from error
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointFormatError(f"{weights} does not hold a state dict of tensors.")
    return dict(state_dict)


def load_model_args(path: str | os.PathLike) -> types.SimpleNamespace:
    """Loads `model_args.pth`, allowing `types.SimpleNamespace` and nothing else to be unpickled."""
    try:
        with torch.serialization.safe_globals([types.SimpleNamespace]):
            args = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointFormatError(
            f"Refusing to load {path}: it is not a plain `types.SimpleNamespace` of training arguments ({error})."
        ) from error
    if not isinstance(args, types.SimpleNamespace):
        raise CheckpointFormatError(f"{path} holds a {type(args).__name__}, expected `types.SimpleNamespace`.")
    return args
