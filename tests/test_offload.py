"""Group offload through the pipeline on CPU (the onload device is the CPU too, so this checks the hooks and the
multi-scale schedule under them, not the transfers). Model offload and VAE tiling are covered in `test_pipeline.py`."""

import pytest
import torch

from diffusers_lumina_video.utils.tiny_random import tiny_random_pipeline


# Two patchifications in one run: the offload hooks must follow the switch of embedder and output head.
KWARGS = {
    "height": 32,
    "width": 32,
    "num_frames": 5,
    "num_inference_steps": 3,
    "patch_size": [(0.0, (2, 4, 4)), (0.5, (1, 2, 2))],
    "output_type": "latent",
}


def _run(pipe) -> torch.Tensor:
    return pipe("a cat", generator=torch.Generator().manual_seed(0), **KWARGS).frames


@pytest.fixture(scope="module")
def reference() -> torch.Tensor:
    return _run(tiny_random_pipeline())


@pytest.mark.parametrize(
    "offload",
    [
        {"offload_type": "block_level", "num_blocks_per_group": 1},
        {"offload_type": "leaf_level"},
    ],
    ids=["block_level", "leaf_level"],
)
def test_group_offload_matches(reference, offload):
    pipe = tiny_random_pipeline()
    pipe.enable_group_offload(onload_device=torch.device("cpu"), offload_device=torch.device("cpu"), **offload)
    torch.testing.assert_close(_run(pipe), reference)
