"""The original Lumina-Video checkpoint format: reading it safely, mapping its keys, and inferring the config.

Everything here works on tensors of any device (meta included), so the full-size mapping can be checked without
the weights.
"""

import math
import numbers
import os
import pickle
import re
import types
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from diffusers.utils import logging

from ..utils.component_paths import is_hub_repo_id


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
# Weights with no effect on the output: the reference's padding token, and the bias of its caption-key norm, which
# the softmax cancels (`LuminaVideoAttention.norm_added_k`).
_UNUSED_KEYS = re.compile(r"^pad_token$|\.attention\.ky_norm\.bias$")

# Defaults of the fields that tensor shapes cannot tell (the released model's values).
MODEL_ARGS_DEFAULTS = {"rope_theta": 256.0, "t_scale": 1000.0, "motion_scale": 20.0}

# Dimensions fixed by the reference's model constructors, named by `model_args.model`.
KNOWN_MODELS = {
    "MultiScaleNextDiT_2B": {"hidden_size": 2304, "num_layers": 24, "num_attention_heads": 16, "num_kv_heads": 16},
    "MultiScaleNextDiT_2B_GQA": {"hidden_size": 2304, "num_layers": 24, "num_attention_heads": 16, "num_kv_heads": 8},
    "MultiScaleNextDiT_4B_GQA": {"hidden_size": 3072, "num_layers": 32, "num_attention_heads": 24, "num_kv_heads": 8},
}

_LISTED_NAMES = 8


class CheckpointFormatError(ValueError):
    """The file is not a checkpoint (Lumina-Video, Synchformer) this package can read."""


class UnsafeCheckpointError(CheckpointFormatError):
    """The file's pickle references Python objects that loading it would have to create or call."""


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
                return f"norm_outs.{module}.{new}{rest[len(old) :]}"
        raise CheckpointFormatError(f"Unexpected final-layer key {key!r}.")
    for old, new in _RENAMES:
        key = key.replace(old, new)
    return key


def listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED_NAMES])
    return f"{shown}, and {len(names) - _LISTED_NAMES} more" if len(names) > _LISTED_NAMES else shown


def convert_lumina_video_transformer_checkpoint_to_diffusers(
    state_dict: Mapping[str, Any], expected_shapes: Mapping[str, Sequence[int]] | None = None
) -> dict[str, Any]:
    """Maps an original state dict (`_orig_mod.` allowed) to `LuminaVideoTransformer3DModel` names.

    With `expected_shapes` (the state dict, or its shapes, of the model the weights are for), it also checks that no
    weight is missing, left over or of another shape, so a wrong checkpoint fails here, naming the keys, rather than
    half-loaded.
    """
    state_dict = strip_compile_prefix(state_dict)
    original_names = {_rename_key(key): key for key in state_dict if not _UNUSED_KEYS.search(key)}
    if expected_shapes is not None:
        check_keys_and_shapes(state_dict, original_names, expected_shapes)
    return {new: state_dict[old] for new, old in original_names.items()}


def check_keys_and_shapes(
    state_dict: Mapping[str, Any],
    original_names: Mapping[str, str],
    expected_shapes: Mapping[str, Any],
    model_name: str = "Lumina-Video transformer",
) -> None:
    """Raises, naming the keys, unless the renamed weights (`original_names`: new name -> original key) are exactly
    the model's: nothing missing, left over or of another shape."""

    def shape(value: Any) -> list[int]:
        return list(value.shape if hasattr(value, "shape") else value)

    missing = sorted(set(expected_shapes) - set(original_names))
    unexpected = sorted(old for new, old in original_names.items() if new not in expected_shapes)
    mismatched = [
        f"{old} {shape(state_dict[old])} (expected {shape(expected_shapes[new])})"
        for new, old in original_names.items()
        if new in expected_shapes and shape(state_dict[old]) != shape(expected_shapes[new])
    ]
    problems = [
        f"{label}: {listing(names)}"
        for label, names in (
            ("missing weights", missing),
            ("unexpected keys", unexpected),
            ("wrong shapes", mismatched),
        )
        if names
    ]
    if problems:
        raise CheckpointFormatError(
            f"The checkpoint does not match the {model_name} its shapes describe; " + "; ".join(problems)
        )


def _ffn_rounding(hidden_size: int, ffn_hidden: int) -> tuple[int, float | None]:
    """Finds the (`multiple_of`, `ffn_dim_multiplier`) that rebuild a SwiGLU width, preferring the reference's."""
    base = int(2 * 4 * hidden_size / 3)
    for multiple_of in (256, 128, 64, 32, 16, 8, 4, 2, 1):
        if multiple_of * math.ceil(base / multiple_of) == ffn_hidden:
            return multiple_of, None
    return 1, ffn_hidden / base


def infer_transformer_config(
    state_dict: Mapping[str, Any], model_args: Any | None = None, source: str | os.PathLike = "The checkpoint"
) -> dict[str, Any]:
    """Reads every dimension back from tensor shapes (original key names) and takes the fields shapes cannot
    tell (RoPE theta, time and motion scales) from `model_args`; a disagreement between the two is an error.
    `source` names the checkpoint in errors."""
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
    num_heads = _consistent_head_count(state_dict, source)
    head_dim = hidden_size // num_heads
    multiple_of, ffn_dim_multiplier = _ffn_rounding(
        hidden_size, state_dict["layers.0.feed_forward.w1.weight"].shape[0]
    )
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
    if model_args is None:
        logger.warning(
            f"No `{MODEL_ARGS_NAME}` given: dimensions come from the tensor shapes, and the rest takes the released "
            f"model's values {MODEL_ARGS_DEFAULTS}."
        )
    else:
        _check_model_args(model_args, config)
        missing = {name: value for name, value in MODEL_ARGS_DEFAULTS.items() if not hasattr(model_args, name)}
        if missing:
            logger.warning(
                f"`{MODEL_ARGS_NAME}` lacks {sorted(missing)}; using the released model's values {missing}."
            )
    args = {name: getattr(model_args, name, default) for name, default in MODEL_ARGS_DEFAULTS.items()}
    config.update(
        rope_theta=float(args["rope_theta"]),
        timestep_scale=float(args["t_scale"]),
        motion_scale=float(args["motion_scale"]),
    )
    return config


def _consistent_head_count(state_dict: Mapping[str, Any], source: str | os.PathLike) -> int:
    """The head count every layer's `attention.gate` (one gate per head) agrees on. Checked here because the config
    is read from layer 0: a layer 0 unlike the others would otherwise surface as a model that cannot be built."""
    keys_by_count: dict[int, list[str]] = {}
    for key, tensor in state_dict.items():
        if re.fullmatch(r"layers\.\d+\.attention\.gate", key):
            keys_by_count.setdefault(int(tensor.shape[0]), []).append(key)
    if len(keys_by_count) > 1:
        found = "; ".join(f"{count} in {listing(keys)}" for count, keys in sorted(keys_by_count.items()))
        raise CheckpointFormatError(
            f"{source} is inconsistent: its layers disagree on the number of attention heads (the length of "
            f"`attention.gate`: {found})."
        )
    return state_dict["layers.0.attention.gate"].shape[0]


def check_model_arg_values(model_args: Any) -> None:
    """Raises, naming the field, where a `model_args` value the converter reads has the wrong type or range, so
    that a NaN or negative RoPE base is refused instead of written into a config."""

    def refuse(name: str, allowed: str) -> None:
        value = getattr(model_args, name)
        raise CheckpointFormatError(
            f"`{MODEL_ARGS_NAME}` field `{name}` must be {allowed}, got {value!r} ({type(value).__name__})."
        )

    def present(name: str) -> bool:
        return hasattr(model_args, name)

    for name in MODEL_ARGS_DEFAULTS:
        value = getattr(model_args, name, None)
        if present(name) and (
            isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0
        ):
            refuse(name, "a finite number > 0")
    for name in ("patch_sizes", "f_patch_sizes"):
        value = getattr(model_args, name, None)
        if present(name) and (
            not isinstance(value, (list, tuple))
            or not value
            or not all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in value)
        ):
            refuse(name, "a non-empty list of positive integers")
    if present("qk_norm") and not isinstance(model_args.qk_norm, bool):
        refuse("qk_norm", "True or False")
    if present("model") and not isinstance(model_args.model, str):
        refuse("model", "a model name (a string)")


def _check_model_args(model_args: Any, inferred: dict[str, Any]) -> None:
    """Raises, naming the field, where `model_args` declares something other than what the weights hold."""
    check_model_arg_values(model_args)
    checks = {}
    if hasattr(model_args, "patch_sizes") and hasattr(model_args, "f_patch_sizes"):
        patches, f_patches = list(model_args.patch_sizes), list(model_args.f_patch_sizes)
        if len(patches) != len(f_patches):
            raise CheckpointFormatError(
                f"`{MODEL_ARGS_NAME}` fields `patch_sizes` {patches} and `f_patch_sizes` {f_patches} differ in length."
            )
        declared = sorted(((f, p, p) for p, f in zip(patches, f_patches, strict=True)), key=math.prod)
        checks["`patch_sizes`/`f_patch_sizes`"] = (declared, inferred["patch_sizes"])
    if hasattr(model_args, "qk_norm"):
        checks["`qk_norm`"] = (model_args.qk_norm, inferred["qk_norm"])
    model_name = getattr(model_args, "model", None)
    if model_name in KNOWN_MODELS:
        for name, value in KNOWN_MODELS[model_name].items():
            checks[f"`model` ({model_name} has {name})"] = (value, inferred[name])
    elif model_name is not None:
        logger.info(f"`{MODEL_ARGS_NAME}` names the model {model_name!r}; its dimensions come from the weights.")
    for field, (declared, found) in checks.items():
        if declared != found:
            raise CheckpointFormatError(
                f"`{MODEL_ARGS_NAME}` field {field} says {declared}, but the weights have {found}."
            )


def resolve_checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path | None]:
    """Accepts the release folder, the weights file itself, or a Hub repository id (downloaded to the Hub cache);
    returns (weights file, `model_args.pth` or None)."""
    local = _download_release(str(path)) if is_hub_repo_id(path) else Path(path)
    if local.is_dir():
        weights = next((local / name for name in WEIGHTS_NAMES if (local / name).is_file()), None)
        if weights is None:
            raise FileNotFoundError(f"`checkpoint_path` {path} holds none of {list(WEIGHTS_NAMES)}.")
    elif local.is_file():
        weights = local
    else:
        raise FileNotFoundError(f"`checkpoint_path` {path} does not exist.")
    model_args = weights.parent / MODEL_ARGS_NAME
    return weights, model_args if model_args.is_file() else None


def _download_release(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(repo_id, allow_patterns=[*WEIGHTS_NAMES, MODEL_ARGS_NAME]))
    except (RepositoryNotFoundError, LocalEntryNotFoundError) as error:
        raise FileNotFoundError(
            f"`checkpoint_path` {repo_id} is neither a local file or folder nor a Hub repository that can be reached "
            f"({type(error).__name__})."
        ) from error


def load_torch_file_safely(
    path: Path, allowed_globals: Sequence[Any] = (), mmap: bool = False, kind: str = "Lumina-Video"
) -> Any:
    """`torch.load` restricted to tensors, plain containers and `allowed_globals`, so nothing in the pickle runs."""
    allowed = ["tensors", "plain containers", *(f"`{cls.__module__}.{cls.__qualname__}`" for cls in allowed_globals)]
    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error))  # "Unsupported global: GLOBAL x" or "unsupported GLOBAL x ..."
        if found is None:  # a damaged or foreign pickle that references no code
            raise CheckpointFormatError(
                f"Cannot read {path} as a {kind} checkpoint: {_load_error_reason(error)}."
            ) from None
        raise UnsafeCheckpointError(
            f"Refusing to load {path}: its pickle references `{found.group(1)}`, and only {', '.join(allowed[:-1])} "
            f"and {allowed[-1]} are allowed. Unpickling anything else could run code stored in the file, so nothing "
            "from it was loaded."
        ) from None
    except Exception as error:  # a truncated zip, not a torch file at all...
        raise CheckpointFormatError(
            f"Cannot read {path} as a {kind} checkpoint: {_load_error_reason(error)}"
        ) from None


def _load_error_reason(error: Exception) -> str:
    """What went wrong, without the sentences of torch's message that advise turning the safe loader off (the
    package never loads a file that way)."""
    text = str(error)
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)\n\n", text, flags=re.DOTALL)
    if detail is not None:
        return detail.group(1).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    kept = [line for line in lines if not re.search(r"weights_only|torch\.load|trusted source", line)]
    return " ".join(kept) or type(error).__name__


def load_original_state_dict(weights: str | os.PathLike, kind: str = "Lumina-Video") -> dict[str, torch.Tensor]:
    """Loads tensors without executing pickled code (`weights_only=True`), memory-mapped where the format allows,
    so the weights are paged in from the file instead of copied into memory. `kind` names the format in errors."""
    weights = Path(weights)
    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state_dict = load_file(str(weights))
        except Exception as error:
            raise CheckpointFormatError(f"Cannot read {weights} as a {kind} checkpoint: {error}") from error
    else:
        state_dict = load_torch_file_safely(weights, mmap=zipfile.is_zipfile(weights), kind=kind)
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointFormatError(f"{weights} does not hold a state dict of tensors.")
    return dict(state_dict)


def load_model_args(path: str | os.PathLike) -> types.SimpleNamespace:
    """Loads `model_args.pth`, allowing `types.SimpleNamespace` and nothing else to be unpickled."""
    args = load_torch_file_safely(Path(path), allowed_globals=[types.SimpleNamespace])
    if not isinstance(args, types.SimpleNamespace):
        raise CheckpointFormatError(f"{path} holds a {type(args).__name__}, expected `types.SimpleNamespace`.")
    return args
