"""Full training under FSDP (two processes, each holding a shard of every weight) saves the same pipeline as one
process: the moving average and the saved transformer hold the whole, gathered weights, and the sharded checkpoint
resumes, also when some patchifications are not trained (their modules are frozen, so the optimizer has no state
the checkpoint could lack).

accelerate selects FSDP only on accelerator devices: on the CPU its `AcceleratorState` keeps `MULTI_CPU` whatever the
config says. The worker (this file, started by `torch.distributed.run`) flips that one switch after accelerate has
set up gloo, so that the rest of accelerate's FSDP2 path runs as on GPUs: `prepare` (`fully_shard` per transformer
block), `get_state_dict`, and `save_state`/`load_state` with a sharded state dict.
"""

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from distributed_exit import exit_without_teardown
from safetensors.torch import load_file
from synthetic_media import save_tiny_pipeline, write_dataset

from diffusers_lumina_video import LuminaVideoTransformer3DModel
from diffusers_lumina_video.training.checkpoints import EMA_STATE_NAME
from diffusers_lumina_video.training.ema import ShardedEMAModel


REPO_ROOT = Path(__file__).resolve().parents[1]
# What an accelerate config with `distributed_type: FSDP` (docs/lora_training.md) puts in the environment.
FSDP_ENV = {
    "ACCELERATE_USE_FSDP": "true",
    "FSDP_VERSION": "2",
    "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
    "FSDP_TRANSFORMER_CLS_TO_WRAP": "LuminaVideoTransformerBlock",
    "FSDP_STATE_DICT_TYPE": "SHARDED_STATE_DICT",
    "FSDP_RESHARD_AFTER_FORWARD": "true",
}
ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "ACCELERATE_USE_CPU": "true",
    "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests")]),
}
STEPS = 4
TRAINED_PATCH_SIZES = ("1x2x2", "2x2x2")
UNTRAINED_MARKER = ".2x4x4."  # the tiny transformer's third patchification


def untrained(name: str) -> bool:
    return UNTRAINED_MARKER in f".{name}."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_args(model: Path, dataset: Path, cache: Path, output: Path, batch_size: int, steps: int) -> list[str]:
    return [
        *("--training_mode", "full", "--ema_decay", "0.5"),
        *("--pretrained_model_name_or_path", str(model), "--dataset", str(dataset), "--cache_dir", str(cache)),
        *("--output_dir", str(output), "--resolution", "64", "--num_frames", "9", "--learning_rate", "2e-3"),
        *("--max_train_steps", str(steps), "--seed", "0", "--checkpointing_steps", "2", "--report_to", "none"),
        *("--train_batch_size", str(batch_size), "--validation_prompts", "w1 w2", "--validation_steps", "2"),
        *("--validation_num_frames", "9", "--validation_num_inference_steps", "2"),
        # Two of the three patchifications: the third one's embedder and head never get a gradient.
        *("--patch_sizes", *TRAINED_PATCH_SIZES),
    ]


def run(launcher: list[str], args: list[str], log: Path, env: dict | None = None) -> None:
    with log.open("w") as file:
        result = subprocess.run(
            [*launcher, *args], env={**ENV, **(env or {})}, stdout=file, stderr=subprocess.STDOUT, timeout=300
        )
    assert result.returncode == 0, log.read_text()[-4000:]


def sharded(args: list[str], log: Path) -> None:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    run([*torchrun, "--master-port", str(free_port()), __file__, *args], [], log, FSDP_ENV)


def losses(output: Path) -> list[float]:
    with (output / "logs" / "loss.csv").open() as file:
        return [float(row["loss"]) for row in csv.DictReader(file)]


def saved_transformer(output: Path) -> dict[str, torch.Tensor]:
    return load_file(output / "pipeline" / "transformer" / "diffusion_pytorch_model.safetensors")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fsdp")
    model, dataset, cache = save_tiny_pipeline(root / "model"), write_dataset(root / "data"), root / "cache"
    command = [sys.executable, "-m", "diffusers_lumina_video.commands.train_video"]
    run(command, [*train_args(model, dataset, cache, root / "one", 2, STEPS), "--prepare_only"], root / "prep.log")
    run(command, train_args(model, dataset, cache, root / "one", 2, STEPS), root / "one.log")
    sharded(train_args(model, dataset, cache, root / "two", 1, STEPS), root / "two.log")
    # Stopped half-way, then resumed from its sharded checkpoint.
    sharded(train_args(model, dataset, cache, root / "resumed", 1, STEPS // 2), root / "first_half.log")
    sharded([*train_args(model, dataset, cache, root / "resumed", 1, STEPS), "--resume", "latest"], root / "rest.log")
    return root


def test_sharded_run_saves_the_pipeline_of_one_process(runs):
    one, two = saved_transformer(runs / "one"), saved_transformer(runs / "two")
    base = load_file(runs / "model" / "transformer" / "diffusion_pytorch_model.safetensors")
    assert one.keys() == two.keys() == base.keys()
    # Measured: every weight agrees to 5e-7 (moves of 7e-3).
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-5, rtol=0, msg=name)
    assert max((one[k] - base[k]).abs().max().item() for k in one) > 1e-3, "the weights must have moved"
    frozen = [name for name in one if untrained(name)]
    assert frozen, "the third patchification has an embedder and a head"
    for name in frozen:
        assert torch.equal(two[name], base[name]), name
    # Measured: equal to 2e-7 relative (float32 rounding of the update, summed in another order over two processes).
    assert losses(runs / "two") == pytest.approx(losses(runs / "one"), rel=1e-5)
    # Validation renders the gathered moving average: the video of the process that holds all weights.
    for run in ("one", "two"):
        assert (runs / run / "validation" / "step-000002-0.mp4").is_file()
    last = [imageio.mimread(runs / run / "validation" / f"step-{STEPS:06d}-0.mp4") for run in ("one", "two")]
    # Measured: identical; one level allows for a rounding flip on another machine.
    assert np.abs(np.float32(last[0]) - np.float32(last[1])).max() <= 1


def test_sharded_checkpoint_holds_the_whole_moving_average(runs):
    """The checkpoint's average is gathered into whole tensors, one per trained weight (the untrained
    patchification's are frozen), and at the last step it is what the pipeline holds."""
    checkpoint = runs / "two" / "checkpoints" / f"checkpoint-{STEPS}"
    assert (checkpoint / "pytorch_model_fsdp_0").is_dir() and (checkpoint / "optimizer_0").is_dir()
    ema = torch.load(checkpoint / EMA_STATE_NAME, map_location="cpu", weights_only=False)["shadow_params"]
    config = LuminaVideoTransformer3DModel.load_config(runs / "model", subfolder="transformer")
    parameters = LuminaVideoTransformer3DModel.from_config(config).named_parameters()
    names = [name for name, _ in parameters if not untrained(name)]
    saved = saved_transformer(runs / "two")
    for name, average in zip(names, ema, strict=True):
        assert type(average) is torch.Tensor, name
        assert torch.equal(average, saved[name]), name


def test_sharded_run_resumes_from_its_checkpoint(runs):
    resumed, uninterrupted = saved_transformer(runs / "resumed"), saved_transformer(runs / "two")
    for name in uninterrupted:
        torch.testing.assert_close(resumed[name], uninterrupted[name], atol=1e-6, rtol=0, msg=name)
    assert losses(runs / "resumed") == losses(runs / "two")


def test_moving_average_of_another_model_is_refused():
    ema = ShardedEMAModel([torch.nn.Parameter(torch.zeros(2))])
    other = ShardedEMAModel([torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))])
    with pytest.raises(ValueError, match="The moving average has 2 tensors; this model trains 1"):
        ema.load_state_dict(other.state_dict())


def main() -> None:
    """One rank of a sharded run: accelerate's FSDP on the CPU, then the training command."""
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    from diffusers_lumina_video.commands.train_video import main as train_video

    init = AcceleratorState.__init__

    def init_with_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs) -> None:
        init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            # Both: each later `AcceleratorState()` copies the process state's type over its own.
            self.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin

    AcceleratorState.__init__ = init_with_fsdp_on_cpu
    exit_without_teardown(train_video(sys.argv[1:]))


if __name__ == "__main__":
    main()
