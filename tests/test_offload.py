"""Group and sequential offload through the pipelines on CPU (the onload device is the CPU too, so this checks the
hooks and the multi-scale schedule under them, not the transfers). Model offload and VAE tiling are covered in
`test_pipeline.py`."""

import accelerate
import pytest
import torch

from diffusers_lumina_video.showcase.builtin_models import tiny_random_pipeline, tiny_random_v2a_pipeline


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


@pytest.fixture
def cpu_execution_device(monkeypatch):
    """`enable_sequential_cpu_offload` names its execution device `<type>:<index>`. For `cpu:0`, accelerate moves
    each onloaded weight with `Parameter.to("cpu:0")`, which copies a `cpu` tensor into a plain `Tensor` (not a
    `Parameter`), and its next offload cannot rebuild the parameter. Accelerators keep the index, so only the CPU
    stand-in needs the index dropped; nothing else of the offload changes."""
    offload = accelerate.cpu_offload

    def cpu_offload(model, execution_device=None, **kwargs):
        return offload(model, torch.device(torch.device(execution_device).type), **kwargs)

    monkeypatch.setattr(accelerate, "cpu_offload", cpu_offload)


def test_sequential_cpu_offload_matches(reference, cpu_execution_device):
    """Text encoder, transformer (across a patch-size switch) and VAE all run with their weights on `meta`
    between calls."""
    pipe = tiny_random_pipeline()
    pipe.enable_sequential_cpu_offload(device="cpu")
    assert pipe.transformer.layers[0].attn.to_q.weight.device.type == "meta"
    assert pipe.text_encoder.embed_tokens.weight.device.type == "meta"
    torch.testing.assert_close(_run(pipe), reference)
    decoded = pipe("a cat", generator=torch.Generator().manual_seed(0), **{**KWARGS, "output_type": "pt"}).frames
    assert decoded.shape[1] == KWARGS["num_frames"] and torch.isfinite(decoded).all()
    assert pipe.transformer.layers[0].attn.to_q.weight.device.type == "meta"


def test_sequential_cpu_offload_matches_for_v2a(cpu_execution_device):
    """Every V2A component offloaded: CLIP, Synchformer, transformer, audio VAE and vocoder."""
    video = torch.rand(30, 40, 48, 3, generator=torch.Generator().manual_seed(0))

    def run(pipe):
        kwargs = {"video": video, "fps": 25, "prompt": "a dog", "num_inference_steps": 2, "output_type": "pt"}
        return pipe(**kwargs, generator=torch.Generator().manual_seed(0)).audios

    reference = run(tiny_random_v2a_pipeline())
    pipe = tiny_random_v2a_pipeline()
    pipe.enable_sequential_cpu_offload(device="cpu")
    assert pipe.transformer.layers[0].attn.to_q.weight.device.type == "meta"
    torch.testing.assert_close(run(pipe), reference)
