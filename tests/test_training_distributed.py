"""Two processes (DDP over gloo, on CPU) train the same LoRA as one process with the same global batch.

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

import pytest
import torch
from safetensors.torch import load_file
from synthetic_media import save_tiny_pipeline, write_dataset

from diffusers_lumina_video.training.trainer import LORA_WEIGHT_NAME


MODULE = "diffusers_lumina_video.commands.train_video"
# accelerate runs DDP on CPU (gloo) when told to use the CPU; `accelerate launch --cpu` starts one process only,
# so the processes come from torch.distributed.run.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def tiny_pipeline_dir(tmp_path_factory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny_pipeline"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(launcher: list[str], args: list[str], log: Path) -> None:
    with log.open("w") as file:
        result = subprocess.run(
            [*launcher, "-m", MODULE, *args], env=ENV, stdout=file, stderr=subprocess.STDOUT, timeout=300
        )
    assert result.returncode == 0, log.read_text()[-3000:]


def losses(output: Path) -> list[float]:
    with (output / "logs" / "loss.csv").open() as file:
        return [float(row["loss"]) for row in csv.DictReader(file)]


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
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
    ]
    run(torchrun, args("two", 1), tmp_path / "two.log")

    assert "8 steps of 3 micro-batches of 2 samples" in (tmp_path / "two.log").read_text()
    checkpoint = tmp_path / "two" / "checkpoints" / "checkpoint-8"
    assert (checkpoint / "random_states_0.pkl").is_file() and (checkpoint / "random_states_1.pkl").is_file()

    one, two = load_file(tmp_path / "one" / LORA_WEIGHT_NAME), load_file(tmp_path / "two" / LORA_WEIGHT_NAME)
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-5, rtol=0, msg=name)
    assert max(t.abs().max() for t in one.values()) > 0.05, "the LoRA must have moved for the comparison to mean much"
    torch.testing.assert_close(
        torch.tensor(losses(tmp_path / "two")), torch.tensor(losses(tmp_path / "one")), atol=1e-6, rtol=0
    )
