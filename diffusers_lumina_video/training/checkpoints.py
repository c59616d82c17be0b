"""Which training checkpoints exist and which one a run continues from."""

from pathlib import Path

from .config import LoraTrainingConfig


CHECKPOINT_PREFIX = "checkpoint-"
TRAINER_STATE_FILE = "trainer_state.json"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (`checkpoint-N`), oldest first; unfinished ones have another name."""
    found = []
    for path in folder.glob(f"{CHECKPOINT_PREFIX}*") if folder.is_dir() else []:
        suffix = path.name[len(CHECKPOINT_PREFIX) :]
        if suffix.isdigit() and (path / TRAINER_STATE_FILE).is_file():
            found.append((int(suffix), path))
    return sorted(found)


def resolve_resume_path(config: LoraTrainingConfig) -> Path | None:
    """The checkpoint to continue from, if any. A new run may not start among another run's checkpoints: keeping the
    last K would then delete its own."""
    checkpoints = list_checkpoints(config.output_path / "checkpoints")
    if config.resume_from_checkpoint is None:
        if checkpoints:
            raise FileExistsError(
                f"{config.output_path} holds checkpoints of an earlier run (up to step {checkpoints[-1][0]}). Pass "
                "`--resume latest` to continue it, or choose another `output_dir`."
            )
        return None
    if config.resume_from_checkpoint == "latest":
        return checkpoints[-1][1] if checkpoints else None
    path = Path(config.resume_from_checkpoint)
    if not (path / TRAINER_STATE_FILE).is_file():
        raise FileNotFoundError(
            f"`resume_from_checkpoint` {path} is not a complete checkpoint (no {TRAINER_STATE_FILE}); use 'latest' "
            f"or a folder under {config.output_path / 'checkpoints'}."
        )
    return path
