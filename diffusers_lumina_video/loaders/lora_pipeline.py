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

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
from diffusers.loaders import CogVideoXLoraLoaderMixin


if TYPE_CHECKING:
    from ..models import LuminaVideoTransformer3DModel


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


class LuminaVideoLoraLoaderMixin(CogVideoXLoraLoaderMixin):
    r"""
    Load, save, fuse, mix and hotswap LoRA layers of [`LuminaVideoTransformer3DModel`] in [`LuminaVideoPipeline`].

    The behaviour is Diffusers' transformer-only loader for LoRAs in Diffusers format (`transformer.<module>.lora_*`
    keys, no key conversion), which is why CogVideoX's mixin is the base. On top of it, loading fails on target modules
    that the transformer does not have, and a LoRA saved from the transformer alone (keys without the `transformer.`
    prefix, e.g. from `transformer.save_lora_adapter`) loads too instead of being skipped.
    """

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
