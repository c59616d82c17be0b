"""The LoRA options of the commands that sample (`generate`, `add-audio`) and of the demo page: parsing
`PATH_OR_HUB_ID[:WEIGHT]`, finding the file, checking it against the model before any weight loads, and loading.

A LoRA is checked from its safetensors header and the model's transformer config alone (a weightless transformer),
so a missing file, a file that is not a LoRA, a LoRA of the other model family, or one made for another model size is
refused before the model loads.
"""

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from accelerate import init_empty_weights
from diffusers.loaders.lora_base import LORA_ADAPTER_METADATA_KEY, LORA_WEIGHT_NAME_SAFE
from safetensors import SafetensorError, safe_open

from ..loaders.lora_pipeline import (
    LORA_FAMILY_KEY,
    LORA_FAMILY_NAMES,
    check_lora_for_transformer,
    check_lora_target_modules,
)
from ..loaders.single_file_utils import is_hub_repo_id
from ..models import LuminaV2ATransformerModel, LuminaVideoTransformer3DModel
from ..showcase.builtin_models import (
    TINY_RANDOM_ID,
    model_location,
    tiny_transformer,
    tiny_v2a_transformer,
)


# The commands that take each family's LoRAs, for the message refusing a LoRA given to the other family.
LORA_FLAGS = {"video": "`generate --lora`", "v2a": "`add-audio --lora` or `generate --audio-lora`"}
# Each family's transformer class and the builder of its `tiny-random` transformer.
TRANSFORMERS = {
    "video": (LuminaVideoTransformer3DModel, tiny_transformer),
    "v2a": (LuminaV2ATransformerModel, tiny_v2a_transformer),
}


@dataclass(frozen=True)
class LoraChoice:
    """One `--lora` value: where the LoRA is, its weight, and (once found) its local safetensors file."""

    source: str
    weight: float = 1.0
    file: Path | None = None


def add_lora_arguments(parser: argparse.ArgumentParser, prefix: str = "", family: str = "video") -> None:
    """`--{prefix}lora` (repeatable), `--{prefix}lora-weight-name` and `--{prefix}fuse-lora`."""
    parser.add_argument(
        f"--{prefix}lora",
        action="append",
        default=[],
        metavar="PATH_OR_HUB_ID[:WEIGHT]",
        help=f"A {LORA_FAMILY_NAMES[family]} LoRA: a .safetensors file, a folder or a Hub id, with its weight after "
        "the last ':' (default 1.0). Repeat to mix several.",
    )
    parser.add_argument(
        f"--{prefix}lora-weight-name",
        metavar="FILE",
        help=f"The file to load from a `--{prefix}lora` folder or Hub id (default: {LORA_WEIGHT_NAME_SAFE}, or a "
        "folder's only .safetensors file).",
    )
    parser.add_argument(
        f"--{prefix}fuse-lora",
        action="store_true",
        help="Fuse the LoRAs into the weights before sampling (sampling then runs at the base model's speed).",
    )


def parse_lora(value: str, flag: str = "--lora") -> LoraChoice:
    """`PATH_OR_HUB_ID[:WEIGHT]`. The text after the last ':' is the weight when it reads as a number, and the value is
    a path as it stands when that path exists, so paths with ':' in them work (`a:b` is a path, `a:b:0.5` is `a:b` at
    0.5). The weight must be finite."""
    source, colon, tail = value.rpartition(":")
    if not colon or Path(value).exists():
        return LoraChoice(value)
    try:
        weight = float(tail)
    except ValueError:
        return LoraChoice(value)
    if not math.isfinite(weight):
        raise ValueError(f"`{flag}` {value}: the weight after ':' must be a finite number, got {tail!r}.")
    if not source.strip():
        raise ValueError(f"`{flag}` {value}: no LoRA before the weight.")
    return LoraChoice(source, weight)


def find_lora_file(source: str, weight_name: str | None, flag: str = "--lora") -> Path:
    """The safetensors file of a LoRA given as a file, a folder (`weight_name`, else `pytorch_lora_weights
    .safetensors`, else its only .safetensors file) or a Hub id (`weight_name` or `pytorch_lora_weights.safetensors`,
    downloaded to the Hub cache)."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        if weight_name is not None:
            if not (path / weight_name).is_file():
                raise FileNotFoundError(f"`{flag}` folder {source} has no {weight_name}.")
            return path / weight_name
        if (path / LORA_WEIGHT_NAME_SAFE).is_file():
            return path / LORA_WEIGHT_NAME_SAFE
        found = sorted(p.name for p in path.glob("*.safetensors"))
        if len(found) != 1:
            name_it = f" or name it with `{flag}-weight-name`" if flag.startswith("--") else ""
            raise FileNotFoundError(
                f"`{flag}` folder {source} has {len(found)} .safetensors files {found[:5]} and no "
                f"{LORA_WEIGHT_NAME_SAFE}; give the LoRA file itself{name_it}."
            )
        return path / found[0]
    if source.endswith(".safetensors") or not is_hub_repo_id(source):
        raise FileNotFoundError(f"`{flag}` {source} does not exist (give a .safetensors file, a folder or a Hub id).")
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(source, weight_name or LORA_WEIGHT_NAME_SAFE))
    except Exception as error:  # no network, no such repository or file, no access...
        raise OSError(
            f"`{flag}` {source}: could not get {weight_name or LORA_WEIGHT_NAME_SAFE} from the Hub "
            f"({type(error).__name__})."
        ) from error


def weightless_transformer(model: str, pipeline_class: type) -> nn.Module:
    """The transformer of the pipeline `model` (a built-in id, a folder or a Hub id) built from its config alone,
    with its weights on the meta device: enough to check a LoRA's targets and shapes without loading the model."""
    transformer_class, tiny = TRANSFORMERS[pipeline_class.lora_model_family]
    with init_empty_weights():
        if model == TINY_RANDOM_ID:
            return tiny()
        config = transformer_class.load_config(model_location(model), subfolder="transformer")
        if config.get("_class_name") != transformer_class.__name__:
            raise ValueError(
                f"{model} holds a {config.get('_class_name')} transformer, not the {transformer_class.__name__} of a "
                f"{pipeline_class.__name__}."
            )
        return transformer_class.from_config(config)


def check_lora_file(file: Path, transformer: nn.Module, family: str, name: str) -> None:
    """Checks a LoRA file against `transformer` (of model family `family`) from the file's header alone: it must be
    safetensors, hold LoRA weights of fitting ranks and sizes for layers the transformer has, and not be recorded as
    a LoRA of the other family. Raises a `ValueError` starting with `name`."""
    try:
        with safe_open(file, framework="pt") as handle:
            header = handle.metadata() or {}
            state_dict = {key: torch.empty(handle.get_slice(key).get_shape(), device="meta") for key in handle.keys()}
    except SafetensorError as error:
        raise ValueError(f"{name} is not a safetensors LoRA file ({error}).") from None
    saved_for = header.get(LORA_FAMILY_KEY)
    if saved_for in LORA_FAMILY_NAMES and saved_for != family:
        raise ValueError(
            f"{name} is a {LORA_FAMILY_NAMES[saved_for]} LoRA, and this model is {LORA_FAMILY_NAMES[family]}; "
            f"give it to {LORA_FLAGS[saved_for]}."
        )
    metadata = json.loads(header[LORA_ADAPTER_METADATA_KEY]) if LORA_ADAPTER_METADATA_KEY in header else None
    prefix = "transformer."
    state_dict = check_lora_for_transformer(transformer, state_dict, metadata, prefix, name)
    try:
        check_lora_target_modules(transformer, {key.removeprefix(prefix).split(".lora_")[0] for key in state_dict})
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def checked_loras(args: argparse.Namespace, prefix: str, model: str | None, pipeline_class: type) -> list[LoraChoice]:
    """The LoRAs of `--{prefix}lora`, each parsed (all weights first), found and checked against `model` before any
    model loads."""
    flag = f"--{prefix}lora"
    attribute = prefix.replace("-", "_")
    values, weight_name = getattr(args, f"{attribute}lora"), getattr(args, f"{attribute}lora_weight_name")
    choices = [parse_lora(value, flag) for value in values]
    if not choices:
        if weight_name is not None or getattr(args, f"{attribute}fuse_lora"):
            used = f"{flag}-weight-name" if weight_name is not None else f"--{prefix}fuse-lora"
            raise ValueError(f"`{used}` needs `{flag}`.")
        return []
    if model is None:
        raise ValueError(f"`{flag}` needs `--with-audio`: it is a LoRA of the sound model.")
    transformer = weightless_transformer(model, pipeline_class)
    checked = []
    for choice in choices:
        file = find_lora_file(choice.source, weight_name, flag)
        check_lora_file(file, transformer, pipeline_class.lora_model_family, f"`{flag}` {choice.source}")
        checked.append(LoraChoice(choice.source, choice.weight, file))
    return checked


def apply_loras(pipe, loras: list[LoraChoice], fuse: bool = False) -> None:
    """Loads `loras` into `pipe` as adapters `lora_0`, `lora_1`, ... mixed with their weights (`set_adapters`);
    with `fuse`, writes them into the weights and removes the LoRA layers."""
    if not loras:
        return
    names = [f"lora_{index}" for index in range(len(loras))]
    for name, lora in zip(names, loras, strict=True):
        pipe.load_lora_weights(str(lora.file), adapter_name=name)
    pipe.set_adapters(names, [lora.weight for lora in loras])
    if fuse:
        pipe.fuse_lora(adapter_names=names)
        pipe.unload_lora_weights()
    return names
