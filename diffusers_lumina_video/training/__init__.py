"""LoRA fine-tuning of Lumina-Video: data preparation, the training recipe and the accelerate loop."""

from .config import LoraTrainingConfig
from .prepare import prepare_dataset
from .trainer import LoraTrainer, prepare_lora_data, train_lora


__all__ = ["LoraTrainer", "LoraTrainingConfig", "prepare_dataset", "prepare_lora_data", "train_lora"]
