import pytest
import torch
from diffusers import AutoModel

from diffusers_lumina_video import LuminaV2ATransformerModel
from diffusers_lumina_video.models.transformers.transformer_lumina_video import patchify, unpatchify
from diffusers_lumina_video.utils.tiny_random import TINY_CLIP_DIM, TINY_SYNC_DIM, tiny_v2a_transformer


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return tiny_v2a_transformer()


def make_inputs(batch_size: int = 2, latent_frames: int = 24, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        "hidden_states": torch.randn(batch_size, 8, latent_frames, 16, generator=generator),
        "timestep": torch.rand(batch_size, generator=generator),
        "encoder_hidden_states": torch.randn(batch_size, 7, TINY_CLIP_DIM, generator=generator),
        "encoder_attention_mask": torch.ones(batch_size, 7, dtype=torch.long),
        "visual_hidden_states": torch.randn(batch_size, 8, TINY_CLIP_DIM, generator=generator),
        "sync_hidden_states": torch.randn(batch_size, 16, TINY_SYNC_DIM, generator=generator),
    }


def run(model, **inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).sample


def test_forward_keeps_the_latent_shape(model):
    inputs = make_inputs()
    assert run(model, **inputs).shape == inputs["hidden_states"].shape


def test_two_dimensional_patchify_round_trip_and_token_order():
    x = torch.randn(2, 8, 6, 16)
    tokens, grid = patchify(x, (2, 4))
    assert grid == (3, 4) and tokens.shape == (2, 12, 2 * 4 * 8)
    # token (t=1, f=2), feature (pt=1, pf=3, c=5)
    assert tokens[0, 1 * 4 + 2, (1 * 4 + 3) * 8 + 5] == x[0, 5, 1 * 2 + 1, 2 * 4 + 3]
    assert torch.equal(unpatchify(tokens, (2, 4), grid), x)


def test_padded_text_batch_equals_each_item_alone(model):
    inputs = make_inputs()
    inputs["encoder_attention_mask"][1, 4:] = 0
    batched = run(model, **inputs)
    alone = {k: v[1:] for k, v in inputs.items()}
    alone["encoder_hidden_states"] = alone["encoder_hidden_states"][:, :4]
    alone["encoder_attention_mask"] = alone["encoder_attention_mask"][:, :4]
    torch.testing.assert_close(batched[1:], run(model, **alone), atol=1e-5, rtol=1e-5)


def _impulse_response(model, position: int) -> torch.Tensor:
    """Per latent frame, how much the output moves when one sync feature changes."""
    inputs = make_inputs(batch_size=1, latent_frames=32)
    inputs["sync_hidden_states"] = torch.zeros(1, 32, TINY_SYNC_DIM)
    base = run(model, **inputs)
    inputs["sync_hidden_states"][0, position] = 5.0
    return (run(model, **inputs) - base).abs().mean(dim=(0, 1, 3))


def test_sync_features_modulate_the_audio_tokens_of_their_time_step(model):
    # 32 sync features over 32 latent frames: feature k lands on frame k. Its effect is largest around frame k
    # (the conv over sync features spreads it over neighbours), and it moves when the event moves.
    early, late = _impulse_response(model, 6), _impulse_response(model, 25)
    assert abs(int(early.argmax()) - 6) <= 3 and abs(int(late.argmax()) - 25) <= 3
    assert early[:12].sum() > early[20:].sum() and late[20:].sum() > late[:12].sum()


@pytest.mark.parametrize("stream", ["visual", "text", "sync"])
def test_a_dropped_condition_is_its_learned_empty_embedding(model, stream):
    key = {"visual": "visual_hidden_states", "text": "encoder_hidden_states", "sync": "sync_hidden_states"}[stream]
    inputs = make_inputs()
    drop = torch.tensor([True, False])
    dropped = run(model, **inputs, **{f"drop_{stream}": drop})
    changed = dict(inputs, **{key: torch.randn_like(inputs[key])})
    dropped_changed = run(model, **changed, **{f"drop_{stream}": drop})
    torch.testing.assert_close(dropped[0], dropped_changed[0])  # the dropped item ignores the stream
    assert not torch.allclose(dropped[1], dropped_changed[1])  # the kept item reads it
    assert not torch.allclose(dropped[0], run(model, **inputs)[0])  # dropping changes the prediction
    empty = getattr(model, f"empty_{stream}")
    learned = empty.detach().clone()
    with torch.no_grad():
        empty.add_(torch.randn_like(empty))
    try:
        assert not torch.allclose(dropped[0], run(model, **inputs, **{f"drop_{stream}": drop})[0])
    finally:
        with torch.no_grad():
            empty.copy_(learned)


def test_save_load_round_trip_and_auto_model(model, tmp_path):
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(str(tmp_path))
    assert isinstance(loaded, LuminaV2ATransformerModel) and loaded.config.patch_size == (1, 4)
    inputs = make_inputs()
    torch.testing.assert_close(run(loaded, **inputs), run(model, **inputs))


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = tiny_v2a_transformer().train()
    inputs = make_inputs()
    inputs["drop_text"] = torch.tensor([True, False])  # the empty text embedding gets a gradient too
    model(**inputs).sample.square().mean().backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    model.enable_gradient_checkpointing()
    model(**inputs).sample.square().mean().backward()
    actual = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert actual.keys() == expected.keys() and "empty_text" in actual
    for name, grad in actual.items():
        torch.testing.assert_close(grad, expected[name], msg=name)


def test_lora_adapter_on_the_shared_blocks(model):
    from peft import LoraConfig

    torch.manual_seed(0)
    adapted = tiny_v2a_transformer()
    adapted.add_adapter(LoraConfig(r=4, target_modules=["attn.to_q", "attn.add_k_proj"], init_lora_weights=False))
    inputs = make_inputs()
    assert not torch.allclose(run(adapted, **inputs), run(model, **inputs))
    assert run(adapted, **inputs, attention_kwargs={"scale": 0.0}).shape == inputs["hidden_states"].shape


def test_layerwise_casting_keeps_conditioning_in_float32(model):
    torch.manual_seed(0)
    cast = tiny_v2a_transformer()
    cast.enable_layerwise_casting(storage_dtype=torch.bfloat16, compute_dtype=torch.float32)
    assert cast.layers[0].attn.to_q.weight.dtype == torch.bfloat16
    assert cast.condition_embedder.sync_conv.weight.dtype == torch.float32
    output = run(cast, **make_inputs())
    assert torch.isfinite(output).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_states": torch.randn(2, 4, 24, 16)}, r"`hidden_states` must be \[B, 8, T, F\]"),
        ({"hidden_states": torch.randn(2, 8, 24, 14)}, "must be divisible by the patch 1x4"),
        ({"hidden_states": torch.randn(2, 8, 260, 16)}, "at most 256"),
        ({"hidden_states": torch.randn(0, 8, 24, 16)}, "empty batch"),
        ({"encoder_hidden_states": torch.randn(2, 7, 5)}, r"`encoder_hidden_states` must be \[B, L, 16\]"),
        ({"visual_hidden_states": torch.randn(2, 0, TINY_CLIP_DIM)}, "with L >= 1"),
        ({"sync_hidden_states": torch.randn(2, 12, TINY_SYNC_DIM)}, "a multiple of 8 is needed"),
        ({"sync_hidden_states": torch.randn(3, 16, TINY_SYNC_DIM)}, "`sync_hidden_states` has batch size 3"),
        ({"timestep": torch.rand(3)}, "`timestep` has batch size 3"),
        ({"encoder_attention_mask": torch.ones(2, 5)}, r"`encoder_attention_mask` must have shape \(2, 7\)"),
        ({"drop_text": torch.tensor([True])}, "`drop_text` has batch size 1"),
    ],
)
def test_bad_inputs_are_named(model, change, message):
    with pytest.raises(ValueError, match=message):
        run(model, **{**make_inputs(), **change})


def test_config_is_checked():
    with pytest.raises(ValueError, match="`patch_size` must be two positive integers"):
        LuminaV2ATransformerModel(patch_size=(1, 2, 2), hidden_size=64, num_attention_heads=4, num_kv_heads=2)
    with pytest.raises(ValueError, match="must be a multiple of `num_kv_heads`"):
        LuminaV2ATransformerModel(hidden_size=64, num_attention_heads=4, num_kv_heads=3)
