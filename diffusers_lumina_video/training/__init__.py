"""Training of Lumina-Video (a LoRA or every weight): data preparation, the training recipe and the accelerate loop."""

from .config import TrainingConfig
from .prepare import prepare_dataset
from .trainer import Trainer, prepare_data, train


__all__ = ["Trainer", "TrainingConfig", "prepare_data", "prepare_dataset", "train"]
