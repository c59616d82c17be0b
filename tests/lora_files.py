"""LoRA files for tests: random, non-zero LoRA weights for a transformer, saved as users save them."""

from pathlib import Path

import torch
import torch.nn as nn
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from diffusers_lumina_video.loaders import LUMINA_VIDEO_LORA_TARGET_MODULES


def save_random_lora(folder: Path, transformer: nn.Module, pipeline_class: type, seed: int = 1) -> Path:
    """Adds a rank-4 LoRA of random weights (both matrices non-zero, so it changes the output) to `transformer` and
    saves it through `pipeline_class`; returns the file."""
    torch.manual_seed(seed)
    config = LoraConfig(
        r=4, lora_alpha=4, target_modules=list(LUMINA_VIDEO_LORA_TARGET_MODULES), init_lora_weights=False
    )
    transformer.add_adapter(config)
    pipeline_class.save_lora_weights(
        folder,
        transformer_lora_layers=get_peft_model_state_dict(transformer),
        transformer_lora_adapter_metadata=transformer.peft_config["default"].to_dict(),
    )
    return folder / "pytorch_lora_weights.safetensors"
