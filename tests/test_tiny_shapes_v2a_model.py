"""The shipped `tiny-shapes-v2a` sounds a bounce that `tiny-shapes` generated, at its moment, and leaves a shape that
does not bounce silent; heard on the waveform of the written mp4, as the command line writes it."""

import numpy as np
import pytest
import torch
from conftest import recorded_source_paths
from diffusers import DiffusionPipeline
from safetensors import safe_open

from diffusers_lumina_video import LuminaV2APipeline
from diffusers_lumina_video.commands.soundtrack import sound_guidance_scale
from diffusers_lumina_video.evaluation.waveform_sync import hear_video
from diffusers_lumina_video.showcase.builtin_models import TINY_SHAPES_V2A_ID, tiny_shapes_path, tiny_shapes_v2a_path
from diffusers_lumina_video.showcase.sounding_shapes import COLOUR_TONES, read_bounce_times
from diffusers_lumina_video.utils.media_io import export_to_video_with_audio


FPS = 8.0
ONSET_TOLERANCE = 0.08  # seconds


@pytest.fixture(scope="module")
def pipelines():
    video = DiffusionPipeline.from_pretrained(tiny_shapes_path(), torch_dtype=torch.float32)
    sound = DiffusionPipeline.from_pretrained(tiny_shapes_v2a_path(), torch_dtype=torch.float32)
    for pipe in (video, sound):
        pipe.set_progress_bar_config(disable=True)
    return video, sound


def heard_onsets(pipelines, prompt: str, seed: int, path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The bounce moments read off the video `tiny-shapes` makes for `prompt` and `seed`, and the onsets heard in the
    mp4 of that video with the sound the shipped V2A model gives it at its own settings."""
    video_pipe, sound_pipe = pipelines
    frames = video_pipe(prompt, generator=torch.Generator().manual_seed(seed), output_type="np").frames[0]
    frames = (np.asarray(frames) * 255).round().astype(np.uint8)
    sound = sound_pipe(
        video=frames,
        fps=FPS,
        prompt=prompt,
        guidance_scale=sound_guidance_scale(TINY_SHAPES_V2A_ID),
        generator=torch.Generator().manual_seed(0),
    )
    export_to_video_with_audio(frames, sound.audios[0], sound.sample_rate, path, fps=FPS)
    return read_bounce_times(frames, FPS), hear_video(path, COLOUR_TONES).onsets


def test_a_generated_bounce_is_heard_at_its_moment(pipelines, tmp_path):
    # A video the V2A model never heard: its generated training videos have seeds from `GENERATED_SEEDS` (100000) on.
    bounces, onsets = heard_onsets(pipelines, "a green circle bouncing left and right, slowly", 2, tmp_path / "b.mp4")
    assert len(bounces) == 1, bounces
    assert any(abs(onset - bounces[0]) <= ONSET_TOLERANCE for onset in onsets), (bounces, onsets)


def test_a_shape_that_does_not_bounce_is_silent(pipelines, tmp_path):
    bounces, onsets = heard_onsets(pipelines, "a blue square moving right", 0, tmp_path / "one_way.mp4")
    assert bounces == () and onsets == ()


def test_shipped_folder_is_a_half_precision_v2a_pipeline_without_paths_of_the_machine_that_built_it(pipelines):
    assert isinstance(pipelines[1], LuminaV2APipeline)
    assert recorded_source_paths(tiny_shapes_v2a_path()) == {}
    assert sum(p.stat().st_size for p in tiny_shapes_v2a_path().rglob("*")) < 5 * 2**20
    for file in tiny_shapes_v2a_path().rglob("*.safetensors"):
        with safe_open(file, framework="pt") as handle:
            assert {handle.get_slice(key).get_dtype() for key in handle.keys()} == {"F16"}, file
