"""Which training checkpoints exist and which one a run continues from."""

import json
import zipfile
from pathlib import Path

from safetensors import safe_open

from ..loaders.single_file_utils import CheckpointFormatError, load_torch_file_safely
from .config import TrainingConfig


CHECKPOINT_PREFIX = "checkpoint-"
TRAINER_STATE_FILE = "trainer_state.json"
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
# What accelerate's `save_state` writes besides the LoRA; `load_state` needs all of them. Each entry lists the names
# one state may have: without FSDP, then under FSDP with a full or a sharded state dict (the latter a folder).
_STATE_FILES = (("optimizer.bin", "optimizer_0"), ("scheduler.bin",))
# What it writes in full mode: the transformer, and the moving average (the first object registered for checkpointing).
MODEL_WEIGHT_NAME = "model.safetensors"
_MODEL_WEIGHT_NAMES = (MODEL_WEIGHT_NAME, "pytorch_model_fsdp.bin", "pytorch_model_fsdp_0")
EMA_STATE_NAME = "custom_checkpoint_0.pkl"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (`checkpoint-N`), oldest first; unfinished ones have another name."""
    found = []
    for path in folder.glob(f"{CHECKPOINT_PREFIX}*") if folder.is_dir() else []:
        suffix = path.name[len(CHECKPOINT_PREFIX) :]
        if suffix.isdigit() and (path / TRAINER_STATE_FILE).is_file():
            found.append((int(suffix), path))
    return sorted(found)


def resolve_resume_path(config: TrainingConfig, lora_modules: list[str]) -> Path | None:
    """The checkpoint to continue from, if any, checked against this run (see `check_checkpoint`). A new run may not
    start among another run's checkpoints: keeping the last K would then delete its own."""
    checkpoints = list_checkpoints(config.output_path / "checkpoints")
    if config.resume_from_checkpoint is None:
        if checkpoints:
            raise FileExistsError(
                f"{config.output_path} holds checkpoints of an earlier run (up to step {checkpoints[-1][0]}). Pass "
                "`--resume latest` to continue it, or choose another `output_dir`."
            )
        return None
    if config.resume_from_checkpoint == "latest":
        if not checkpoints:
            return None
        path = checkpoints[-1][1]
    else:
        path = Path(config.resume_from_checkpoint)
        if not (path / TRAINER_STATE_FILE).is_file():
            raise FileNotFoundError(
                f"`resume_from_checkpoint` {path} is not a complete checkpoint (no {TRAINER_STATE_FILE}); use "
                f"'latest' or a folder under {config.output_path / 'checkpoints'}."
            )
    check_checkpoint(path, config, lora_modules)
    return path


def check_checkpoint(path: Path, config: TrainingConfig, lora_modules: list[str]) -> None:
    """Raises a `ValueError` naming the file and the fault when the checkpoint at `path` is corrupt or was made by a
    run this one cannot continue (other mode, LoRA rank or layers, a step past `max_train_steps`), or a file of it
    is damaged or unsafe (see `check_checkpoint_files`)."""
    state_file = path / TRAINER_STATE_FILE
    try:
        state = json.loads(state_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"Checkpoint file {state_file} is corrupt ({error}).") from None
    fields = ("global_step", "global_batch_size")
    if not isinstance(state, dict) or not all(isinstance(state.get(k), int) and state[k] >= 1 for k in fields):
        raise ValueError(f"Checkpoint file {state_file} is corrupt: it needs positive integers {list(fields)}.")
    if state["global_step"] > config.max_train_steps:
        raise ValueError(
            f"Checkpoint {path} was saved at step {state['global_step']}, past this run's `max_train_steps` "
            f"{config.max_train_steps}."
        )
    saved_mode = "lora" if (path / LORA_WEIGHT_NAME).is_file() else "full"
    if saved_mode != config.training_mode:
        raise ValueError(
            f"Checkpoint {path} was saved by a `training_mode` '{saved_mode}' run; this run trains "
            f"'{config.training_mode}'."
        )
    needed = [(LORA_WEIGHT_NAME,) if saved_mode == "lora" else _MODEL_WEIGHT_NAMES, *_STATE_FILES]
    if config.uses_ema:
        needed.append((EMA_STATE_NAME,))
    # Named as written without FSDP.
    missing = [names[0] for names in needed if not any((path / name).exists() for name in names)]
    if missing:
        raise ValueError(f"Checkpoint {path} is incomplete: {missing} missing.")
    if config.training_mode == "full":
        if (path / EMA_STATE_NAME).is_file() and not config.uses_ema:
            raise ValueError(
                f"Checkpoint {path} holds a moving average of the weights, but this run has `ema_decay` 0."
            )
        check_checkpoint_files(path, state["global_step"])
        return
    check_checkpoint_files(path, state["global_step"])
    lora_file = path / LORA_WEIGHT_NAME
    shapes = _safetensors_shapes(lora_file)
    down = {key.split(".lora_A.")[0].split(".", 1)[1]: shape for key, shape in shapes.items() if ".lora_A." in key}
    ranks = sorted({shape[0] for shape in down.values()})
    if ranks != [config.rank]:
        raise ValueError(f"Checkpoint file {lora_file} has LoRA rank {ranks}, but this run trains rank {config.rank}.")
    if set(down) != set(lora_modules):
        differ = sorted(set(down) ^ set(lora_modules))
        raise ValueError(
            f"Checkpoint file {lora_file} wraps other layers than this run's `target_modules` "
            f"(only in one of them: {differ[:5]})."
        )


def _safetensors_shapes(file: Path) -> dict[str, list[int]]:
    try:
        with safe_open(str(file), framework="pt") as opened:
            return {key: opened.get_slice(key).get_shape() for key in opened.keys()}
    except Exception as error:  # safetensors raises its own error types for every kind of damage
        raise CheckpointFormatError(f"Checkpoint file {file} is corrupt ({type(error).__name__}: {error}).") from None


def _check_file(file: Path) -> None:
    """Reads `file` as accelerate will: safetensors by their header; pickles in full (their zip checksums) and with
    the safe loader (what they hold), which accelerate itself does not use for the moving average."""
    from accelerate.utils.other import TORCH_SAFE_GLOBALS  # what accelerate's own loader allows (numpy RNG state)

    if file.suffix == ".safetensors":
        _safetensors_shapes(file)
        return
    try:
        with zipfile.ZipFile(file) as archive:
            damaged = archive.testzip()
    except Exception as error:  # `zipfile` raises many kinds for a damaged archive (BadZipFile, EOFError, ...)
        raise CheckpointFormatError(f"Checkpoint file {file} is corrupt or cut short ({error}).") from None
    if damaged is not None:
        raise CheckpointFormatError(f"Checkpoint file {file} is corrupt: its part {damaged} fails its checksum.")
    load_torch_file_safely(file, allowed_globals=TORCH_SAFE_GLOBALS, mmap=True, kind="training")


def check_checkpoint_files(path: Path, step: int) -> None:
    """Raises a `ValueError` naming the first file of the checkpoint at `path` (saved at `step`) that is damaged or
    would run code when loaded, and saying what to do; read before any model loads."""
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin", ".pkl"))
    try:
        for file in files:
            _check_file(file)
    except CheckpointFormatError as error:
        earlier = [folder for saved, folder in list_checkpoints(path.parent) if saved < step]
        resume = f"resume from the earlier {earlier[-1]} (`--resume {earlier[-1]}`) or " if earlier else ""
        raise ValueError(
            f"{error} Checkpoint {path} cannot be resumed: {resume}start over in another `output_dir`."
        ) from None
