"""Fully sharded data parallel training of both transformers: two processes (FSDP2 `fully_shard` over gloo, on CPU),
each with half of the batch, give the gradients of one process with the whole batch.

Each transformer block is one FSDP unit (what accelerate's `fsdp_transformer_layer_cls_to_wrap` /
`_no_split_modules` selects) and the rest of the model another, so every weight a block or the model reads must be
gathered by the `forward` of the module that owns it. accelerate itself does not enable FSDP on CPU (its
`AcceleratorState` switches to `DistributedType.FSDP` only for accelerator device types, and stays `MULTI_CPU`
otherwise), so the CPU test shards with PyTorch directly; a launch through accelerate is in `docs/performance.md`.

Run by pytest; `torch.distributed.run` starts this file itself as the two ranks.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from distributed_exit import exit_without_teardown


REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_sharded_processes_give_the_gradients_of_one(tmp_path):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests")]),
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--master-port", str(free_port()), __file__, "--output", str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    for rank in range(2):
        results = json.loads((tmp_path / f"rank{rank}.json").read_text())
        for name in ("video", "v2a"):
            # Sharded: each rank holds half of every block weight's rows.
            assert results[name]["local_rows"] * 2 == results[name]["full_rows"], (name, results[name])
            assert results[name]["max_grad_diff"] <= 1e-6, (name, results[name])
            assert results[name]["grads"] > 0


def _sharded_gradients(make_model, inputs: dict, mesh) -> dict:
    """Largest difference between the gathered gradients of the sharded model on this rank's half of the batch and
    those of an unsharded copy on the whole batch."""
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard

    rank = dist.get_rank()
    torch.manual_seed(0)
    model = make_model().train()
    reference = make_model().train()
    reference.load_state_dict(model.state_dict())
    for block in model.layers:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)

    half = {key: value[rank : rank + 1] for key, value in inputs.items()}
    model(**half).sample.square().mean().backward()
    reference(**inputs).sample.square().mean().backward()

    differences = []
    for (name, param), (_, expected) in zip(model.named_parameters(), reference.named_parameters(), strict=True):
        if expected.grad is None:  # e.g. the embedder of a patchification this input does not use
            assert param.grad is None, name
            continue
        differences.append((param.grad.full_tensor() - expected.grad).abs().max().item())
    weight = model.layers[0].attn.to_q.weight
    return {
        "max_grad_diff": max(differences),
        "grads": len(differences),
        "local_rows": weight.to_local().shape[0],
        "full_rows": weight.shape[0],
    }


def main() -> None:
    import torch.distributed as dist
    from context_parallel_worker import v2a_inputs, video_inputs
    from torch.distributed.device_mesh import init_device_mesh

    from diffusers_lumina_video.showcase.builtin_models import tiny_transformer, tiny_v2a_transformer

    parser = argparse.ArgumentParser()
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    generator = torch.Generator().manual_seed(0)
    results = {
        "video": _sharded_gradients(tiny_transformer, video_inputs(generator), mesh),
        "v2a": _sharded_gradients(tiny_v2a_transformer, v2a_inputs(generator), mesh),
    }
    (args.output / f"rank{dist.get_rank()}.json").write_text(json.dumps(results))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    exit_without_teardown()
