"""The shipped `tiny-shapes` model draws what the prompt asks for (colour and direction read off its frames)."""

import pytest
import torch
from conftest import recorded_source_paths

from diffusers_lumina_video.commands.generate import load_pipeline, use_preset
from diffusers_lumina_video.evaluation.video_attributes import read_clip_attributes
from diffusers_lumina_video.utils.tiny_random import TINY_SHAPES_DEFAULTS, TINY_SHAPES_ID, tiny_shapes_path


@pytest.fixture(scope="module")
def pipe():
    pipe = load_pipeline(TINY_SHAPES_ID, torch.float32)
    use_preset(pipe, TINY_SHAPES_ID, "f24F96R960")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_shipped_folder_carries_no_path_of_the_machine_that_built_it():
    assert recorded_source_paths(tiny_shapes_path()) == {}


def test_shipped_folder_is_half_precision_safetensors():
    files = sorted(p.relative_to(tiny_shapes_path()).as_posix() for p in tiny_shapes_path().rglob("*.safetensors"))
    assert files == [
        "text_encoder/model.safetensors",
        "transformer/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
    ]
    assert sum(p.stat().st_size for p in tiny_shapes_path().rglob("*")) < 8 * 2**20


@pytest.mark.parametrize(
    ("prompt", "seed", "colour", "direction"),
    [
        ("a blue square moving right", 0, "blue", "right"),  # README's first command: no speed word
        ("a red circle moving down, quickly", 1, "red", "down"),
    ],
)
def test_generated_clip_has_the_prompts_colour_and_direction(pipe, prompt, seed, colour, direction):
    frames = pipe(prompt, generator=torch.Generator().manual_seed(seed), **TINY_SHAPES_DEFAULTS).frames[0]
    found = read_clip_attributes(frames)
    assert (found.colour, found.direction) == (colour, direction), found
