"""One rank of a context-parallel run (started by `tests/test_context_parallel.py` through torch.distributed.run).

Each model runs once alone and once with `enable_parallelism`; the rank writes the largest difference and the token
count its first block saw to `<output>/rank<r>.json`.
"""

import argparse
import json
from pathlib import Path
from unittest import mock

import torch
import torch.distributed as dist
from diffusers import ContextParallelConfig
from distributed_exit import exit_without_teardown

from diffusers_lumina_video.showcase.builtin_models import (
    TINY_CLIP_DIM,
    TINY_SYNC_DIM,
    TINY_TEXT_DIM,
    tiny_transformer,
    tiny_v2a_transformer,
)


def video_inputs(generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "hidden_states": torch.randn(2, 4, 4, 8, 8, generator=generator),
        "timestep": torch.tensor([0.3, 0.7]),
        "encoder_hidden_states": torch.randn(2, 6, TINY_TEXT_DIM, generator=generator),
        "encoder_attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]),
        "motion_score": torch.tensor([4.0, -1.0]),
    }


def v2a_inputs(generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "hidden_states": torch.randn(2, 8, 24, 16, generator=generator),
        "timestep": torch.tensor([0.3, 0.7]),
        "encoder_hidden_states": torch.randn(2, 7, TINY_CLIP_DIM, generator=generator),
        "encoder_attention_mask": torch.tensor([[1] * 7, [1, 1, 1, 1, 0, 0, 0]]),
        "visual_hidden_states": torch.randn(2, 8, TINY_CLIP_DIM, generator=generator),
        "sync_hidden_states": torch.randn(2, 16, TINY_SYNC_DIM, generator=generator),
    }


def compare(model: torch.nn.Module, inputs: dict, config: ContextParallelConfig, backend: str, **kwargs) -> dict:
    seen = []
    # The split happens inside the first block's hooked forward, so the last block shows what each rank holds.
    model.layers[-1].register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[1]))
    with torch.no_grad():
        alone = model(**inputs, **kwargs).sample
        model.set_attention_backend(backend)
        model.enable_parallelism(config=config)
        parallel = model(**inputs, **kwargs).sample
    return {"max_abs_diff": (parallel - alone).abs().max().item(), "tokens": seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["ulysses", "ring"], required=True)
    parser.add_argument("--backend", default="native")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()

    on_cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if on_cuda else "gloo")
    rank = dist.get_rank()
    device = torch.device("cuda", rank) if on_cuda else torch.device("cpu")
    if on_cuda:
        torch.cuda.set_device(device)
    else:
        # Diffusers picks the rank's device as `rank % torch.accelerator.device_count()`, which divides by zero on a
        # machine without an accelerator; everything after that (mesh, hooks, all-to-all) runs on CPU with gloo.
        mock.patch("torch.accelerator.device_count", return_value=1).start()

    results = {}
    for name, build, make_inputs, kwargs in (
        ("video", tiny_transformer, video_inputs, {"patch_size": (2, 2, 2)}),
        ("v2a", tiny_v2a_transformer, v2a_inputs, {}),
    ):
        torch.manual_seed(0)
        config = ContextParallelConfig(**{f"{args.mode}_degree": dist.get_world_size()})
        inputs = {k: v.to(device) for k, v in make_inputs(torch.Generator().manual_seed(0)).items()}
        results[name] = compare(build().to(device), inputs, config, args.backend, **kwargs)

    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / f"rank{rank}.json").write_text(json.dumps(results))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    exit_without_teardown()
