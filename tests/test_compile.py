"""`torch.compile` over a multi-scale sampling run: no graph breaks (fullgraph) and no recompilation per step."""

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

from diffusers_lumina_video.showcase.builtin_models import tiny_random_pipeline


# Three patchifications, two steps each; the second run repeats the first.
KWARGS = {
    "height": 32,
    "width": 32,
    "num_frames": 5,
    "num_inference_steps": 6,
    "patch_size": [(0.0, (2, 4, 4)), (0.3, (2, 2, 2)), (0.6, (1, 2, 2))],
    "guidance_scale": 4.0,
    "output_type": "latent",
}


def _run(pipe) -> torch.Tensor:
    return pipe("a cat", generator=torch.Generator().manual_seed(0), **KWARGS).frames


@pytest.mark.parametrize("regional", [True, False], ids=["repeated_blocks", "whole_model"])
def test_compile_without_graph_breaks_or_per_step_recompilation(regional):
    torch._dynamo.reset()
    pipe = tiny_random_pipeline()
    eager = _run(pipe)
    # `aot_eager` traces what inductor would compile, without building kernels.
    counter = CompileCounterWithBackend("aot_eager")
    if regional:
        pipe.transformer.compile_repeated_blocks(fullgraph=True, backend=counter)
    else:
        pipe.transformer.compile(fullgraph=True, backend=counter)

    compiled = _run(pipe)
    first_run = counter.frame_count
    # At most one graph per patchification (one token count each), fewer than the 12 transformer calls.
    assert 1 <= first_run <= 3
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)

    _run(pipe)
    assert counter.frame_count == first_run  # nothing recompiles on a second run
