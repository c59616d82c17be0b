import math

import pytest
import torch
from conftest import FORWARD_TOLERANCE, run_golden_forward_case
from diffusers import AutoModel

from diffusers_lumina_video import LuminaVideoTransformer3DModel
from diffusers_lumina_video.loaders.single_file_utils import (
    convert_lumina_video_transformer_checkpoint_to_diffusers,
    infer_transformer_config,
)
from diffusers_lumina_video.models.transformers.transformer_lumina_video import patchify, unpatchify
from diffusers_lumina_video.showcase.builtin_models import tiny_transformer


@pytest.mark.parametrize(
    "case_name", ["video_f1p2", "video_f2p2", "video_f2p4", "image_f1p2", "image_f2p2", "image_f2p4"]
)
def test_golden_forward(golden_transformer, golden, golden_spec, case_name):
    case = next(c for c in golden_spec["forward_cases"] if c["name"] == case_name)
    output = run_golden_forward_case(golden_transformer, golden, case)
    torch.testing.assert_close(output, golden[case["output"]], **FORWARD_TOLERANCE)


def test_golden_config_matches_reference_constructor(golden_transformer, golden_spec):
    reference = golden_spec["config"]
    config = golden_transformer.config
    assert config.hidden_size == reference["dim"]
    assert config.num_layers == reference["n_layers"]
    assert config.num_attention_heads == reference["n_heads"]
    assert config.num_kv_heads == reference["n_kv_heads"]
    assert config.cap_feat_dim == reference["cap_feat_dim"]
    expected = {(f, p, p) for p, f in zip(reference["all_patch_size"], reference["all_f_patch_size"], strict=True)}
    assert set(config.patch_sizes) == expected
    assert config.timestep_scale == reference["t_scale"] and config.motion_scale == reference["motion_scale"]


def test_full_size_mapping_on_meta_device(shapes_manifest):
    original = {key: torch.empty(shape, device="meta") for key, shape in shapes_manifest["state_dict_shapes"].items()}
    config = infer_transformer_config(original, model_args=None)
    constructor = shapes_manifest["constructor"]
    assert (config["hidden_size"], config["num_layers"]) == (constructor["dim"], constructor["n_layers"])
    assert (config["num_attention_heads"], config["num_kv_heads"]) == (
        constructor["n_heads"],
        constructor["n_kv_heads"],
    )
    assert config["multiple_of"] == constructor["multiple_of"] and config["ffn_dim_multiplier"] is None

    with torch.device("meta"):
        model = LuminaVideoTransformer3DModel(**config)
        default = LuminaVideoTransformer3DModel()
    public = lambda cfg: {k: v for k, v in cfg.items() if not k.startswith("_")}  # noqa: E731
    assert public(model.config) == public(default.config)  # the defaults are the released model

    converted = convert_lumina_video_transformer_checkpoint_to_diffusers(original)
    expected = {name: tuple(p.shape) for name, p in model.state_dict().items()}
    assert set(converted) == set(expected), set(converted) ^ set(expected)
    for name, tensor in converted.items():
        assert tuple(tensor.shape) == expected[name], name
    # Not in the model: the padding token (`dim`) and each layer's caption-key norm bias (`kv_dim`), no-ops both.
    kv_dim = constructor["dim"] // constructor["n_heads"] * constructor["n_kv_heads"]
    unused = constructor["dim"] + constructor["n_layers"] * kv_dim
    assert sum(math.prod(s) for s in expected.values()) == shapes_manifest["num_parameters"] - unused


def test_patchify_roundtrip_and_token_order():
    x = torch.randn(2, 3, 4, 8, 12)
    tokens, grid = patchify(x, (2, 2, 4))
    assert grid == (2, 4, 3) and tokens.shape == (2, 24, 2 * 2 * 4 * 3)
    # token (f=1, h=2, w=1), feature (pf=1, ph=0, pw=3, c=2)
    token = (1 * 4 + 2) * 3 + 1
    feature = ((1 * 2 + 0) * 4 + 3) * 3 + 2
    assert tokens[0, token, feature] == x[0, 2, 1 * 2 + 1, 2 * 2 + 0, 1 * 4 + 3]
    assert torch.equal(unpatchify(tokens, (2, 2, 4), grid), x)


def test_padded_batch_matches_items_alone(tiny_inputs):
    model = tiny_transformer()
    with torch.no_grad():
        batched = model(**tiny_inputs, patch_size=(2, 2, 2)).sample
        for index, length in enumerate((6, 3)):
            single = model(
                tiny_inputs["hidden_states"][index : index + 1],
                tiny_inputs["timestep"][index : index + 1],
                tiny_inputs["encoder_hidden_states"][index : index + 1, :length],
                tiny_inputs["encoder_attention_mask"][index : index + 1, :length],
                tiny_inputs["motion_score"][index : index + 1],
                patch_size=(2, 2, 2),
            ).sample
            torch.testing.assert_close(batched[index : index + 1], single, atol=1e-5, rtol=1e-5)


def test_motion_absent_equals_none_and_float_broadcasts(tiny_inputs):
    model = tiny_transformer()
    inputs = {k: v for k, v in tiny_inputs.items() if k != "motion_score"}
    with torch.no_grad():
        absent = model(**inputs, motion_score=torch.tensor([-1.0, -3.0])).sample
        no_motion = model(**inputs).sample
        as_float = model(**inputs, motion_score=4.0).sample
        as_tensor = model(**inputs, motion_score=torch.tensor([4.0, 4.0])).sample
    torch.testing.assert_close(absent, no_motion)
    torch.testing.assert_close(as_float, as_tensor)
    assert not torch.allclose(as_float, no_motion)


def test_save_load_roundtrip_and_automodel(tmp_path, tiny_inputs):
    model = tiny_transformer()
    model.save_pretrained(tmp_path)
    for loaded in (LuminaVideoTransformer3DModel.from_pretrained(tmp_path), AutoModel.from_pretrained(str(tmp_path))):
        assert isinstance(loaded, LuminaVideoTransformer3DModel)
        assert loaded.config.patch_sizes == ((1, 2, 2), (2, 2, 2), (2, 4, 4))
        with torch.no_grad():
            torch.testing.assert_close(loaded(**tiny_inputs).sample, model(**tiny_inputs).sample, atol=0, rtol=0)


def test_gradient_checkpointing_gives_same_gradients(tiny_inputs):
    def gradients(checkpointing: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = tiny_transformer().train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        model(**tiny_inputs, patch_size=(2, 2, 2)).sample.square().mean().backward()
        return {name: p.grad for name, p in model.named_parameters() if p.grad is not None}

    plain, checkpointed = gradients(False), gradients(True)
    assert plain.keys() == checkpointed.keys() and len(plain) > 0
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], atol=1e-6, rtol=1e-5)


def test_bfloat16_forward_runs_close_to_float32(tiny_inputs):
    model = tiny_transformer()
    with torch.no_grad():
        reference = model(**tiny_inputs).sample
        model_bf16 = model.to(torch.bfloat16)
        inputs = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tiny_inputs.items()}
        output = model_bf16(**inputs).sample
    assert output.dtype == torch.bfloat16 and torch.isfinite(output).all()
    assert (output.float() - reference).abs().max() < 0.1 * reference.abs().max()


def test_attention_backend_can_be_set(tiny_inputs):
    model = tiny_transformer()
    with torch.no_grad():
        default = model(**tiny_inputs).sample
        model.set_attention_backend("native")
        native = model(**tiny_inputs).sample
    assert all(p._attention_backend == "native" for p in model.attn_processors.values())
    torch.testing.assert_close(native, default)


def _with_nan(tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.clone()
    tensor.view(-1)[1] = float("nan")
    return tensor


# Each entry changes one argument of a valid call; `{x}` is replaced by the valid input of that name.
TRANSFORMER_BAD_INPUTS = [
    ({"patch_size": (4, 4, 4)}, ValueError, "`patch_size` must be one of"),
    ({"hidden_states": torch.randn(2, 4, 3, 8, 8)}, ValueError, "not divisible by the temporal patch 2"),
    ({"hidden_states": torch.randn(2, 4, 4, 7, 8)}, ValueError, "must be divisible by the patch 2x2"),
    ({"hidden_states": torch.randn(2, 3, 4, 8, 8)}, ValueError, "`hidden_states` must be [B, 4, F, H, W]"),
    ({"hidden_states": torch.randn(0, 4, 4, 8, 8)}, ValueError, "`hidden_states` is an empty batch"),
    ({"hidden_states": torch.zeros(2, 4, 4, 8, 8, dtype=torch.long)}, TypeError, "`hidden_states` must be a floating"),
    ({"hidden_states": "latents"}, TypeError, "`hidden_states` must be a torch.Tensor, got str"),
    ({"hidden_states": torch.full((2, 4, 4, 8, 8), float("inf"))}, ValueError, "`hidden_states` must be finite"),
    ({"timestep": torch.tensor([0.1, 0.2, 0.3])}, ValueError, "`timestep` has 3 values, but `hidden_states` has"),
    ({"timestep": None}, ValueError, "`timestep` is required"),
    ({"timestep": "0.5"}, TypeError, "`timestep` must be a float or a [B] tensor, got str"),
    ({"timestep": torch.tensor([True, False])}, TypeError, "`timestep` must be a real-valued tensor"),
    ({"timestep": torch.tensor([0.3, float("nan")])}, ValueError, "`timestep` must be finite"),
    ({"timestep": torch.tensor([0.3, 1.5])}, ValueError, "`timestep` must lie in [0, 1]"),
    ({"timestep": -0.1}, ValueError, "`timestep` must lie in [0, 1]"),
    ({"encoder_hidden_states": torch.randn(1, 6, 32)}, ValueError, "`encoder_hidden_states` has batch size 1"),
    ({"encoder_hidden_states": torch.randn(2, 6, 24)}, ValueError, "`encoder_hidden_states` must be [B, L, 32]"),
    ({"encoder_hidden_states": torch.randn(2, 32)}, ValueError, "`encoder_hidden_states` must be [B, L, 32]"),
    ({"encoder_hidden_states": torch.ones(2, 6, 32, dtype=torch.int32)}, TypeError, "`encoder_hidden_states` must"),
    ({"encoder_hidden_states": "nan"}, ValueError, "`encoder_hidden_states` must be finite"),
    ({"encoder_attention_mask": torch.ones(2, 5)}, TypeError, "`encoder_attention_mask` must be a bool or integer"),
    ({"encoder_attention_mask": torch.ones(2, 5, dtype=torch.long)}, ValueError, "must have shape (2, 6)"),
    (
        {"encoder_attention_mask": torch.tensor([[1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])},
        ValueError,
        "Every row of `encoder_attention_mask` needs at least one real token",
    ),
    ({"motion_score": torch.tensor([1.0, 2.0, 3.0])}, ValueError, "`motion_score` has 3 values"),
    ({"motion_score": torch.tensor([1.0, float("inf")])}, ValueError, "`motion_score` must be finite"),
    ({"motion_score": float("nan")}, ValueError, "`motion_score` must be finite"),
    ({"motion_score": "fast"}, TypeError, "`motion_score` must be a float or a [B] tensor, got str"),
]


@pytest.mark.parametrize(("change", "error", "message"), TRANSFORMER_BAD_INPUTS)
def test_invalid_inputs_raise_naming_the_argument(tiny_inputs, change, error, message):
    model = tiny_transformer()
    change = {k: _with_nan(tiny_inputs[k]) if v == "nan" else v for k, v in change.items()}
    kwargs = {**tiny_inputs, "patch_size": (2, 2, 2), **change}
    with pytest.raises(error, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        model(**kwargs)


def test_value_checks_can_be_skipped_by_a_caller_that_checked_once(tiny_inputs):
    from diffusers_lumina_video.utils.tensor_checks import skip_value_checks

    model = tiny_transformer()
    inputs = {**tiny_inputs, "timestep": torch.tensor([0.3, 1.5])}
    with skip_value_checks(), torch.no_grad():
        assert torch.isfinite(model(**inputs, patch_size=(2, 2, 2)).sample).all()
    with pytest.raises(ValueError, match=r"`timestep` must lie in \[0, 1\]"):
        model(**inputs, patch_size=(2, 2, 2))


@pytest.mark.parametrize("regional", [False, True], ids=["whole_model", "repeated_blocks"])
def test_torch_compile_fullgraph_matches_eager(tiny_inputs, regional):
    # `aot_eager` traces exactly what inductor would (no graph breaks allowed) without compiling kernels.
    model = tiny_transformer()
    with torch.no_grad():
        eager = model(**tiny_inputs, patch_size=(2, 2, 2)).sample
        if regional:
            model.compile_repeated_blocks(fullgraph=True, backend="aot_eager")
            compiled = model
        else:
            compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        torch.testing.assert_close(compiled(**tiny_inputs, patch_size=(2, 2, 2)).sample, eager)


def test_bfloat16_loading_keeps_conditioning_in_float32_and_layerwise_casting_runs(tmp_path, tiny_inputs):
    tiny_transformer().save_pretrained(tmp_path)
    model = LuminaVideoTransformer3DModel.from_pretrained(tmp_path, torch_dtype=torch.bfloat16)
    assert model.condition_embedder.timestep_embedder.linear_1.weight.dtype == torch.float32
    assert model.layers[0].attn.to_q.weight.dtype == torch.bfloat16
    inputs = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tiny_inputs.items()}
    with torch.no_grad():
        reference = model(**inputs).sample
        model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
        cast = model(**inputs).sample
    assert model.layers[0].attn.to_q.weight.dtype == torch.float8_e4m3fn
    assert cast.dtype == torch.bfloat16 and torch.isfinite(cast).all()
    assert (cast.float() - reference.float()).abs().mean() < 0.2 * reference.float().abs().mean()
