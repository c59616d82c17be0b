"""Diffusers' cache methods through the pipeline on the four sampling presets (scaled down to the tiny pipeline):
each works (right shape, close to the uncached run, blocks actually skipped) or is refused before the first step.

Engagement is measured by counting the calls of every block's attention query projection, which runs exactly when a
block's attention is computed and not when a cache supplies the block's or the attention's output.
"""

import ast

import pytest
import torch
from diffusers import (
    FasterCacheConfig,
    FirstBlockCacheConfig,
    MagCacheConfig,
    PyramidAttentionBroadcastConfig,
    TaylorSeerCacheConfig,
)
from diffusers.hooks import SeaCacheConfig, TextKVCacheConfig

from diffusers_lumina_video import LuminaVideoPipeline
from diffusers_lumina_video.pipelines.lumina_video.presets import SAMPLING_PRESETS
from diffusers_lumina_video.showcase.builtin_models import tiny_random_pipeline


STEPS = 10
# Largest relative distance to the uncached run measured on any preset is 0.034 (SeaCache); twice that is allowed.
MAX_RELATIVE_DISTANCE = 0.07


def preset_call(name: str, **overrides) -> dict:
    """A preset's schedule (guidance, motion, patchification switches) at tiny sizes and few steps."""
    call = {key: value for key, value in SAMPLING_PRESETS[name].items() if key != "shift"}
    sizes = {"height": 32, "width": 32, "num_frames": 9, "num_inference_steps": STEPS, "output_type": "latent"}
    return {**call, **sizes, **overrides}


def counted_pipeline() -> tuple[LuminaVideoPipeline, list[int]]:
    pipe = tiny_random_pipeline()
    pipe.set_progress_bar_config(disable=True)
    calls = [0]
    for layer in pipe.transformer.layers:
        layer.attn.to_q.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return pipe, calls


def generate(pipe: LuminaVideoPipeline, call: dict) -> torch.Tensor:
    return pipe("a cat", generator=torch.Generator().manual_seed(0), **call).frames


WORKING = {
    "FirstBlockCache": lambda pipe: FirstBlockCacheConfig(threshold=0.2),
    "PyramidAttentionBroadcast": lambda pipe: PyramidAttentionBroadcastConfig(
        spatial_attention_block_skip_range=2,
        spatial_attention_timestep_skip_range=(0, 1000),
        current_timestep_callback=lambda: pipe.current_timestep,
    ),
    "TaylorSeer": lambda pipe: TaylorSeerCacheConfig(cache_interval=2, disable_cache_before_step=1),
    "SeaCache": lambda pipe: SeaCacheConfig(),
}


@pytest.mark.parametrize("preset", sorted(SAMPLING_PRESETS))
@pytest.mark.parametrize("method", sorted(WORKING))
def test_cache_works_on_every_preset(method, preset):
    pipe, calls = counted_pipeline()
    call = preset_call(preset)
    reference = generate(pipe, call)
    uncached_calls, calls[0] = calls[0], 0

    pipe.transformer.enable_cache(WORKING[method](pipe))
    cached = generate(pipe, call)

    assert cached.shape == reference.shape and torch.isfinite(cached).all()
    distance = ((cached - reference).norm() / reference.norm()).item()
    assert 0 < distance < MAX_RELATIVE_DISTANCE
    assert calls[0] < uncached_calls, f"{method} skipped nothing: {calls[0]} of {uncached_calls} calls"


@pytest.mark.parametrize("method", sorted(WORKING))
@pytest.mark.parametrize(
    ("preset", "switches"),
    [
        ("f16F64R512-MultiScale", [0, 4, 8, 9]),
        ("f24F96R960-MultiScale", [0, 2, 6, 7]),
        ("f16F64R512", [0, 9]),
        ("f24F96R960", [0, 7]),
    ],
)
def test_caches_restart_where_guidance_or_patchification_changes(method, preset, switches, monkeypatch):
    """At the start, at the patchification switches (token count) and where guidance switches off (batch), steps
    of 10; Diffusers resets once more when the pipeline finishes."""
    pipe, _ = counted_pipeline()
    pipe.transformer.enable_cache(WORKING[method](pipe))
    step, resets = [0], []
    monkeypatch.setattr(pipe.transformer, "_reset_stateful_cache", lambda *a, **k: resets.append(step[0]))

    def count_step(pipe, index, timestep, tensors):
        step[0] = index + 1
        return {}

    generate(pipe, {**preset_call(preset), "callback_on_step_end": count_step})
    assert resets == [*switches, STEPS]


def test_caches_restart_with_each_generation():
    """Attention kept from one generation must not be broadcast into the next (another prompt, another batch)."""
    pipe, _ = counted_pipeline()
    pipe.transformer.enable_cache(WORKING["PyramidAttentionBroadcast"](pipe))
    call = preset_call("f16F64R512")
    generate(pipe, call)
    pipe.transformer.disable_cache()
    fresh = generate(pipe, {**call, "num_videos_per_prompt": 2})
    pipe.transformer.enable_cache(WORKING["PyramidAttentionBroadcast"](pipe))
    generate(pipe, call)
    second = generate(pipe, {**call, "num_videos_per_prompt": 2})
    assert second.shape == fresh.shape


def test_mag_cache_calibrates_and_uses_its_ratios_on_a_single_kind_run(capsys):
    pipe, calls = counted_pipeline()
    call = preset_call("f16F64R512", guidance_scale=3.0, negative_motion_score=2.0)
    reference = generate(pipe, call)
    uncached_calls, calls[0] = calls[0], 0

    pipe.transformer.enable_cache(MagCacheConfig(calibrate=True, num_inference_steps=STEPS))
    torch.testing.assert_close(generate(pipe, call), reference)  # calibration skips nothing
    printed = capsys.readouterr().out
    ratios = ast.literal_eval(printed.split("mag_ratios=...):")[1].strip().splitlines()[0])
    assert len(ratios) == STEPS and all(r > 0 for r in ratios)

    pipe.transformer.disable_cache()
    calls[0] = 0
    pipe.transformer.enable_cache(MagCacheConfig(mag_ratios=ratios, num_inference_steps=STEPS, threshold=0.5))
    cached = generate(pipe, call)
    assert ((cached - reference).norm() / reference.norm()).item() < MAX_RELATIVE_DISTANCE
    assert calls[0] < uncached_calls


REFUSED_AT_ENABLE = {
    "FasterCache": (
        lambda pipe: FasterCacheConfig(current_timestep_callback=lambda: pipe.current_timestep),
        r"FasterCache cannot be used .*batches \[positive, negative\] with a motion score per branch",
    ),
    "TextKVCache": (lambda pipe: TextKVCacheConfig(), "TextKVCache has no effect on LuminaVideoTransformer3DModel"),
    "PAB without timestep": (
        lambda pipe: PyramidAttentionBroadcastConfig(spatial_attention_block_skip_range=2),
        "PyramidAttentionBroadcastConfig needs `current_timestep_callback`",
    ),
    "PAB foreign blocks": (
        lambda pipe: PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=2,
            spatial_attention_block_identifiers=("transformer_blocks",),
            temporal_attention_block_identifiers=(),
            cross_attention_block_identifiers=(),
            current_timestep_callback=lambda: pipe.current_timestep,
        ),
        r"block identifiers \['transformer_blocks'\] select none of this model's blocks; they are named `layers.N`",
    ),
    "TaylorSeer foreign blocks": (
        lambda pipe: TaylorSeerCacheConfig(cache_identifiers=[r"^blocks\.\d+$"]),
        r"TaylorSeerCacheConfig identifiers \['\^blocks\\\\.\\\\d\+\$'\] select none",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED_AT_ENABLE))
def test_cache_that_cannot_work_is_refused_when_enabled(case):
    make_config, message = REFUSED_AT_ENABLE[case]
    pipe, _ = counted_pipeline()
    with pytest.raises(ValueError, match=message):
        pipe.transformer.enable_cache(make_config(pipe))
    assert not pipe.transformer.is_cache_enabled


REFUSED_AT_CALL = {
    "f24F96R960": r"changes at step\(s\) \[7\] \(cond_uncond_1x2x2 -> cond_1x2x2: guidance switching off",
    "f16F64R512": r"changes at step\(s\) \[9\] \(cond_uncond_1x2x2 -> cond_1x2x2",
    "f24F96R960-MultiScale": r"changes at step\(s\) \[2, 6, 7\] \(cond_uncond_2x4x4 -> cond_uncond_2x2x2 -> ",
    "f16F64R512-MultiScale": r"changes at step\(s\) \[4, 8, 9\]",
    "steps": r"`num_inference_steps=12`, but this run has 10 steps",
}


@pytest.mark.parametrize("calibrate", [True, False], ids=["calibrate", "ratios"])
@pytest.mark.parametrize("case", sorted(REFUSED_AT_CALL))
def test_mag_cache_on_a_run_it_cannot_line_up_with_is_refused_before_the_first_step(case, calibrate):
    pipe, calls = counted_pipeline()
    steps = 12 if case == "steps" else STEPS
    ratios = None if calibrate else [1.0] * steps
    pipe.transformer.enable_cache(MagCacheConfig(calibrate=calibrate, mag_ratios=ratios, num_inference_steps=steps))
    single_kind = {"guidance_scale": 3.0, "negative_motion_score": 2.0}
    call = preset_call("f16F64R512", **single_kind) if case == "steps" else preset_call(case)
    with pytest.raises(ValueError, match=REFUSED_AT_CALL[case]):
        generate(pipe, call)
    assert calls[0] == 0, "refused before any transformer call"
