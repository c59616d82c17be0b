import pytest
import torch
from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry

from diffusers_lumina_video.models.transformers import transformer_lumina_video
from diffusers_lumina_video.models.transformers.transformer_lumina_video import masked_attention_backend
from diffusers_lumina_video.pipelines.lumina_v2a.pipeline_lumina_v2a import sync_segment_count
from diffusers_lumina_video.showcase.builtin_models import (
    TINY_SYNC_DIM,
    tiny_random_pipeline,
    tiny_random_v2a_pipeline,
    tiny_transformer,
)


SMALL = {"height": 32, "width": 32, "num_frames": 5, "num_inference_steps": 2, "output_type": "latent"}


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("flash", "flash_varlen"),
        ("_flash_3", "_flash_varlen_3"),
        ("sage", "sage_varlen"),
        ("flash_hub", "native"),
        ("_native_flash", "native"),
        ("_native_math", "_native_math"),
        ("flex", "flex"),
        ("xformers", "xformers"),
    ],
)
def test_masked_attention_backend_takes_masks(backend, expected):
    assert masked_attention_backend(backend) == expected


def test_masked_attention_backend_follows_the_global_backend():
    from diffusers.models.attention_dispatch import attention_backend

    assert masked_attention_backend(None) is None  # the global default takes masks: keep dispatching with None
    with attention_backend("_native_flash"):
        assert masked_attention_backend(None) == "native"


def test_transformer_runs_with_a_backend_that_refuses_masks(tiny_inputs):
    # PyTorch's flash kernel (`_native_flash`) runs on CPU and rejects `attn_mask`, like flash-attn on GPUs.
    model = tiny_transformer()
    with torch.no_grad():
        reference = model(**tiny_inputs).sample
        model.set_attention_backend("_native_flash")
        routed = model(**tiny_inputs).sample
    torch.testing.assert_close(routed, reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["_native_flash", "_native_math"])
def test_video_pipeline_runs_with_attention_backend(backend):
    pipe = tiny_random_pipeline()
    generator = torch.Generator().manual_seed(0)
    reference = pipe(["a cat", "a dog with a long caption"], generator=generator, **SMALL).frames
    pipe.transformer.set_attention_backend(backend)
    generator = torch.Generator().manual_seed(0)
    frames = pipe(["a cat", "a dog with a long caption"], generator=generator, **SMALL).frames
    torch.testing.assert_close(frames, reference, atol=1e-4, rtol=1e-4)


def test_v2a_pipeline_runs_with_a_backend_that_refuses_masks():
    pipe = tiny_random_v2a_pipeline()
    video = torch.rand(30, 40, 48, 3)
    sync = torch.randn(1, sync_segment_count(1.2) * 8, TINY_SYNC_DIM, generator=torch.Generator().manual_seed(0))
    kwargs = {"video": video, "fps": 25, "prompt": "a dog", "sync_features": sync, "output_type": "latent"}
    reference = pipe(**kwargs, generator=torch.Generator().manual_seed(0), num_inference_steps=2).audios
    pipe.transformer.set_attention_backend("_native_flash")
    routed = pipe(**kwargs, generator=torch.Generator().manual_seed(0), num_inference_steps=2).audios
    torch.testing.assert_close(routed, reference, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("backend", "padded", "expected"),
    [
        # (backend, caption padded) -> per attention call: (key heads, mask given, enable_gqa)
        (None, True, [(2, False, True), (2, True, True)]),
        (None, False, [(2, False, True), (2, False, True)]),
        ("_native_math", True, [(2, False, True), (2, True, True)]),
        ("_native_flash", True, [(4, False, False), (4, True, False)]),
        ("_native_flash", False, [(4, False, False), (4, False, False)]),
    ],
    ids=["native-padded", "native-unpadded", "math-padded", "flash-padded", "flash-unpadded"],
)
def test_attention_calls_read_grouped_heads_and_skip_an_absent_mask(
    tiny_inputs, monkeypatch, backend, padded, expected
):
    """SDPA backends read the 2 key/value heads of the 4 query heads as they are (no copy); other backends get them
    expanded. A caption batch without padding, given as no mask, runs its attention without one, with the output of
    an all-ones mask."""
    model = tiny_transformer()
    # `set_attention_backend` (earlier tests) also sets Diffusers' global backend; start from the default one.
    monkeypatch.setattr(_AttentionBackendRegistry, "_active_backend", AttentionBackendName.NATIVE)
    if not padded:
        tiny_inputs["encoder_attention_mask"] = torch.ones_like(tiny_inputs["encoder_attention_mask"])
    with torch.no_grad():
        reference = model(**tiny_inputs).sample
    if not padded:
        tiny_inputs["encoder_attention_mask"] = None
    if backend is not None:
        model.set_attention_backend(backend)
    calls = []
    dispatch = transformer_lumina_video.dispatch_attention_fn

    def recording_dispatch(query, key, value, attn_mask=None, enable_gqa=False, **kwargs):
        calls.append((key.shape[2], attn_mask is not None, enable_gqa))
        return dispatch(query, key, value, attn_mask=attn_mask, enable_gqa=enable_gqa, **kwargs)

    monkeypatch.setattr(transformer_lumina_video, "dispatch_attention_fn", recording_dispatch)
    with torch.no_grad():
        output = model(**tiny_inputs).sample
    assert calls[:2] == expected and len(calls) == 2 * model.config.num_layers
    torch.testing.assert_close(output, reference, atol=1e-5, rtol=1e-5)
