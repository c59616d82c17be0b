import pytest
import torch
from diffusers import AutoModel

from diffusers_lumina_video import LuminaV2ATransformerModel
from diffusers_lumina_video.models.transformers.transformer_lumina_v2a import sync_features_in_time_order
from diffusers_lumina_video.models.transformers.transformer_lumina_video import patchify, unpatchify
from diffusers_lumina_video.showcase.builtin_models import TINY_CLIP_DIM, TINY_SYNC_DIM, tiny_v2a_transformer


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


def test_sync_features_are_put_in_time_order_and_overlaps_averaged():
    # Feature j of segment s covers tubelet 4s + j: label each feature with its tubelet (plus an offset telling the
    # two segments that see a tubelet apart) and read back one value per tubelet.
    segments = 3
    tubelet = torch.tensor([4 * s + j for s in range(segments) for j in range(8)], dtype=torch.float32)
    offset = torch.tensor([0.5 * (j >= 4) for s in range(segments) for j in range(8)])
    ordered = sync_features_in_time_order((tubelet + offset)[None, :, None])[0, :, 0]
    expected = torch.arange(4 * (segments + 1), dtype=torch.float32) + 0.25
    expected[:4], expected[-4:] = expected[:4] - 0.25, expected[-4:] + 0.25  # seen by one segment only
    torch.testing.assert_close(ordered, expected)


def _sync_impulse_response(model, tubelet: int) -> torch.Tensor:
    """Per latent frame, how much the output moves when the two sync features of one tubelet change (the event is
    seen by both segments that hold it)."""
    inputs = make_inputs(batch_size=1, latent_frames=40)  # 1.6 s; 4 segments cover 1.6 s in 20 tubelets
    inputs["sync_hidden_states"] = torch.zeros(1, 32, TINY_SYNC_DIM)
    base = run(model, **inputs)
    segment, position = divmod(tubelet, 4)
    for s, j in ((segment, position), (segment - 1, position + 4)):
        if 0 <= s < 4:
            inputs["sync_hidden_states"][0, 8 * s + j] = 5.0
    return (run(model, **inputs) - base).abs().mean(dim=(0, 1, 3))


def test_sync_features_modulate_the_audio_tokens_of_their_time(model):
    # A tubelet is 0.08 s, a latent frame 0.04 s: tubelet g lands on latent frames 2g and 2g + 1. Its effect on the
    # output is largest there (attention spreads some of it everywhere, the width-7 convolution over tubelets up to
    # 3 tubelets either side), and it moves with the event.
    for tubelet in (3, 9, 16):
        peak = int(_sync_impulse_response(model, tubelet).argmax())
        assert 2 * (tubelet - 3) <= peak <= 2 * (tubelet + 3) + 1


def test_sync_condition_gives_each_audio_token_the_tubelet_of_its_time(model):
    sync = torch.zeros(1, 32, TINY_SYNC_DIM)
    sync[0, 8 * 2 + 1] = sync[0, 8 * 1 + 5] = 5.0  # tubelet 9, seen by segments 2 and 1
    embedder = model.condition_embedder
    with torch.no_grad():
        change = (embedder.sync_condition(sync, 40, 1) - embedder.sync_condition(sync * 0, 40, 1)).abs().sum(-1)[0]
    # Tubelets 6..12 (the convolution's reach) on latent frames 12..25.
    assert (change > 1e-6).nonzero().flatten().tolist() == list(range(12, 26))


def test_sync_condition_reads_the_model_s_latent_frames_per_tubelet():
    torch.manual_seed(0)
    halved = LuminaV2ATransformerModel.from_config(tiny_v2a_transformer().config, latent_frames_per_sync_feature=1.0)
    embedder = halved.condition_embedder
    sync = torch.zeros(1, 32, TINY_SYNC_DIM)
    sync[0, 8 * 2 + 1] = sync[0, 8 * 1 + 5] = 5.0  # tubelet 9
    with torch.no_grad():
        change = (embedder.sync_condition(sync, 40, 1) - embedder.sync_condition(sync * 0, 40, 1)).abs().sum(-1)[0]
    # One latent frame per tubelet: tubelets 6..12 on frames 6..12.
    assert (change > 1e-6).nonzero().flatten().tolist() == list(range(6, 13))


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
