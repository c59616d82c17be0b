# Copyright 2026 The diffusers-lumina-video authors. All rights reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""LoRA loading for the Lumina-Video pipeline, on Diffusers' LoRA machinery and PEFT."""

import math
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
from diffusers.loaders import CogVideoXLoraLoaderMixin
from diffusers.loaders.lora_base import LORA_WEIGHT_NAME_SAFE
from diffusers.loaders.lora_pipeline import _LOW_CPU_MEM_USAGE_DEFAULT_LORA
from diffusers.utils import logging
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .single_file_utils import is_hub_repo_id


if TYPE_CHECKING:
    from ..models import LuminaVideoTransformer3DModel


logger = logging.get_logger(__name__)

# PEFT matches a target against the end of a module's dotted name, so the parent name is kept: a bare "linear_1"
# would also wrap the time/motion embedders and the output heads.
LUMINA_VIDEO_LORA_TARGET_MODULES = (
    "attn.to_q",
    "attn.to_k",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_k_proj",
    "attn.add_v_proj",
    "feed_forward.linear_1",
    "feed_forward.linear_2",
    "feed_forward.linear_3",
)
# The header entry of a LoRA file that names the model family it was made for ("video" or "v2a"): both transformers
# have blocks with the same layer names, so the names alone cannot tell a Lumina-V2A LoRA from a Lumina-Video one.
LORA_FAMILY_KEY = "lumina_model_family"
LORA_FAMILY_NAMES = {"video": "Lumina-Video", "v2a": "Lumina-V2A"}


def _lora_linear_names(transformer: nn.Module) -> list[str]:
    """Dotted names of the linear layers LoRA can wrap, the same before and after LoRA layers are injected."""
    return [
        name.removesuffix(".base_layer")
        for name, module in transformer.named_modules()
        if isinstance(module, nn.Linear) and ".lora_" not in name
    ]


def check_lora_target_modules(transformer: "LuminaVideoTransformer3DModel", target_modules: Iterable[str]) -> None:
    """Raises a `ValueError` naming the LoRA targets that match no linear layer of `transformer`.

    PEFT only fails when no target matches at all; any other unknown target is skipped, so a misspelt name would
    train or load a LoRA that silently leaves those layers alone. Targets match as PEFT matches them: a full dotted
    name or its trailing part (`"attn.to_q"` matches `"layers.3.attn.to_q"`).
    """
    names = _lora_linear_names(transformer)
    unknown = sorted({t for t in target_modules if not any(n == t or n.endswith(f".{t}") for n in names)})
    if unknown:
        available = sorted({re.sub(r"^layers\.\d+\.", "layers.N.", name) for name in names})
        raise ValueError(
            f"LoRA target modules {unknown} are not linear layers of {transformer.__class__.__name__}. Its linear "
            f"layers are (N < {len(transformer.layers)}): {available}."
        )


def _split_components(
    state_dict: dict[str, torch.Tensor], transformer: nn.Module, prefix: str, source: str
) -> dict[str, torch.Tensor]:
    """The transformer's part of a LoRA state dict (keys with or without `prefix`); other components' keys (e.g.
    `text_encoder.*` from a pipeline with a trainable text encoder) are dropped with a warning, as Diffusers' loaders
    do, since this pipeline has no LoRA-loadable component besides the transformer."""
    own_roots = {name for name, _ in transformer.named_children()}
    kept, others = {}, set()
    for key, value in state_dict.items():
        root = key.split(".", 1)[0]
        if key.startswith(prefix) or root in own_roots:
            kept[key] = value
        else:
            others.add(root)
    if others:
        logger.warning(
            f"{source} also has keys for {sorted(others)}, which this pipeline cannot load LoRA "
            f"weights into; only the `{prefix.rstrip('.')}` part is loaded."
        )
    if not kept:
        found = f" (it only has keys for {sorted(others)})" if others else ""
        raise ValueError(f"{source} contains no LoRA weights for the transformer{found}.")
    return kept


def check_lora_state_dict(
    transformer: "LuminaVideoTransformer3DModel",
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, Any] | None,
    prefix: str,
    source: str,
) -> None:
    """Raises a `ValueError` for a LoRA state dict that PEFT would reject halfway through loading (or, for a missing
    `lora_B`, silently load as a no-op): keys that are not LoRA weights, a `lora_A` without its `lora_B` or the other
    way round, `lora_A`/`lora_B` ranks that differ from each other or from the rank in the file's metadata, and
    shapes that do not fit the layer they target."""
    not_lora = sorted(key for key in state_dict if ".lora_A." not in key and ".lora_B." not in key)
    if not_lora:
        raise ValueError(f"{source} has keys that are not LoRA weights (no `lora_A`/`lora_B`): {not_lora[:5]}.")
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        module, kind, rest = re.split(r"\.(lora_[AB])\.", key.removeprefix(prefix), maxsplit=1)
        if rest == "weight":
            pairs.setdefault(module, {})[kind] = value
    unpaired = sorted(
        f"{module} (no {'lora_B' if 'lora_A' in pair else 'lora_A'})"
        for module, pair in pairs.items()
        if len(pair) == 1
    )
    if unpaired:
        raise ValueError(f"{source} has LoRA layers with only one of `lora_A`/`lora_B`: {unpaired[:5]}.")
    metadata_rank = (metadata or {}).get(f"{prefix}r")
    rank_pattern = (metadata or {}).get(f"{prefix}rank_pattern") or {}
    modules = dict(transformer.named_modules())
    for module, pair in sorted(pairs.items()):
        down, up = pair["lora_A"], pair["lora_B"]
        if down.ndim != 2 or up.ndim != 2 or down.shape[0] != up.shape[1]:
            raise ValueError(
                f"{source}: the LoRA ranks of `{module}` do not match: lora_A has shape {tuple(down.shape)} (rank "
                f"first) and lora_B {tuple(up.shape)} (rank last)."
            )
        if metadata_rank is not None and not rank_pattern and down.shape[0] != metadata_rank:
            raise ValueError(
                f"{source}: `{module}` has LoRA rank {down.shape[0]} but the file's metadata says r={metadata_rank}."
            )
        layer = modules.get(module)
        layer = layer.get_base_layer() if isinstance(layer, BaseTunerLayer) else layer
        if isinstance(layer, nn.Linear) and (down.shape[1], up.shape[0]) != (layer.in_features, layer.out_features):
            raise ValueError(
                f"{source}: the LoRA weights of `{module}` map {down.shape[1]} -> {up.shape[0]} features, but that layer "
                f"maps {layer.in_features} -> {layer.out_features}; the LoRA was made for another model size."
            )


def check_lora_for_transformer(
    transformer: nn.Module,
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, Any] | None,
    prefix: str,
    source: str,
) -> dict[str, torch.Tensor]:
    """The transformer's part of a LoRA state dict (see `_split_components`), checked with `check_lora_state_dict`;
    raises a `ValueError` naming `source` for anything that would not load. Only shapes are read, so tensors on the
    meta device check a file before any weight is loaded."""
    if not state_dict:
        raise ValueError(f"{source} contains no LoRA weights.")
    state_dict = _split_components(state_dict, transformer, prefix, source)
    own_prefix = prefix if any(key.startswith(prefix) for key in state_dict) else ""
    check_lora_state_dict(transformer, state_dict, metadata, own_prefix, source)
    return state_dict


@contextmanager
def _restored_on_error(transformer: nn.Module) -> Iterator[None]:
    """Undoes a failed, non-hotswap LoRA load: the new adapter's layers and config are removed, and layers that no
    adapter is left on are unwrapped, so the transformer's modules and state-dict keys are exactly as before."""
    adapters_before = set(getattr(transformer, "peft_config", {}))
    loaded_flag = getattr(transformer, "_hf_peft_config_loaded", False)
    try:
        yield
    except BaseException:
        new_adapters = set(getattr(transformer, "peft_config", {})) - adapters_before
        for name, module in list(transformer.named_modules()):
            if not isinstance(module, BaseTunerLayer):
                continue
            for adapter in new_adapters & set(module.lora_A):
                module.delete_adapter(adapter)
            if not module.lora_A:
                parent_name, _, child = name.rpartition(".")
                setattr(transformer.get_submodule(parent_name), child, module.get_base_layer())
        for adapter in new_adapters:
            transformer.peft_config.pop(adapter, None)
        if not adapters_before and hasattr(transformer, "peft_config"):
            del transformer.peft_config
        transformer._hf_peft_config_loaded = loaded_flag
        raise


def _check_adapter_weight(weight: Any, parameter: str) -> None:
    if isinstance(weight, dict):
        for component, value in weight.items():
            _check_adapter_weight(value, f"{parameter}[{component!r}]")
    elif weight is not None and (
        isinstance(weight, bool) or not isinstance(weight, Real) or not math.isfinite(weight)
    ):
        raise TypeError(f"`{parameter}` must be a finite number (or a dict of them per component), got {weight!r}.")


class LuminaVideoLoraLoaderMixin(CogVideoXLoraLoaderMixin):
    r"""
    Load, save, fuse, mix and hotswap LoRA layers of [`LuminaVideoTransformer3DModel`] in [`LuminaVideoPipeline`].

    The behaviour is Diffusers' transformer-only loader for LoRAs in Diffusers format (`transformer.<module>.lora_*`
    keys, no key conversion), which is why CogVideoX's mixin is the base. On top of it, loading fails on target modules
    that the transformer does not have, and a LoRA saved from the transformer alone (keys without the `transformer.`
    prefix, e.g. from `transformer.save_lora_adapter`) loads too instead of being skipped.
    """

    # The model family a LoRA saved through this pipeline class is recorded for (a key of `LORA_FAMILY_NAMES`).
    lora_model_family: str | None = None

    @classmethod
    def save_lora_weights(
        cls,
        save_directory: str | os.PathLike,
        transformer_lora_layers: dict[str, nn.Module | torch.Tensor] | None = None,
        is_main_process: bool = True,
        weight_name: str | None = None,
        save_function=None,
        safe_serialization: bool = True,
        transformer_lora_adapter_metadata: dict | None = None,
    ) -> None:
        """Saves as [`~loaders.CogVideoXLoraLoaderMixin.save_lora_weights`]; a safetensors file saved through a
        pipeline class also records that pipeline's model family in its header (`LORA_FAMILY_KEY`), so that
        `lumina-video` refuses it by name when it is given to the other family's model."""
        super().save_lora_weights(
            save_directory,
            transformer_lora_layers=transformer_lora_layers,
            is_main_process=is_main_process,
            weight_name=weight_name,
            save_function=save_function,
            safe_serialization=safe_serialization,
            transformer_lora_adapter_metadata=transformer_lora_adapter_metadata,
        )
        if cls.lora_model_family is not None and safe_serialization and save_function is None:
            path = Path(save_directory, weight_name or LORA_WEIGHT_NAME_SAFE)
            with safe_open(path, framework="pt") as file:
                header = file.metadata() or {}
            save_file(load_file(path), path, metadata={**header, LORA_FAMILY_KEY: cls.lora_model_family})

    def load_lora_weights(
        self,
        pretrained_model_name_or_path_or_dict: str | os.PathLike | dict[str, torch.Tensor],
        adapter_name: str | None = None,
        hotswap: bool = False,
        **kwargs,
    ) -> None:
        """Loads a LoRA into the transformer, as [`~loaders.CogVideoXLoraLoaderMixin.load_lora_weights`] does.

        The file is checked completely before any layer is touched, and a load that still fails leaves the pipeline
        exactly as it was, so a bad file never leaves half-injected LoRA layers behind.
        """
        low_cpu_mem_usage = kwargs.pop("low_cpu_mem_usage", _LOW_CPU_MEM_USAGE_DEFAULT_LORA)
        source = pretrained_model_name_or_path_or_dict
        if isinstance(source, dict):
            source, name = source.copy(), "The LoRA state dict"
        elif not os.path.exists(source) and not is_hub_repo_id(source):
            # Diffusers would look it up on the Hub and, offline, ask for a `weight_name` instead.
            raise FileNotFoundError(f"The LoRA file or folder {os.fspath(source)!r} does not exist.")
        else:
            name = f"The LoRA file {os.fspath(source)!r}" + (
                f" ({kwargs['weight_name']})" if kwargs.get("weight_name") else ""
            )
        kwargs["return_lora_metadata"] = True
        state_dict, metadata = self.lora_state_dict(source, **kwargs)
        transformer = getattr(self, self.transformer_name)
        state_dict = check_lora_for_transformer(transformer, state_dict, metadata, f"{self.transformer_name}.", name)
        # A hotswap replaces weights in place; anything else adds layers, which a failure must take out again.
        with nullcontext() if hotswap else _restored_on_error(transformer):
            self.load_lora_into_transformer(
                state_dict,
                transformer,
                adapter_name=adapter_name,
                metadata=metadata,
                _pipeline=self,
                low_cpu_mem_usage=low_cpu_mem_usage,
                hotswap=hotswap,
            )

    def _check_adapter_names(self, adapter_names: Any, parameter: str = "adapter_names") -> list[str]:
        """The names as a list; raises for names that are not strings or not loaded adapters, which Diffusers'
        `fuse_lora` and `delete_adapters` would otherwise silently ignore."""
        names = [adapter_names] if isinstance(adapter_names, str) else adapter_names
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"`{parameter}` must be an adapter name or a list of them, got {adapter_names!r}.")
        loaded = sorted({a for adapters in self.get_list_adapters().values() for a in adapters})
        unknown = sorted(set(names) - set(loaded))
        if unknown:
            # Diffusers' own wording, which its tests and users' code match, with the parameter named.
            raise ValueError(
                f"Adapter name(s) {unknown} not in the list of present adapters: {loaded} (`{parameter}`)."
            )
        return list(names)

    def fuse_lora(
        self,
        components: list[str] | None = None,
        lora_scale: float = 1.0,
        safe_fusing: bool = False,
        adapter_names: list[str] | None = None,
        **kwargs,
    ) -> None:
        """Checks the adapter names and scale, then fuses as [`~loaders.CogVideoXLoraLoaderMixin.fuse_lora`]."""
        components = ["transformer"] if components is None else components
        if adapter_names is not None:
            adapter_names = self._check_adapter_names(adapter_names)
        _check_adapter_weight(lora_scale, "lora_scale")
        super().fuse_lora(
            components=components,
            lora_scale=lora_scale,
            safe_fusing=safe_fusing,
            adapter_names=adapter_names,
            **kwargs,
        )

    def set_adapters(
        self,
        adapter_names: list[str] | str,
        adapter_weights: float | dict | list[float] | list[dict] | None = None,
    ) -> None:
        """Checks the adapter names and weights, then activates as [`~loaders.LoraBaseMixin.set_adapters`]."""
        adapter_names = self._check_adapter_names(adapter_names)
        for index, weight in enumerate(
            adapter_weights if isinstance(adapter_weights, (list, tuple)) else [adapter_weights]
        ):
            _check_adapter_weight(
                weight,
                f"adapter_weights[{index}]" if isinstance(adapter_weights, (list, tuple)) else "adapter_weights",
            )
        if isinstance(adapter_weights, tuple):
            adapter_weights = list(adapter_weights)
        super().set_adapters(adapter_names, adapter_weights)

    def delete_adapters(self, adapter_names: list[str] | str) -> None:
        """Checks the adapter names, then deletes as [`~loaders.LoraBaseMixin.delete_adapters`]."""
        super().delete_adapters(self._check_adapter_names(adapter_names))

    @classmethod
    def load_lora_into_transformer(
        cls,
        state_dict: dict[str, torch.Tensor],
        transformer: "LuminaVideoTransformer3DModel",
        metadata: dict[str, Any] | None = None,
        **kwargs,
    ) -> None:
        """Checks the targets of `state_dict`, then loads it as Diffusers does; see
        [`~loaders.CogVideoXLoraLoaderMixin.load_lora_into_transformer`] for the arguments."""
        prefix = f"{cls.transformer_name}."
        if not any(key.startswith(prefix) for key in state_dict):
            state_dict = {prefix + key: value for key, value in state_dict.items()}
            metadata = {prefix + key: value for key, value in metadata.items()} if metadata else metadata
        check_lora_target_modules(transformer, {key.removeprefix(prefix).split(".lora")[0] for key in state_dict})
        super().load_lora_into_transformer(state_dict, transformer, metadata=metadata, **kwargs)
