"""The shipped `tiny-shapes` model draws what the prompt asks for (colour and direction read off its frames), moving
the shape every frame for two seconds."""

import json

import pytest
import torch
from conftest import recorded_source_paths
from diffusers import DiffusionPipeline

from diffusers_lumina_video.commands.generate import sampling_kwargs, video_fps
from diffusers_lumina_video.pipelines.lumina_video.presets import preset_call_arguments
from diffusers_lumina_video.showcase.builtin_models import TINY_SHAPES_ID, TINY_SHAPES_PRESETS, tiny_shapes_path
from diffusers_lumina_video.showcase.shape_attributes import (
    read_bounce,
    read_clip_attributes,
    read_track,
    track_smoothness,
)
from diffusers_lumina_video.showcase.synthetic_shapes import BOUNCING


@pytest.fixture(scope="module")
def pipe():
    """Loaded as a user loads it; its sampling settings come with its folder."""
    pipe = DiffusionPipeline.from_pretrained(tiny_shapes_path(), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_a_prompt_alone_makes_the_models_own_video_with_the_settings_the_cli_and_demo_use(pipe):
    shipped = json.loads((tiny_shapes_path() / "model_index.json").read_text())
    assert shipped["default_sampling_preset"] == TINY_SHAPES_ID
    assert shipped["sampling_presets"][TINY_SHAPES_ID] == {
        "height": 64, "width": 64, "num_frames": 16, "num_inference_steps": 20, "guidance_scale": 4.0,
        "guidance_renorm": None, "motion_score": -1.0, "negative_motion_score": -1.0, "patch_size": [1, 2, 2],
        "shift": 1.0, "fps": 8,
    }  # fmt: skip
    assert (
        pipe.sampling_defaults
        == sampling_kwargs(TINY_SHAPES_ID, None, {})
        == {**preset_call_arguments(TINY_SHAPES_PRESETS[TINY_SHAPES_ID])}
    )
    assert video_fps(TINY_SHAPES_ID, None) == video_fps(TINY_SHAPES_ID, "tiny-shapes-MultiScale") == 8
    steps = []
    video = pipe("a red circle moving left", callback_on_step_end=lambda p, i, t, k: steps.append(i) or {}).frames[0]
    assert video.shape == (16, 64, 64, 3) and len(steps) == 20 and pipe.scheduler.config.shift == 1.0
    multi_scale = pipe.use_sampling_preset("tiny-shapes-MultiScale")
    assert multi_scale["patch_size"] == [(0.0, (2, 2, 2)), (0.875, (1, 2, 2))]
    assert pipe.scheduler.config.shift == 1.0


def test_shipped_folder_carries_no_path_of_the_machine_that_built_it():
    assert recorded_source_paths(tiny_shapes_path()) == {}


def test_shipped_folder_is_half_precision_safetensors():
    files = sorted(p.relative_to(tiny_shapes_path()).as_posix() for p in tiny_shapes_path().rglob("*.safetensors"))
    assert files == [
        "text_encoder/model.safetensors",
        "transformer/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
    ]
    assert sum(p.stat().st_size for p in tiny_shapes_path().rglob("*")) < 10 * 2**20


@pytest.mark.parametrize(
    ("prompt", "seed", "colour", "direction"),
    [
        ("a blue square moving right", 0, "blue", "right"),  # README's first command: no speed word
        ("a red circle moving down, quickly", 1, "red", "down"),
    ],
)
def test_generated_clip_has_the_prompts_colour_and_direction_and_moves_every_frame(
    pipe, prompt, seed, colour, direction
):
    frames = pipe(prompt, generator=torch.Generator().manual_seed(seed)).frames[0]  # the model's own settings
    found = read_clip_attributes(frames, bouncing=True)
    assert (found.colour, found.direction) == (colour, direction), found
    # most of the 15 frame-to-frame steps go the prompted way (the first latent frame's two frames are one picture)
    assert track_smoothness(read_track(frames), direction) >= 0.8


def test_a_bouncing_prompt_reverses_the_shape_inside_the_clip(pipe):
    # the benchmark reads the bounce inside 90-100% of seen bouncing clips (docs/showcase.md)
    frames = pipe(
        "a blue triangle bouncing left and right, slowly", generator=torch.Generator().manual_seed(7)
    ).frames[0]
    assert read_clip_attributes(frames, bouncing=True).direction == BOUNCING
    track = read_track(frames)
    moment = read_bounce(track)
    assert moment is not None and 0 < moment < len(track) - 1
    assert track_smoothness(track, BOUNCING) >= 0.6
