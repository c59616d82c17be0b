"""The training commands run the way a user runs them: in their own process, one thread each, killed for real."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


TRAINING_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def training_command(name: str) -> list[str]:
    """`python -m diffusers_lumina_video.commands.<name>`, e.g. "train_video" or "train_v2a"."""
    return [sys.executable, "-m", f"diffusers_lumina_video.commands.{name}"]


def run_training_command(command: list[str], args: list[str], log: Path) -> None:
    with log.open("w") as file:
        result = subprocess.run(command + args, env=TRAINING_ENV, stdout=file, stderr=subprocess.STDOUT, timeout=300)
    assert result.returncode == 0, log.read_text()[-3000:]


def kill_after_first_checkpoint(command: list[str], args: list[str], output: Path, first_step: int, log: Path) -> int:
    """Starts a run, SIGKILLs it once `checkpoint-{first_step}` exists (while it still trains) and returns the step
    of its newest checkpoint."""
    with log.open("w") as file:
        process = subprocess.Popen(command + args, env=TRAINING_ENV, stdout=file, stderr=subprocess.STDOUT)
    first_checkpoint, deadline = output / "checkpoints" / f"checkpoint-{first_step}", time.monotonic() + 120
    while not first_checkpoint.is_dir():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint after 120 s"
        time.sleep(0.01)
    assert process.poll() is None, "the run must still be training when it is killed"
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    return max(int(p.name.split("-")[1]) for p in (output / "checkpoints").glob("checkpoint-*"))
