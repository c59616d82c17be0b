import json

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import TRAJECTORY_ATOL
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler

from diffusers_lumina_video import SAMPLING_PRESETS, LuminaVideoPipeline, LuminaVideoPipelineOutput
from diffusers_lumina_video.pipelines.lumina_video.pipeline_lumina_video import SYSTEM_PROMPT
from diffusers_lumina_video.showcase.builtin_models import tiny_components, tiny_random_pipeline


SMALL = {"height": 32, "width": 32, "num_frames": 5, "num_inference_steps": 2}


@pytest.fixture(scope="module")
def pipe():
    return tiny_random_pipeline()


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- golden sampling run
def test_golden_sampling_run_after_save_and_reload(golden_transformer, golden, tmp_path):
    LuminaVideoPipeline(golden_transformer, FlowMatchEulerDiscreteScheduler(shift=8.0)).save_pretrained(tmp_path)
    model_index = json.loads((tmp_path / "model_index.json").read_text())
    assert model_index["_class_name"] == "LuminaVideoPipeline"
    assert model_index["transformer"] == ["diffusers_lumina_video", "LuminaVideoTransformer3DModel"]
    pipe = DiffusionPipeline.from_pretrained(tmp_path)
    assert isinstance(pipe, LuminaVideoPipeline) and pipe.vae is None and pipe.text_encoder is None

    trajectory = []
    output = pipe(
        prompt_embeds=golden["sample_cap_feats"][:1],
        prompt_attention_mask=golden["sample_cap_mask"][:1],
        negative_prompt_embeds=golden["sample_cap_feats"][1:],
        negative_prompt_attention_mask=golden["sample_cap_mask"][1:],
        height=64,
        width=128,
        num_frames=13,
        num_inference_steps=11,
        guidance_scale=[(0.0, 6.0), (0.6, 1.0)],
        guidance_renorm=2.0,
        motion_score=6.0,
        negative_motion_score=[(0.0, 2.0), (0.3, 6.0)],
        patch_size=[(0.0, (2, 4, 4)), (0.2, (2, 2, 2)), (0.5, (1, 2, 2))],
        latents=golden["sample_z"],
        output_type="latent",
        callback_on_step_end=lambda p, i, t, tensors: trajectory.append(tensors["latents"].clone()),
    ).frames
    torch.testing.assert_close(1 - pipe.scheduler.sigmas, golden["sample_t_grid"], atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.stack(trajectory), golden["sample_trajectory"][1:], atol=TRAJECTORY_ATOL, rtol=0)
    torch.testing.assert_close(output, golden["sample_out"], atol=TRAJECTORY_ATOL, rtol=0)


# ---------------------------------------------------------------- text path
def test_encode_prompt_adds_system_prompt_pads_together_to_multiple_of_8(pipe):
    seen = []
    original = pipe.tokenizer.__class__.__call__

    def spy(tokenizer, texts, **kwargs):
        seen.append((list(texts), kwargs))
        return original(tokenizer, texts, **kwargs)

    pipe.tokenizer.__class__.__call__ = spy
    try:
        embeds, mask, negative, negative_mask = pipe.encode_prompt("a red cat on a mat", "blurry")
    finally:
        pipe.tokenizer.__class__.__call__ = original
    assert seen[0][0] == [SYSTEM_PROMPT + "a red cat on a mat", SYSTEM_PROMPT + "blurry"]
    assert seen[0][1]["pad_to_multiple_of"] == 8 and seen[0][1]["max_length"] == 256
    assert embeds.shape[1] % 8 == 0 and embeds.shape == negative.shape
    assert mask.sum() > negative_mask.sum() and mask[0, : mask.sum()].all()  # right padding
    # Second-to-last hidden state of the text encoder.
    ids = pipe.tokenizer([SYSTEM_PROMPT + "a red cat on a mat"], return_tensors="pt").input_ids
    hidden = pipe.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
    torch.testing.assert_close(embeds[:, : ids.shape[1]], hidden)


def test_empty_negative_prompt_is_system_prompt_alone(pipe):
    _, _, negative, negative_mask = pipe.encode_prompt("a cat", None)
    alone, alone_mask, _, _ = pipe.encode_prompt("", do_classifier_free_guidance=False)
    length = int(alone_mask.sum())
    assert int(negative_mask.sum()) == length
    torch.testing.assert_close(negative[:, :length], alone[:, :length])


def test_custom_system_prompt_changes_features(pipe):
    default, _, _, _ = pipe.encode_prompt("a cat", do_classifier_free_guidance=False)
    custom, _, _, _ = pipe.encode_prompt("a cat", do_classifier_free_guidance=False, system_prompt="")
    assert default.shape[1] > custom.shape[1]


@pytest.mark.parametrize("max_sequence_length", [8, 16])
def test_truncation_warns_with_the_removed_text(pipe, caplog, max_sequence_length):
    long_prompt = " ".join(["the"] * 20) + " video"
    with caplog.at_level("WARNING"):
        embeds, mask, _, _ = pipe.encode_prompt(
            long_prompt, do_classifier_free_guidance=False, system_prompt="", max_sequence_length=max_sequence_length
        )
    assert embeds.shape[1] == max_sequence_length and mask.all()
    assert f"max_sequence_length={max_sequence_length}" in caplog.text and "video" in caplog.text


# ---------------------------------------------------------------- end to end
@pytest.mark.parametrize("output_type", ["np", "pil", "pt", "latent"])
def test_end_to_end_output_types(pipe, output_type):
    frames = pipe("a cat", generator=_seeded(), output_type=output_type, **SMALL).frames
    if output_type == "np":
        assert frames.shape == (1, 5, 32, 32, 3) and 0 <= frames.min() and frames.max() <= 1
    elif output_type == "pil":
        assert len(frames) == 1 and len(frames[0]) == 5 and isinstance(frames[0][0], PIL.Image.Image)
    elif output_type == "pt":
        assert frames.shape == (1, 5, 3, 32, 32)
    else:
        assert frames.shape == (1, 4, 2, 4, 4)


def test_return_tuple_and_output_class(pipe):
    output = pipe("a cat", generator=_seeded(), output_type="latent", **SMALL)
    as_tuple = pipe("a cat", generator=_seeded(), output_type="latent", return_dict=False, **SMALL)
    assert isinstance(output, LuminaVideoPipelineOutput) and isinstance(as_tuple, tuple)
    torch.testing.assert_close(output.frames, as_tuple[0])


def test_seed_determinism_and_per_prompt_generators(pipe):
    first = pipe("a cat", generator=_seeded(1), output_type="latent", **SMALL).frames
    again = pipe("a cat", generator=_seeded(1), output_type="latent", **SMALL).frames
    other = pipe("a cat", generator=_seeded(2), output_type="latent", **SMALL).frames
    torch.testing.assert_close(first, again, atol=0, rtol=0)
    assert not torch.allclose(first, other)
    pair = pipe(["a cat", "a cat"], generator=[_seeded(1), _seeded(2)], output_type="latent", **SMALL).frames
    torch.testing.assert_close(pair[0:1], first, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(pair[1:2], other, atol=1e-4, rtol=1e-4)


def test_num_videos_per_prompt(pipe):
    frames = pipe(["a cat", "a dog"], num_videos_per_prompt=2, generator=_seeded(), output_type="latent", **SMALL)
    assert frames.frames.shape[0] == 4


def test_decoded_frame_count_rule_matches_the_vae(pipe):
    for num_latent_frames in range(1, 7):
        latents = torch.zeros(1, 4, num_latent_frames, 2, 2)
        with torch.no_grad():
            decoded = pipe.vae.decode(latents).sample.shape[2]
        assert pipe.decoded_num_frames(num_latent_frames) == decoded, num_latent_frames
    # The reference's settings: 96 frames -> 24 latent frames, 64 -> 16.
    assert pipe.num_latent_frames(96) == 24 and pipe.num_latent_frames(64) == 16 and pipe.num_latent_frames(49) == 13


@pytest.mark.parametrize("num_frames", [1, 5, 8, 12, 17])
def test_output_has_the_requested_number_of_frames(pipe, num_frames):
    kwargs = {**SMALL, "num_frames": num_frames}
    frames = pipe("a cat", generator=_seeded(), output_type="np", **kwargs).frames
    assert frames.shape == (1, num_frames, 32, 32, 3)


def test_image_generation_with_one_frame_and_temporal_patch(pipe):
    frames = pipe(
        "a cat", generator=_seeded(), **{**SMALL, "num_frames": 1}, patch_size=(2, 2, 2), output_type="np"
    ).frames
    assert frames.shape == (1, 1, 32, 32, 3)


def test_odd_latent_frames_with_temporal_patch_two(pipe):
    # 9 frames -> 3 latent frames, padded to 4 for (2, 2, 2) and cropped back.
    kwargs = {**SMALL, "num_frames": 9}
    frames = pipe("a cat", generator=_seeded(), patch_size=(2, 2, 2), output_type="np", **kwargs).frames
    assert frames.shape == (1, 9, 32, 32, 3) and np.isfinite(frames).all()


def test_negative_branch_skipped_where_guidance_is_off(pipe):
    batch_sizes = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: batch_sizes.append(kwargs["hidden_states"].shape[0]), with_kwargs=True
    )
    try:
        kwargs = {**SMALL, "num_inference_steps": 6}
        pipe("a cat", generator=_seeded(), guidance_scale=[(0.0, 4.0), (0.1, 1.0)], output_type="latent", **kwargs)
    finally:
        hook.remove()
    # Step start times with shift 8: 0, .024, .059, .111, .2, .385. Both branches share one call while w > 1.
    assert batch_sizes == [2, 2, 2, 1, 1, 1]


def test_caption_mask_is_decided_once_per_call_and_dropped_where_nothing_is_padded(pipe):
    """The positive caption has no padding and the negative one has: the guided calls get the joint mask, the
    unguided ones no mask at all (an unmasked caption attention), and the result equals passing the masks per row."""
    embeds = torch.randn(1, 8, pipe.transformer.config.cap_feat_dim, generator=_seeded())
    negative_mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0, 0]])
    masks = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: masks.append(kwargs["encoder_attention_mask"]), with_kwargs=True
    )
    call = {
        **SMALL,
        "num_inference_steps": 6,
        "prompt_embeds": embeds,
        "prompt_attention_mask": torch.ones(1, 8, dtype=torch.long),
        "negative_prompt_embeds": torch.randn(1, 8, embeds.shape[-1], generator=_seeded(1)),
        "negative_prompt_attention_mask": negative_mask,
        "guidance_scale": [(0.0, 4.0), (0.1, 1.0)],
        "output_type": "latent",
    }
    try:
        latents = pipe(generator=_seeded(), **call).frames
    finally:
        hook.remove()
    assert [None if mask is None else mask.tolist() for mask in masks] == [
        [[1] * 8, negative_mask[0].tolist()]
    ] * 3 + [None] * 3

    # The same call with an all-ones mask given to every transformer call: the unmasked attention changes nothing.
    forward = pipe.transformer.forward

    def forward_with_mask(*args, encoder_attention_mask=None, **kwargs):
        if encoder_attention_mask is None:
            encoder_attention_mask = torch.ones(kwargs["encoder_hidden_states"].shape[:2], dtype=torch.long)
        return forward(*args, encoder_attention_mask=encoder_attention_mask, **kwargs)

    pipe.transformer.forward = forward_with_mask
    try:
        masked = pipe(generator=_seeded(), **call).frames
    finally:
        del pipe.transformer.forward
    torch.testing.assert_close(latents, masked, atol=1e-5, rtol=1e-5)


def test_guidance_and_motion_change_the_result(pipe):
    base = pipe("a cat", generator=_seeded(), guidance_scale=1.0, output_type="latent", **SMALL).frames
    guided = pipe("a cat", generator=_seeded(), guidance_scale=5.0, output_type="latent", **SMALL).frames
    moving = pipe("a cat", generator=_seeded(), guidance_scale=1.0, motion_score=9.0, output_type="latent", **SMALL)
    assert not torch.allclose(base, guided) and not torch.allclose(base, moving.frames)


def test_guidance_renorm_caps_the_guided_velocity(pipe):
    from diffusers_lumina_video.pipelines.lumina_video.denoising import LuminaGuidance, video_velocity

    latents = torch.randn(1, 4, 2, 4, 4, generator=_seeded())
    embeds, mask, negative, negative_mask = pipe.encode_prompt("a cat", "a dog")
    text = pipe._pad_and_join(embeds, mask, negative, negative_mask)

    def velocity(scale: float, renorm: float | None) -> torch.Tensor:
        guider = LuminaGuidance(guidance_scale=scale, guidance_renorm=renorm, negative_motion_score=2.0)
        guider.set_state(0, 1, torch.tensor(700.0), time=0.3)
        return video_velocity(pipe.transformer, guider, latents, 0.3, text, 6.0, (1, 2, 2), None)

    positive = velocity(1.0, None).norm()
    assert velocity(50.0, None).norm() > 1.5 * positive
    torch.testing.assert_close(velocity(50.0, 1.5).norm(), 1.5 * positive)
    torch.testing.assert_close(velocity(50.0, 1e6), velocity(50.0, None))  # below the cap: unchanged
    # As in the reference, the cap also applies where guidance is off (it only bites below 1).
    torch.testing.assert_close(velocity(1.0, 0.5), 0.5 * velocity(1.0, None))


def test_callback_can_replace_latents_and_interrupt(pipe):
    steps = []

    def callback(p, step, timestep, tensors):
        steps.append(step)
        assert set(tensors) == {"latents", "prompt_embeds"}
        if step == 0:
            p._interrupt = True
        return {"latents": torch.zeros_like(tensors["latents"])}

    frames = pipe(
        "a cat",
        generator=_seeded(),
        output_type="latent",
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"],
        **{**SMALL, "num_inference_steps": 3},
    ).frames
    assert steps == [0] and torch.count_nonzero(frames) == 0


def test_vae_tiling_and_slicing_through_the_pipeline(pipe):
    kwargs = {**SMALL, "height": 128, "width": 128, "output_type": "pt"}
    reference = pipe(["a cat", "a dog"], generator=_seeded(), **kwargs).frames
    # CogVideoX tiling needs tiles whose overlaps are whole latent pixels: 96 px tiles, 1/6 overlap.
    pipe.vae.enable_tiling(96, 96, tile_overlap_factor_height=1 / 6, tile_overlap_factor_width=1 / 6)
    pipe.vae.enable_slicing()
    try:
        tiled = pipe(["a cat", "a dog"], generator=_seeded(), **kwargs).frames
    finally:
        pipe.vae.disable_tiling()
        pipe.vae.disable_slicing()
    assert tiled.shape == reference.shape and (tiled - reference).abs().mean() < 0.1


def test_model_cpu_offload_runs(tmp_path):
    pipe = tiny_random_pipeline()
    reference = pipe("a cat", generator=_seeded(), output_type="latent", **SMALL).frames
    pipe.enable_model_cpu_offload(device="cpu")
    offloaded = pipe("a cat", generator=_seeded(), output_type="latent", **SMALL).frames
    torch.testing.assert_close(offloaded, reference)


def test_presets_are_complete_and_usable(pipe):
    assert set(SAMPLING_PRESETS) == {"f24F96R960", "f24F96R960-MultiScale", "f16F64R512", "f16F64R512-MultiScale"}
    single = SAMPLING_PRESETS["f24F96R960"]
    assert single["num_inference_steps"] == 69 and single["shift"] == 24.0  # reference: 70 grid points
    assert single["guidance_scale"] == [(0.0, 21.0), (0.2, 1.0)]  # reference cfg (20, (0.2, 0))
    assert SAMPLING_PRESETS["f16F64R512-MultiScale"]["patch_size"][0] == (0.0, (2, 4, 4))
    for name in SAMPLING_PRESETS:
        kwargs = pipe.use_sampling_preset(name)
        assert pipe.scheduler.config.shift == SAMPLING_PRESETS[name]["shift"] and "shift" not in kwargs
        kwargs.update(SMALL, height=32, width=32)
        frames = pipe("a cat", generator=_seeded(), output_type="latent", **kwargs).frames
        assert frames.shape == (1, 4, 2, 4, 4)


def test_defaults_reproduce_f24_preset(pipe):
    preset = SAMPLING_PRESETS["f24F96R960"]
    expected = {k: v for k, v in preset.items() if k not in ("shift", "patch_size")}
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in pipe.sampling_defaults.items()} == expected
    sizes = (preset["height"], preset["width"], preset["num_frames"])
    assert pipe._resolve_video_size(None, None, None, latents=None) == sizes
    calls = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(kwargs), with_kwargs=True
    )
    try:
        pipe("a cat", generator=_seeded(), height=32, width=32, num_frames=5, output_type="latent")
    finally:
        handle.remove()
    assert len(calls) == preset["num_inference_steps"]  # one call per step (both guidance branches in one batch)
    assert calls[0]["patch_size"] == (1, 2, 2)  # the finest


def test_pipeline_folder_carries_its_own_sampling_settings(tmp_path):
    """`pipe(prompt)` with nothing else makes the model's own video: the folder's default settings, saved in
    `model_index.json`; its named settings are presets too."""
    own = {
        "tiny": {"height": 32, "width": 32, "num_frames": 5, "num_inference_steps": 3, "guidance_scale": 1.0,
                 "guidance_renorm": None, "motion_score": -1.0, "negative_motion_score": -1.0,
                 "patch_size": (1, 2, 2), "shift": 1.0, "fps": 8},
        "tiny-coarse": {"num_inference_steps": 2, "patch_size": [(0.0, (2, 2, 2)), (0.5, (1, 2, 2))], "shift": 2.0},
    }  # fmt: skip
    LuminaVideoPipeline(**tiny_components(), sampling_presets=own, default_sampling_preset="tiny").save_pretrained(
        tmp_path
    )
    model_index = json.loads((tmp_path / "model_index.json").read_text())
    assert model_index["default_sampling_preset"] == "tiny" and model_index["sampling_presets"]["tiny"]["fps"] == 8
    pipe = DiffusionPipeline.from_pretrained(tmp_path)
    calls = []
    pipe.transformer.register_forward_pre_hook(lambda module, args, kwargs: calls.append(kwargs), with_kwargs=True)
    video = pipe("a cat", generator=_seeded(), output_type="latent").frames
    assert video.shape == (1, 4, 2, 4, 4)  # 5 frames of 32x32
    assert len(calls) == 3 and {c["motion_score"].item() for c in calls} == {-1.0}  # unguided, no motion condition
    kwargs = pipe.use_sampling_preset("tiny-coarse")
    assert pipe.scheduler.config.shift == 2.0 and kwargs == {
        "num_inference_steps": 2,
        "patch_size": [(0.0, (2, 2, 2)), (0.5, (1, 2, 2))],
    }
    assert pipe.use_sampling_preset("f16F64R512")["num_inference_steps"] == 69  # the released ones stay reachable
    with pytest.raises(ValueError, match=r"Unknown sampling preset 'nope'; choose from \['f16F64R512'.*'tiny-coarse'"):
        pipe.use_sampling_preset("nope")
    with pytest.raises(ValueError, match=r"`default_sampling_preset` 'other' is not one of `sampling_presets`"):
        LuminaVideoPipeline(**tiny_components(), sampling_presets=own, default_sampling_preset="other")


def test_unknown_preset_raises(pipe):
    with pytest.raises(ValueError, match="Unknown sampling preset 'nope'; choose from"):
        pipe.use_sampling_preset("nope")


# ---------------------------------------------------------------- input checks
def _embeds(batch=1, length=8):
    return torch.randn(batch, length, 32), torch.ones(batch, length, dtype=torch.long)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"height": 40}, "`height` and `width` must be positive multiples of 16"),
        ({"width": 48, "patch_size": (2, 4, 4)}, "`height` and `width` must be positive multiples of 32"),
        ({"num_frames": 0}, "`num_frames` must be >= 1"),
        ({"height": 32.0}, "`height`, `width` and `num_frames` must be integers"),
        ({"num_inference_steps": 0}, "`num_inference_steps` must be an integer >= 1"),
        ({"num_videos_per_prompt": 0}, "`num_videos_per_prompt` must be an integer >= 1"),
        ({"prompt": []}, "`prompt` must be a string or a non-empty list of strings"),
        (
            {
                "prompt": ["a", "b"],
                "negative_prompt_embeds": _embeds()[0],
                "negative_prompt_attention_mask": _embeds()[1],
            },
            "`negative_prompt_embeds` has batch size 1, but there are 2 prompts",
        ),
        ({"patch_size": (1, 4, 4)}, r"`patch_size` must be one of \[\(1, 2, 2\), \(2, 2, 2\), \(2, 4, 4\)\]"),
        ({"patch_size": [(0.1, (1, 2, 2))]}, "`patch_size` schedule must start at t_start 0.0"),
        ({"guidance_scale": [(0.0, 5.0), (0.5, 1.0), (0.3, 2.0)]}, "`guidance_scale` schedule needs increasing"),
        ({"motion_score": "fast"}, "`motion_score` takes a number or a list of"),
        ({"output_type": "gif"}, r"`output_type` must be one of \['np', 'pil', 'pt', 'latent'\]"),
        ({"guidance_renorm": 0.0}, "`guidance_renorm` must be None"),
        ({"max_sequence_length": 13}, "`max_sequence_length` must be a positive multiple of 8"),
        ({"callback_on_step_end_tensor_inputs": ["noise"]}, "`callback_on_step_end_tensor_inputs` has \\['noise'\\]"),
        ({"prompt": None}, "Pass exactly one of `prompt` and `prompt_embeds`"),
        ({"prompt_embeds": _embeds()[0]}, "Pass exactly one of `prompt` and `prompt_embeds`"),
        ({"prompt": 3}, "`prompt` must be a string or a non-empty list of strings"),
        ({"negative_prompt": ["x", "y"]}, "`negative_prompt` has 2 entries but there are 1 prompts"),
        ({"latents": torch.randn(1, 4, 2, 4)}, r"`latents` must be \[B, C, F, H, W\]"),
        ({"latents": torch.randn(1, 4, 3, 4, 4)}, r"`latents` must have shape \(1, 4, 2, 4, 4\)"),
        ({"generator": [_seeded(), _seeded()]}, "`generator` is a list of 2, but 1 videos"),
        ({"generator": [_seeded()], "num_videos_per_prompt": 2}, "`generator` is a list of 1, but 2 videos"),
        ({"generator": 3}, "`generator` must be a torch.Generator or a list of them, got int"),
        ({"generator": ["seed"]}, "`generator` must be a torch.Generator or a list of them, one per video"),
        ({"height": True}, "`height`, `width` and `num_frames` must be integers"),
        ({"guidance_renorm": "2"}, "`guidance_renorm` must be None \\(off\\) or a number > 0, got '2'"),
        ({"guidance_renorm": float("nan")}, "`guidance_renorm` must be None \\(off\\) or a finite number > 0"),
        ({"guidance_renorm": float("inf")}, "`guidance_renorm` must be None \\(off\\) or a finite number > 0"),
        ({"guidance_scale": float("nan")}, "`guidance_scale` must be finite, got nan"),
        ({"guidance_scale": [(0.0, 4.0), (0.5, float("inf"))]}, "`guidance_scale` must be finite, got inf"),
        ({"motion_score": float("inf")}, "`motion_score` must be finite, got inf"),
        ({"negative_motion_score": [(0.0, float("nan"))]}, "`negative_motion_score` must be finite"),
        ({"latents": torch.full((1, 4, 2, 4, 4), float("nan"))}, "`latents` must be finite"),
        ({"latents": torch.zeros(1, 4, 2, 4, 4, dtype=torch.long)}, "`latents` must be a floating-point tensor"),
        ({"latents": [[0.0]]}, "`latents` must be a torch.Tensor, got list"),
        (
            {"latents": torch.randn(1, 4, 2, 4, 4), "height": 64},
            r"`latents` must have shape \(1, 4, 2, 8, 4\) for these arguments \(1 videos of 5 frames at 64x32\), "
            r"got \(1, 4, 2, 4, 4\)",
        ),
    ],
)
def test_check_inputs_errors(pipe, kwargs, message):
    call = {"prompt": "a cat", **SMALL, "output_type": "latent", **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        pipe(**call)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt_embeds": _embeds()[0]}, "`prompt_embeds` needs `prompt_attention_mask`"),
        (
            {"prompt_embeds": _embeds()[0], "prompt_attention_mask": torch.ones(1, 5, dtype=torch.long)},
            r"`prompt_attention_mask` must have shape \(1, 8\)",
        ),
        (
            {
                "prompt_embeds": _embeds(2)[0],
                "prompt_attention_mask": _embeds(2)[1],
                "negative_prompt_embeds": _embeds(1)[0],
                "negative_prompt_attention_mask": _embeds(1)[1],
            },
            "`negative_prompt_embeds` has batch size 1, but there are 2 prompts",
        ),
        (
            {"prompt_embeds": _embeds()[0], "prompt_attention_mask": torch.zeros(1, 8, dtype=torch.long)},
            "Every row of `prompt_attention_mask` needs at least one real token",
        ),
        (
            {"prompt_embeds": _embeds()[0], "prompt_attention_mask": _embeds()[1], "guidance_scale": 3.0},
            "`guidance_scale` > 1 needs a negative branch",
        ),
        (
            {"prompt_embeds": _embeds()[0], "prompt_attention_mask": _embeds()[1], "output_type": "np"},
            "`output_type='np'` needs a `vae`",
        ),
        (
            {"prompt_embeds": torch.randn(1, 8, 24), "prompt_attention_mask": _embeds()[1]},
            r"`prompt_embeds` must be \[B, L, 32\] \(the transformer's `cap_feat_dim`\), got \(1, 8, 24\)",
        ),
        ({"prompt_embeds": torch.randn(8, 32), "prompt_attention_mask": _embeds()[1]}, "`prompt_embeds` must be"),
        (
            {"prompt_embeds": torch.randn(0, 8, 32), "prompt_attention_mask": torch.ones(0, 8, dtype=torch.long)},
            r"`prompt_embeds` is empty \(\(0, 8, 32\)\)",
        ),
        (
            {"prompt_embeds": torch.full((1, 8, 32), float("nan")), "prompt_attention_mask": _embeds()[1]},
            "`prompt_embeds` must be finite",
        ),
        (
            {"prompt_embeds": torch.ones(1, 8, 32, dtype=torch.long), "prompt_attention_mask": _embeds()[1]},
            "`prompt_embeds` must be a floating-point tensor, got torch.int64",
        ),
        ({"prompt_embeds": [[0.0] * 32], "prompt_attention_mask": _embeds()[1]}, "`prompt_embeds` must be a torch"),
        (
            {"prompt_embeds": _embeds()[0], "prompt_attention_mask": torch.ones(1, 8)},
            "`prompt_attention_mask` must be a bool or integer tensor",
        ),
        (
            {
                "prompt_embeds": _embeds()[0],
                "prompt_attention_mask": _embeds()[1],
                "negative_prompt_embeds": torch.full((1, 8, 32), float("inf")),
                "negative_prompt_attention_mask": _embeds()[1],
                "guidance_scale": 3.0,
            },
            "`negative_prompt_embeds` must be finite",
        ),
        (
            {
                "prompt_embeds": _embeds()[0],
                "prompt_attention_mask": _embeds()[1],
                "negative_prompt_embeds": _embeds()[0],
                "negative_prompt_attention_mask": torch.zeros(1, 8, dtype=torch.bool),
                "guidance_scale": 3.0,
            },
            "Every row of `negative_prompt_attention_mask` needs at least one real token",
        ),
        (
            {
                "prompt_embeds": _embeds()[0],
                "prompt_attention_mask": _embeds()[1],
                "negative_prompt_embeds": _embeds()[0],
            },
            "`negative_prompt_embeds` needs `negative_prompt_attention_mask`",
        ),
    ],
)
def test_check_inputs_errors_without_text_encoder_or_vae(kwargs, message):
    components = tiny_random_pipeline().components
    pipe = LuminaVideoPipeline(components["transformer"], components["scheduler"])
    calls = []
    pipe.transformer.register_forward_pre_hook(lambda *args: calls.append(args))
    call = {**SMALL, "guidance_scale": 1.0, "output_type": "latent", **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        pipe(**call)
    assert not calls  # refused before the transformer runs


def test_latents_that_do_not_patchify_are_named_as_latents(pipe):
    latents = torch.randn(1, 4, 2, 5, 6)  # 5 rows of latents: the 2x2 patches of `patch_size` do not fit
    with pytest.raises(ValueError, match=r"`latents` height and width 5x6 must be multiples of 2") as error:
        pipe(prompt="a cat", latents=latents, num_inference_steps=1, output_type="latent")
    assert "`height`" not in str(error.value)


def test_prompt_without_text_encoder_is_refused():
    components = tiny_random_pipeline().components
    pipe = LuminaVideoPipeline(components["transformer"], components["scheduler"])
    with pytest.raises(ValueError, match="no `text_encoder`/`tokenizer`; pass `prompt_embeds`"):
        pipe("a cat", output_type="latent", **SMALL)


def test_first_block_cache_through_the_multiscale_pipeline():
    from diffusers import FirstBlockCacheConfig

    pipe = tiny_random_pipeline()
    kwargs = {**SMALL, "num_inference_steps": 6, "output_type": "latent", "guidance_scale": [(0.0, 3.0), (0.1, 1.0)]}
    kwargs["patch_size"] = [(0.0, (2, 4, 4)), (0.05, (1, 2, 2))]
    reference = pipe("a cat", generator=_seeded(), **kwargs).frames
    pipe.transformer.enable_cache(FirstBlockCacheConfig(threshold=0.0))  # never reuses: same result
    torch.testing.assert_close(pipe("a cat", generator=_seeded(), **kwargs).frames, reference)
    pipe.transformer.disable_cache()
    pipe.transformer.enable_cache(FirstBlockCacheConfig(threshold=10.0))  # reuses whenever it can
    reused = pipe("a cat", generator=_seeded(), **kwargs).frames
    assert reused.shape == reference.shape and torch.isfinite(reused).all() and not torch.allclose(reused, reference)
