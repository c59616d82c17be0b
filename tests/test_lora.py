"""LoRA loading hooks of the Lumina-Video pipeline: load, save, fuse, mix, hotswap, and the target-module checks.

Every expected output comes from an independent reference: the base transformer with `W + sum(w * B @ A)` written
into its linear weights, which is what a loaded, fused or mixed LoRA must compute.
"""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from peft import LoraConfig
from peft.tuners.tuners_utils import BaseTunerLayer
from peft.utils import get_peft_model_state_dict

from diffusers_lumina_video import LuminaVideoPipeline
from diffusers_lumina_video.loaders.lora_pipeline import LUMINA_VIDEO_LORA_TARGET_MODULES, check_lora_target_modules
from diffusers_lumina_video.showcase.builtin_models import tiny_random_pipeline, tiny_transformer


ATOL = 1e-5


def make_pipeline() -> LuminaVideoPipeline:
    return tiny_random_pipeline(seed=0)


def velocity(transformer) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    mask = torch.ones(1, 6, dtype=torch.long)
    mask[:, 4:] = 0
    with torch.no_grad():
        return transformer(
            hidden_states=torch.randn(1, 4, 2, 8, 8, generator=generator),
            timestep=torch.tensor([0.3]),
            encoder_hidden_states=torch.randn(1, 6, 32, generator=generator),
            encoder_attention_mask=mask,
            motion_score=6.0,
        ).sample


def sample(pipe: LuminaVideoPipeline, **kwargs) -> torch.Tensor:
    generator = torch.Generator().manual_seed(2)
    return pipe(
        prompt_embeds=torch.randn(1, 6, 32, generator=generator),
        prompt_attention_mask=torch.ones(1, 6, dtype=torch.long),
        height=32,
        width=32,
        num_frames=5,
        num_inference_steps=2,
        guidance_scale=1.0,
        generator=generator,
        output_type="latent",
        **kwargs,
    ).frames


def random_lora(seed: int, rank: int) -> tuple[dict[str, torch.Tensor], dict]:
    """A LoRA on the default targets with nonzero up and down weights, as a trainer hands it to `save_lora_weights`."""
    transformer = tiny_transformer()
    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank, lora_alpha=rank, target_modules=list(LUMINA_VIDEO_LORA_TARGET_MODULES), init_lora_weights=False
    )
    transformer.add_adapter(config)
    return get_peft_model_state_dict(transformer), transformer.peft_config["default"].to_dict()


def merged_state_dict(*loras: tuple[dict[str, torch.Tensor], float]) -> dict[str, torch.Tensor]:
    """The base transformer's weights with each LoRA's `B @ A` added at its weight (alpha == rank, so scale 1)."""
    state_dict = make_pipeline().transformer.state_dict()
    for lora, weight in loras:
        for key, down in lora.items():
            if ".lora_A." in key:
                up = lora[key.replace(".lora_A.", ".lora_B.")]
                state_dict[key.split(".lora_A.")[0] + ".weight"] += weight * up @ down
    return state_dict


def merged_velocity(*loras: tuple[dict[str, torch.Tensor], float]) -> torch.Tensor:
    transformer = make_pipeline().transformer
    transformer.load_state_dict(merged_state_dict(*loras))
    return velocity(transformer)


def save_lora(directory: Path, seed: int = 10, rank: int = 2) -> dict[str, torch.Tensor]:
    lora, metadata = random_lora(seed, rank)
    LuminaVideoPipeline.save_lora_weights(
        directory, transformer_lora_layers=lora, transformer_lora_adapter_metadata=metadata
    )
    return lora


def lora_layers(transformer) -> dict[str, BaseTunerLayer]:
    return {name: module for name, module in transformer.named_modules() if isinstance(module, BaseTunerLayer)}


def test_default_targets_are_the_attention_and_feed_forward_linears():
    transformer = make_pipeline().transformer
    transformer.add_adapter(LoraConfig(r=2, target_modules=list(LUMINA_VIDEO_LORA_TARGET_MODULES)))

    expected = {
        f"layers.{index}.{target}"
        for index in range(transformer.config.num_layers)
        for target in LUMINA_VIDEO_LORA_TARGET_MODULES
    }
    assert set(lora_layers(transformer)) == expected


def test_check_lora_target_modules_accepts_linear_layers_by_suffix_or_full_name():
    transformer = make_pipeline().transformer
    check_lora_target_modules(transformer, LUMINA_VIDEO_LORA_TARGET_MODULES)
    check_lora_target_modules(transformer, ["norm1.linear", "layers.1.attn.to_q", "patch_embedders.2x4x4"])


def test_check_lora_target_modules_names_unknown_and_available_modules():
    transformer = make_pipeline().transformer
    with pytest.raises(ValueError) as error:
        check_lora_target_modules(transformer, ["attn.to_q", "attn.to_qkv", "layers.5.attn.to_q", "attn.norm_q"])

    message = str(error.value)
    assert "['attn.norm_q', 'attn.to_qkv', 'layers.5.attn.to_q']" in message
    for available in ("'layers.N.attn.to_q'", "'layers.N.feed_forward.linear_3'", "'patch_embedders.2x4x4'"):
        assert available in message


@pytest.mark.parametrize("source", ["folder", "file", "hub_id"])
def test_saved_lora_loads_into_fresh_pipeline_and_changes_output(tmp_path, source):
    lora = save_lora(tmp_path / "lora")
    weight_file = tmp_path / "lora" / "pytorch_lora_weights.safetensors"
    if source == "folder":
        location, kwargs = tmp_path / "lora", {}
    elif source == "file":
        location, kwargs = weight_file, {}
    else:
        # A Hub repository as `hf_hub_download` leaves it in its cache, so no network is needed.
        repo, commit = tmp_path / "hub" / "models--lumina-video--tiny-lora", "0" * 40
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(commit)
        shutil.copy(weight_file, repo / "snapshots" / commit)
        location = "lumina-video/tiny-lora"
        kwargs = {"weight_name": weight_file.name, "cache_dir": tmp_path / "hub", "local_files_only": True}

    pipe = make_pipeline()
    base = velocity(pipe.transformer)
    pipe.load_lora_weights(location, adapter_name="style", **kwargs)

    assert pipe.get_list_adapters() == {"transformer": ["style"]}
    output = velocity(pipe.transformer)
    assert not torch.allclose(output, base, atol=1e-3)
    torch.testing.assert_close(output, merged_velocity((lora, 1.0)), atol=ATOL, rtol=0)


def test_loaded_lora_changes_sampling_and_its_scale_reaches_the_transformer(tmp_path):
    save_lora(tmp_path)
    pipe = make_pipeline()
    base = sample(pipe)
    pipe.load_lora_weights(tmp_path, adapter_name="style")

    half = sample(pipe, attention_kwargs={"scale": 0.5})
    assert not torch.allclose(half, base, atol=1e-3)
    pipe.set_adapters("style", adapter_weights=0.5)
    torch.testing.assert_close(sample(pipe), half, atol=ATOL, rtol=0)


def test_lora_saved_from_the_transformer_alone_loads(tmp_path):
    transformer = make_pipeline().transformer
    torch.manual_seed(10)
    transformer.add_adapter(
        LoraConfig(r=2, lora_alpha=2, target_modules=list(LUMINA_VIDEO_LORA_TARGET_MODULES), init_lora_weights=False)
    )
    transformer.save_lora_adapter(tmp_path)

    pipe = make_pipeline()
    pipe.load_lora_weights(tmp_path)

    torch.testing.assert_close(velocity(pipe.transformer), velocity(transformer), atol=ATOL, rtol=0)


def test_fuse_and_unfuse_restore_the_original_weights(tmp_path):
    lora = save_lora(tmp_path)
    pipe = make_pipeline()
    original = {key: value.clone() for key, value in pipe.transformer.state_dict().items()}
    base = velocity(pipe.transformer)
    pipe.load_lora_weights(tmp_path)
    unfused = velocity(pipe.transformer)

    pipe.fuse_lora()
    merged = merged_state_dict((lora, 1.0))
    for name, layer in lora_layers(pipe.transformer).items():
        torch.testing.assert_close(layer.base_layer.weight, merged[f"{name}.weight"], atol=1e-6, rtol=0)
    torch.testing.assert_close(velocity(pipe.transformer), unfused, atol=ATOL, rtol=0)

    pipe.unfuse_lora()
    for name, layer in lora_layers(pipe.transformer).items():
        torch.testing.assert_close(layer.base_layer.weight, original[f"{name}.weight"], atol=1e-6, rtol=0)
    torch.testing.assert_close(velocity(pipe.transformer), unfused, atol=ATOL, rtol=0)

    pipe.unload_lora_weights()
    assert not lora_layers(pipe.transformer)
    assert pipe.transformer.state_dict().keys() == original.keys()
    torch.testing.assert_close(velocity(pipe.transformer), base, atol=ATOL, rtol=0)


# PEFT warns on every adapter after the first, which is what this test is about.
@pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")
def test_two_adapters_mix_with_weights_and_one_can_be_deleted(tmp_path):
    first = save_lora(tmp_path / "first", seed=10, rank=2)
    second = save_lora(tmp_path / "second", seed=20, rank=4)
    pipe = make_pipeline()
    pipe.load_lora_weights(tmp_path / "first", adapter_name="first")
    pipe.load_lora_weights(tmp_path / "second", adapter_name="second")

    pipe.set_adapters(["first", "second"], adapter_weights=[0.7, -0.4])
    expected = merged_velocity((first, 0.7), (second, -0.4))
    torch.testing.assert_close(velocity(pipe.transformer), expected, atol=ATOL, rtol=0)

    pipe.delete_adapters("first")
    assert pipe.get_list_adapters() == {"transformer": ["second"]}
    assert all("first" not in layer.lora_A for layer in lora_layers(pipe.transformer).values())
    pipe.set_adapters("second", adapter_weights=0.5)
    torch.testing.assert_close(velocity(pipe.transformer), merged_velocity((second, 0.5)), atol=ATOL, rtol=0)


def test_hotswap_replaces_the_adapter_in_place(tmp_path):
    save_lora(tmp_path / "first", seed=10, rank=2)
    second = save_lora(tmp_path / "second", seed=20, rank=4)
    pipe = make_pipeline()
    pipe.enable_lora_hotswap(target_rank=4)
    pipe.load_lora_weights(tmp_path / "first", adapter_name="style")
    layers_before = lora_layers(pipe.transformer)

    pipe.load_lora_weights(tmp_path / "second", adapter_name="style", hotswap=True)

    assert pipe.get_list_adapters() == {"transformer": ["style"]}
    assert all(layer is layers_before[name] for name, layer in lora_layers(pipe.transformer).items())
    torch.testing.assert_close(velocity(pipe.transformer), merged_velocity((second, 1.0)), atol=ATOL, rtol=0)


def test_lora_with_unknown_target_modules_is_an_error_naming_them():
    lora, _ = random_lora(seed=10, rank=2)
    state_dict = {f"transformer.{key}": value for key, value in lora.items()}
    state_dict["transformer.layers.7.attn.to_q.lora_A.weight"] = torch.zeros(2, 64)
    state_dict["transformer.layers.7.attn.to_q.lora_B.weight"] = torch.zeros(64, 2)
    pipe = make_pipeline()

    with pytest.raises(ValueError, match=r"\['layers.7.attn.to_q'\]"):
        pipe.load_lora_weights(state_dict, adapter_name="broken")
    assert not lora_layers(pipe.transformer)


def prefixed(lora: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"transformer.{key}": value for key, value in lora.items()}


def without(lora: dict[str, torch.Tensor], fragment: str) -> dict[str, torch.Tensor]:
    return {key: value for key, value in prefixed(lora).items() if fragment not in key}


def with_tensor(lora: dict[str, torch.Tensor], key: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    return {**prefixed(lora), f"transformer.{key}": tensor}


def state_snapshot(transformer) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in transformer.state_dict().items()}


def assert_unchanged(transformer, before: dict[str, torch.Tensor]) -> None:
    after = transformer.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[key], value) for key, value in before.items())


LORA, _ = random_lora(seed=10, rank=2)
BAD_LORA_FILES = {
    "empty": ({}, "contains no LoRA weights"),
    "other_component_only": (
        {"text_encoder.q.lora_A.weight": torch.zeros(2, 4), "text_encoder.q.lora_B.weight": torch.zeros(4, 2)},
        r"contains no LoRA weights for the transformer \(it only has keys for \['text_encoder'\]\)",
    ),
    "no_lora_B": (
        without(LORA, "lora_B"),
        r"only one of `lora_A`/`lora_B`: \['layers.0.attn.add_k_proj \(no lora_B\)",
    ),
    "one_lora_B_missing": (
        without(LORA, "layers.1.attn.to_q.lora_B"),
        r"only one of `lora_A`/`lora_B`: \['layers.1.attn.to_q \(no lora_B\)'\]",
    ),
    "no_lora_A": (without(LORA, "lora_A"), r"\(no lora_A\)"),
    "rank_mismatch": (
        with_tensor(LORA, "layers.1.attn.to_q.lora_A.weight", torch.zeros(3, 64)),
        r"LoRA ranks of `layers.1.attn.to_q` do not match: lora_A has shape \(3, 64\).*lora_B \(64, 2\)",
    ),
    "other_model_size": (
        {
            **with_tensor(LORA, "layers.0.attn.to_q.lora_A.weight", torch.zeros(2, 48)),
            "transformer.layers.0.attn.to_q.lora_B.weight": torch.zeros(48, 2),
        },
        r"`layers.0.attn.to_q` map 48 -> 48 features, but that layer maps 64 -> 64",
    ),
    "not_lora_keys": (
        with_tensor(LORA, "layers.0.attn.to_q.weight", torch.zeros(64, 64)),
        r"keys that are not LoRA weights .*\['transformer.layers.0.attn.to_q.weight'\]",
    ),
    "unknown_target": (
        {
            **prefixed(LORA),
            "transformer.layers.7.attn.to_q.lora_A.weight": torch.zeros(2, 64),
            "transformer.layers.7.attn.to_q.lora_B.weight": torch.zeros(64, 2),
        },
        r"LoRA target modules \['layers.7.attn.to_q'\] are not linear layers",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_LORA_FILES))
@pytest.mark.parametrize("with_adapter", [False, True], ids=["fresh", "with_adapter"])
def test_bad_lora_file_is_a_clear_error_and_leaves_the_pipeline_as_it_was(tmp_path, case, with_adapter):
    from safetensors.torch import save_file

    state_dict, message = BAD_LORA_FILES[case]
    save_file(state_dict, tmp_path / "bad.safetensors")
    pipe = make_pipeline()
    if with_adapter:
        save_lora(tmp_path / "good", seed=11)
        pipe.load_lora_weights(tmp_path / "good", adapter_name="good")
    before = state_snapshot(pipe.transformer)

    with pytest.raises(ValueError, match=message) as error:
        pipe.load_lora_weights(tmp_path / "bad.safetensors", adapter_name="bad")

    assert "bad.safetensors" in str(error.value) or case == "unknown_target"
    assert_unchanged(pipe.transformer, before)
    assert pipe.get_list_adapters() == ({"transformer": ["good"]} if with_adapter else {})


def test_metadata_rank_that_does_not_match_the_weights_is_an_error(tmp_path):
    lora, metadata = random_lora(seed=10, rank=2)
    LuminaVideoPipeline.save_lora_weights(
        tmp_path, transformer_lora_layers=lora, transformer_lora_adapter_metadata={**metadata, "r": 4}
    )
    pipe = make_pipeline()
    before = state_snapshot(pipe.transformer)

    with pytest.raises(ValueError, match=r"has LoRA rank 2 but the file's metadata says r=4"):
        pipe.load_lora_weights(tmp_path)
    assert_unchanged(pipe.transformer, before)


@pytest.mark.parametrize("with_adapter", [False, True], ids=["fresh", "with_adapter"])
def test_load_failing_inside_peft_leaves_the_pipeline_as_it_was(tmp_path, monkeypatch, with_adapter):
    """A failure after PEFT has injected the layers (here: while copying the weights in) is undone too."""
    import peft

    save_lora(tmp_path / "good", seed=11, rank=4)
    save_lora(tmp_path / "other", seed=12)
    pipe = make_pipeline()
    if with_adapter:
        pipe.load_lora_weights(tmp_path / "good", adapter_name="good")
    before = state_snapshot(pipe.transformer)

    def failing_copy(*args, **kwargs):
        raise RuntimeError("disk read failed")

    monkeypatch.setattr(peft, "set_peft_model_state_dict", failing_copy)
    with pytest.raises(RuntimeError, match="disk read failed"):
        pipe.load_lora_weights(tmp_path / "other", adapter_name="other")

    assert_unchanged(pipe.transformer, before)
    assert not any(".base_layer." in key for key in pipe.transformer.state_dict()) or with_adapter
    monkeypatch.undo()
    pipe.load_lora_weights(tmp_path / "other", adapter_name="other")
    assert set(pipe.get_list_adapters()["transformer"]) == ({"good", "other"} if with_adapter else {"other"})


def test_lora_with_other_components_loads_the_transformer_part_and_warns(tmp_path, caplog):
    lora = {
        **prefixed(LORA),
        "text_encoder.layers.0.q_proj.lora_A.weight": torch.zeros(2, 32),
        "text_encoder.layers.0.q_proj.lora_B.weight": torch.zeros(32, 2),
    }
    pipe = make_pipeline()
    with caplog.at_level("WARNING"):
        pipe.load_lora_weights(lora, adapter_name="style")

    assert "also has keys for ['text_encoder']" in caplog.text
    assert "only the `transformer` part is loaded" in caplog.text
    assert pipe.get_list_adapters() == {"transformer": ["style"]}
    assert torch.allclose(velocity(pipe.transformer), merged_velocity((LORA, 1.0)), atol=ATOL)


BAD_ADAPTER_CALLS: dict[str, tuple[Callable, type[Exception], str]] = {
    "fuse_unknown": (
        lambda p: p.fuse_lora(adapter_names=["missing"]),
        ValueError,
        r"Adapter name\(s\) \['missing'\] not in the list of present adapters: \['style'\]",
    ),
    "fuse_non_string": (lambda p: p.fuse_lora(adapter_names=[1]), TypeError, "`adapter_names` must be an adapter"),
    "fuse_scale_text": (lambda p: p.fuse_lora(lora_scale="1"), TypeError, "`lora_scale` must be a finite number"),
    "set_unknown": (
        lambda p: p.set_adapters("missing"),
        ValueError,
        r"Adapter name\(s\) \['missing'\] not in the list of present adapters: \['style'\]",
    ),
    "set_text_weight": (
        lambda p: p.set_adapters(["style"], adapter_weights=["0.5"]),
        TypeError,
        r"`adapter_weights\[0\]` must be a finite number.*'0.5'",
    ),
    "set_nan_weight": (
        lambda p: p.set_adapters("style", adapter_weights=float("nan")),
        TypeError,
        "`adapter_weights` must be a finite number",
    ),
    "set_bool_weight": (
        lambda p: p.set_adapters("style", adapter_weights=True),
        TypeError,
        "`adapter_weights` must be a finite number",
    ),
    "set_dict_weight": (
        lambda p: p.set_adapters(["style"], adapter_weights=[{"transformer": None, "layers": "x"}]),
        TypeError,
        r"`adapter_weights\[0\]\['layers'\]` must be a finite number",
    ),
    "delete_unknown": (
        lambda p: p.delete_adapters(["style", "missing"]),
        ValueError,
        r"Adapter name\(s\) \['missing'\] not in the list of present adapters: \['style'\]",
    ),
    "delete_none": (lambda p: p.delete_adapters(None), TypeError, "`adapter_names` must be an adapter name"),
}


@pytest.mark.parametrize("case", sorted(BAD_ADAPTER_CALLS))
def test_bad_adapter_call_is_a_clear_error_and_changes_nothing(tmp_path, case):
    call, error, message = BAD_ADAPTER_CALLS[case]
    save_lora(tmp_path / "lora")
    pipe = make_pipeline()
    pipe.load_lora_weights(tmp_path / "lora", adapter_name="style")
    before = state_snapshot(pipe.transformer)

    with pytest.raises(error, match=message):
        call(pipe)
    assert_unchanged(pipe.transformer, before)
    assert pipe.get_list_adapters() == {"transformer": ["style"]}


@pytest.mark.parametrize("pipeline", ["video", "v2a"])
@pytest.mark.parametrize("path", ["{tmp}/missing/lora.safetensors", "{tmp}/missing_folder", "missing.safetensors"])
def test_lora_path_that_does_not_exist_says_so(tmp_path, monkeypatch, pipeline, path):
    from diffusers_lumina_video.showcase.builtin_models import tiny_random_v2a_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    pipe = make_pipeline() if pipeline == "video" else tiny_random_v2a_pipeline()
    path = path.format(tmp=tmp_path)
    with pytest.raises(FileNotFoundError, match=f"The LoRA file or folder '{path}' does not exist"):
        pipe.load_lora_weights(path)
    assert pipe.get_list_adapters() == {}
