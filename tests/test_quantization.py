"""Quantized loading through Diffusers' quantizers (torchao weight-only int8, on CPU)."""

import pytest
import torch
from diffusers import TorchAoConfig

from diffusers_lumina_video import LuminaVideoTransformer3DModel
from diffusers_lumina_video.showcase.builtin_models import tiny_random_pipeline, tiny_transformer


torchao = pytest.importorskip("torchao")
from torchao.quantization import Int8Tensor, Int8WeightOnlyConfig  # noqa: E402


@pytest.fixture(scope="module")
def saved_transformer(tmp_path_factory):
    path = tmp_path_factory.mktemp("transformer")
    model = tiny_transformer()
    model.save_pretrained(path)
    return model, path


def _inputs(dtype: torch.dtype) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "hidden_states": torch.randn(2, 4, 4, 8, 8, generator=generator, dtype=dtype),
        "timestep": torch.tensor([0.3, 0.7]),
        "encoder_hidden_states": torch.randn(2, 6, 32, generator=generator, dtype=dtype),
        "encoder_attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]),
    }


def test_torchao_int8_weight_only_keeps_conditioning_in_full_precision(saved_transformer):
    reference_model, path = saved_transformer
    model = LuminaVideoTransformer3DModel.from_pretrained(
        path, quantization_config=TorchAoConfig(Int8WeightOnlyConfig()), torch_dtype=torch.bfloat16
    )
    assert isinstance(model.layers[0].attn.to_q.weight, Int8Tensor)
    assert isinstance(model.layers[-1].feed_forward.linear_1.weight, Int8Tensor)
    conditioning = model.condition_embedder.timestep_embedder.linear_1.weight
    assert not isinstance(conditioning, Int8Tensor) and conditioning.dtype == torch.float32

    with torch.no_grad():
        reference = reference_model(**_inputs(torch.float32)).sample
        quantized = model(**_inputs(torch.bfloat16)).sample
    assert quantized.dtype == torch.bfloat16
    # bf16 activations with int8 weights: about 1% of the output's range on this tiny model.
    assert (quantized.float() - reference).abs().max() < 0.05 * reference.abs().max()


def test_quantized_transformer_runs_in_the_pipeline(saved_transformer):
    _, path = saved_transformer
    pipe = tiny_random_pipeline()
    pipe.transformer = LuminaVideoTransformer3DModel.from_pretrained(
        path, quantization_config=TorchAoConfig(Int8WeightOnlyConfig()), torch_dtype=torch.bfloat16
    )
    kwargs = {"height": 32, "width": 32, "num_frames": 5, "num_inference_steps": 2, "output_type": "latent"}
    latents = pipe("a cat", generator=torch.Generator().manual_seed(0), **kwargs).frames
    assert torch.isfinite(latents).all()
