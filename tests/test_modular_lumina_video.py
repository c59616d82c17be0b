"""Lumina-Video as Modular Diffusers blocks: the same videos as the classic pipeline, swappable steps and guider,
the classic messages for bad inputs, and save/load round trips."""

import json

import numpy as np
import pytest
import torch
from diffusers import ClassifierFreeGuidance, DiffusionPipeline, ModularPipeline

from diffusers_lumina_video import LuminaGuidance, LuminaVideoBlocks, LuminaVideoModularPipeline
from diffusers_lumina_video.showcase.builtin_models import TINY_SHAPES_DEFAULTS, tiny_random_pipeline, tiny_shapes_path


SMALL = {"height": 32, "width": 32, "num_frames": 9, "num_inference_steps": 6}
MULTISCALE = [(0.0, (2, 4, 4)), (0.1, (1, 2, 2))]


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def classic():
    return tiny_random_pipeline()


def modular_of(classic, guider=None) -> LuminaVideoModularPipeline:
    """A modular pipeline on the classic one's components."""
    pipe = LuminaVideoBlocks().init_pipeline()
    pipe.update_components(**classic.components, guider=guider or LuminaGuidance())
    return pipe


def _batch_sizes_and_patches(pipe):
    calls = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append((kwargs["hidden_states"].shape[0], kwargs["patch_size"])),
        with_kwargs=True,
    )
    return calls, handle


@pytest.mark.parametrize(
    ("guidance", "call"),
    [
        pytest.param(
            {"guidance_scale": 4.5, "guidance_renorm": 1.5, "negative_motion_score": 2.0},
            {"prompt": ["a cat", "a dog"], "negative_prompt": ["blur", "noise"], "num_videos_per_prompt": 2},
            id="single-scale",
        ),
        pytest.param(
            {
                "guidance_scale": [(0.0, 6.0), (0.2, 1.0)],
                "guidance_renorm": 2.0,
                "negative_motion_score": [(0.0, 1.0), (0.05, 3.0)],
            },
            {"prompt": "a cat", "patch_size": MULTISCALE, "motion_score": [(0.0, 3.0), (0.3, 5.0)]},
            id="multi-scale-guidance-off-mid-run",
        ),
    ],
)
def test_modular_equals_classic(classic, guidance, call):
    pipe = modular_of(classic, LuminaGuidance(**guidance))
    calls, handle = _batch_sizes_and_patches(classic)
    try:
        expected = classic(**call, **guidance, **SMALL, generator=_seeded(), output_type="pt").frames
    finally:
        handle.remove()
    modular_calls, handle = _batch_sizes_and_patches(pipe)
    try:
        videos = pipe(**call, **SMALL, generator=_seeded(), output_type="pt", output="videos")
    finally:
        handle.remove()
    assert modular_calls == calls
    if "patch_size" in call:  # the schedule really switches patches and turns guidance off
        assert calls[0] == (2, (2, 4, 4)) and calls[-1] == (1, (1, 2, 2))
    torch.testing.assert_close(videos, expected, atol=1e-6, rtol=0)


def test_sampling_preset_on_both_pipelines(classic):
    """A released multi-scale preset (scheduler shift, guider, patch schedule) on both, at a small size."""
    pipe = modular_of(classic)
    sizes = {"height": 64, "width": 64, "num_frames": 9, "num_inference_steps": 8}
    classic_kwargs = {**classic.use_sampling_preset("f16F64R512-MultiScale"), **sizes}
    modular_kwargs = {**pipe.use_sampling_preset("f16F64R512-MultiScale"), **sizes}
    assert pipe.scheduler.config.shift == classic.scheduler.config.shift == 8.0
    expected = classic("a cat", generator=_seeded(), output_type="latent", **classic_kwargs).frames
    latents = pipe(prompt="a cat", generator=_seeded(), output_type="latent", output="videos", **modular_kwargs)
    classic.scheduler = classic.scheduler.from_config(classic.scheduler.config, shift=8.0)
    torch.testing.assert_close(latents, expected, atol=1e-6, rtol=0)


def test_tiny_shapes_modular_equals_classic():
    """The shipped `tiny-shapes`, loaded both ways from its folder, with its own sampling settings."""
    classic = DiffusionPipeline.from_pretrained(tiny_shapes_path())
    pipe = ModularPipeline.from_pretrained(str(tiny_shapes_path()))
    assert isinstance(pipe, LuminaVideoModularPipeline)
    pipe.load_components()
    settings = dict(TINY_SHAPES_DEFAULTS)
    guidance = {name: settings.pop(name) for name in ("guidance_scale", "guidance_renorm", "negative_motion_score")}
    pipe.update_components(guider=LuminaGuidance(**guidance))
    prompt = "a red circle moving right"
    expected = classic(prompt, generator=_seeded(), **guidance, **settings).frames
    videos = pipe(prompt=prompt, generator=_seeded(), output="videos", **settings)
    assert videos.shape == expected.shape == (1, 16, 64, 64, 3)
    np.testing.assert_allclose(videos, expected, atol=1e-5, rtol=0)


def test_reused_prompt_embeddings_through_the_core_denoise_blocks(classic):
    """Encode once with the text encoder block, then sample with the blocks that start from text features."""
    pipe = modular_of(classic)
    text_pipe = LuminaVideoBlocks().sub_blocks["text_encoder"].init_pipeline()
    text_pipe.update_components(text_encoder=classic.text_encoder, tokenizer=classic.tokenizer, guider=pipe.guider)
    names = ["prompt_embeds", "prompt_attention_mask", "negative_prompt_embeds", "negative_prompt_attention_mask"]
    embeddings = text_pipe(prompt="a cat", output=names)

    blocks = LuminaVideoBlocks()
    blocks.sub_blocks.pop("text_encoder")
    no_text = blocks.init_pipeline()
    no_text.update_components(
        transformer=classic.transformer, scheduler=classic.scheduler, vae=classic.vae, guider=pipe.guider
    )
    reused = no_text(**embeddings, **SMALL, generator=_seeded(), output="videos")
    full = pipe(prompt="a cat", **SMALL, generator=_seeded(), output="videos")
    np.testing.assert_array_equal(reused, full)


def test_a_diffusers_guider_replaces_lumina_guidance(classic):
    """Diffusers' plain classifier-free guidance: constant scale, no renorm, the positive motion score on both."""
    pipe = modular_of(classic, ClassifierFreeGuidance(guidance_scale=3.0))
    videos = pipe(prompt="a cat", **SMALL, generator=_seeded(), output_type="pt", output="videos")
    expected = classic(
        "a cat",
        guidance_scale=3.0,
        guidance_renorm=None,
        negative_motion_score=6.0,
        motion_score=6.0,
        **SMALL,
        generator=_seeded(),
        output_type="pt",
    ).frames
    torch.testing.assert_close(videos, expected, atol=1e-6, rtol=0)


def test_a_guider_of_other_branches_is_refused(classic):
    from diffusers import PerturbedAttentionGuidance

    pipe = modular_of(
        classic,
        PerturbedAttentionGuidance(
            guidance_scale=3.0,
            perturbed_guidance_layers=[0],
            perturbed_guidance_start=0.0,
            perturbed_guidance_stop=1.0,
        ),
    )
    with pytest.raises(ValueError, match=r"PerturbedAttentionGuidance predicts .*take guiders of those"):
        pipe(prompt="a cat", **SMALL, generator=_seeded(), output="videos")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt": 5},
        {"height": 30},
        {"num_frames": 0},
        {"num_inference_steps": 0},
        {"max_sequence_length": 12},
        {"motion_score": "fast"},
        {"patch_size": (3, 3, 3)},
        {"output_type": "gif"},
        {"latents": torch.zeros(1, 4, 2, 4, 4)},
        {"generator": [_seeded(), _seeded()]},
    ],
    ids=lambda kwargs: next(iter(kwargs)),
)
def test_bad_inputs_get_the_classic_messages(classic, kwargs):
    call = {"prompt": "a cat", **SMALL, **kwargs}
    with pytest.raises((ValueError, TypeError)) as classic_error:
        classic(**call)
    with pytest.raises(type(classic_error.value)) as modular_error:
        modular_of(classic)(**call, output="videos")
    assert str(modular_error.value) == str(classic_error.value)


def test_guider_settings_get_the_classic_messages():
    with pytest.raises(ValueError, match=r"`guidance_scale` schedule must start at t_start 0.0"):
        LuminaGuidance(guidance_scale=[(0.1, 3.0)])
    with pytest.raises(ValueError, match=r"`guidance_renorm` must be None \(off\) or a finite number > 0, got -1"):
        LuminaGuidance(guidance_renorm=-1.0)


def test_save_pretrained_round_trip_names_the_package(classic, tmp_path):
    pipe = modular_of(classic, LuminaGuidance(guidance_scale=3.0, guidance_renorm=None))
    pipe.save_pretrained(str(tmp_path), overwrite_modular_index=True)
    index = json.loads((tmp_path / "modular_model_index.json").read_text())
    assert index["_class_name"] == "LuminaVideoModularPipeline"
    assert index["_blocks_class_name"] == "LuminaVideoBlocks"
    assert index["requirements"] == {"diffusers_lumina_video": ">=0.1.0"}
    assert index["transformer"][:2] == ["diffusers_lumina_video", "LuminaVideoTransformer3DModel"]
    # Recorded as "this repo", so the folder loads by repo id once uploaded.
    assert index["transformer"][2]["pretrained_model_name_or_path"] is None

    loaded = ModularPipeline.from_pretrained(str(tmp_path))
    assert isinstance(loaded, LuminaVideoModularPipeline)
    loaded.load_components()
    loaded.update_components(guider=pipe.guider)
    expected = pipe(prompt="a cat", **SMALL, generator=_seeded(), output="videos")
    # A reloaded transformer recomputes its RoPE tables, which can move the frames by about 1e-6.
    np.testing.assert_allclose(
        loaded(prompt="a cat", **SMALL, generator=_seeded(), output="videos"), expected, atol=1e-5
    )


def test_blocks_declare_the_package_in_their_requirements(tmp_path):
    blocks = LuminaVideoBlocks()
    blocks.save_pretrained(str(tmp_path))
    config = json.loads((tmp_path / "modular_config.json").read_text())
    assert config["requirements"] == {"diffusers_lumina_video": ">=0.1.0"}


def test_both_pipelines_guide_with_the_same_guider_code(classic, monkeypatch):
    """The classic pipeline's guidance is `LuminaGuidance` too: the same guider calls, branch for branch."""
    calls = []
    forward = LuminaGuidance.forward

    def recording(self, pred_cond, pred_uncond=None):
        calls.append(pred_uncond is not None)
        return forward(self, pred_cond, pred_uncond)

    monkeypatch.setattr(LuminaGuidance, "forward", recording)
    guidance = {"guidance_scale": [(0.0, 4.0), (0.15, 1.0)]}
    classic("a cat", **guidance, **SMALL, output_type="latent")
    classic_calls = list(calls)
    calls.clear()
    modular_of(classic, LuminaGuidance(**guidance))(prompt="a cat", **SMALL, output_type="latent", output="videos")
    assert calls == classic_calls == [True] * 4 + [False] * 2  # step times 0, .02, .06, .11, .2, .39


def test_lora_loads_into_the_modular_pipeline_as_into_the_classic(tmp_path):
    from test_lora import save_lora

    save_lora(tmp_path)
    classic = tiny_random_pipeline()
    classic.load_lora_weights(tmp_path, adapter_name="style")
    pipe = modular_of(tiny_random_pipeline(), LuminaGuidance(guidance_scale=4.0))
    pipe.load_lora_weights(tmp_path, adapter_name="style")
    call = {**SMALL, "output_type": "latent"}
    expected = classic(
        "a cat", guidance_scale=4.0, attention_kwargs={"scale": 0.5}, generator=_seeded(), **call
    ).frames
    half = pipe(prompt="a cat", attention_kwargs={"scale": 0.5}, generator=_seeded(), output="videos", **call)
    torch.testing.assert_close(half, expected, atol=1e-6, rtol=0)
    pipe.set_adapters("style", adapter_weights=0.5)
    torch.testing.assert_close(pipe(prompt="a cat", generator=_seeded(), output="videos", **call), half)
