"""Two processes (DDP over gloo, on CPU) train the same LoRA as one process with the same global batch, for
Lumina-Video and for Lumina-V2A.

"The same" here: one process with `train_batch_size=2` and two processes with `train_batch_size=1` see the same
global batches, draw the same noise per sample (seeded by its place in the global batch, not by the process) and
average the same gradients, so the runs differ only by float rounding (DDP averages two per-process means instead
of taking one mean over both samples; captions are padded per process). Measured: about 3e-7 on weights of size
0.2 after 8 steps; the test allows 1e-5. The logged losses agree to 1e-6.
"""

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from synthetic_av_media import save_tiny_v2a_pipeline, write_av_clip
from synthetic_media import write_dataset

from diffusers_lumina_video.training.trainer import LORA_WEIGHT_NAME


MODULES = {"video": "diffusers_lumina_video.commands.train_video", "v2a": "diffusers_lumina_video.commands.train_v2a"}
# accelerate runs DDP on CPU (gloo) when told to use the CPU; `accelerate launch --cpu` starts one process only,
# so the processes come from torch.distributed.run.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true", "TOKENIZERS_PARALLELISM": "false"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(launcher: list[str], args: list[str], log: Path, family: str = "video") -> None:
    with log.open("w") as file:
        result = subprocess.run(
            [*launcher, "-m", MODULES[family], *args], env=ENV, stdout=file, stderr=subprocess.STDOUT, timeout=300
        )
    assert result.returncode == 0, log.read_text()[-3000:]


def losses(output: Path) -> list[float]:
    with (output / "logs" / "loss.csv").open() as file:
        return [float(row["loss"]) for row in csv.DictReader(file)]


def torchrun() -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port())]


def assert_same_lora_and_losses(one: Path, two: Path) -> None:
    weights_one, weights_two = load_file(one / LORA_WEIGHT_NAME), load_file(two / LORA_WEIGHT_NAME)
    assert weights_one.keys() == weights_two.keys()
    for name in weights_one:
        torch.testing.assert_close(weights_two[name], weights_one[name], atol=1e-5, rtol=0, msg=name)
    assert max(t.abs().max() for t in weights_one.values()) > 0.05, (
        "the LoRA must have moved for the test to mean much"
    )
    torch.testing.assert_close(torch.tensor(losses(two)), torch.tensor(losses(one)), atol=1e-6, rtol=0)


def test_two_processes_agree_with_one(tmp_path, tiny_pipeline_dir):
    dataset = write_dataset(tmp_path / "data")

    def args(output: str, batch_size: int) -> list[str]:
        return [
            *("--pretrained_model_name_or_path", str(tiny_pipeline_dir), "--dataset", str(dataset)),
            *("--cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / output)),
            *("--resolution", "64", "--num_frames", "9", "--rank", "8", "--learning_rate", "5e-3"),
            *("--max_train_steps", "8", "--checkpointing_steps", "4", "--report_to", "none"),
            *("--train_batch_size", str(batch_size)),
        ]

    python = [sys.executable]
    run(python, [*args("one", 2), "--prepare_only"], tmp_path / "prepare.log")
    run(python, args("one", 2), tmp_path / "one.log")
    run(torchrun(), args("two", 1), tmp_path / "two.log")

    assert "8 steps of 3 micro-batches of 2 samples" in (tmp_path / "two.log").read_text()
    checkpoint = tmp_path / "two" / "checkpoints" / "checkpoint-8"
    assert (checkpoint / "random_states_0.pkl").is_file() and (checkpoint / "random_states_1.pkl").is_file()

    assert_same_lora_and_losses(tmp_path / "one", tmp_path / "two")


def test_two_processes_agree_with_one_on_v2a(tmp_path):
    """The same for Lumina-V2A clips: the condition dropouts, like the noise, follow each sample's place in the
    global batch."""
    save_tiny_v2a_pipeline(tmp_path / "model")
    (tmp_path / "data").mkdir()
    for seed in range(4):
        write_av_clip(tmp_path / "data" / f"clip{seed}.mp4", seed=seed)

    def args(output: str, batch_size: int) -> list[str]:
        return [
            *("--pretrained_model_name_or_path", str(tmp_path / "model"), "--dataset", str(tmp_path / "data")),
            *("--cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / output)),
            *("--clip_duration", "1.0", "--rank", "4", "--learning_rate", "3e-2", "--max_train_steps", "6"),
            *("--checkpointing_steps", "3", "--report_to", "none", "--train_batch_size", str(batch_size)),
            *("--visual_dropout", "0.3", "--text_dropout", "0.3", "--sync_dropout", "0.3"),
        ]

    run([sys.executable], [*args("one", 2), "--prepare_only"], tmp_path / "prepare.log", "v2a")
    run([sys.executable], args("one", 2), tmp_path / "one.log", "v2a")
    run(torchrun(), args("two", 1), tmp_path / "two.log", "v2a")
    assert "6 steps of 1 micro-batches of 2 samples" in (tmp_path / "two.log").read_text()
    assert_same_lora_and_losses(tmp_path / "one", tmp_path / "two")
