"""Lumina-V2A as Modular Diffusers blocks: the classic pipeline's audio, its messages, and a save/load round trip."""

import json

import numpy as np
import pytest
import torch
from diffusers import ModularPipeline

from diffusers_lumina_video import LuminaGuidance, LuminaV2ABlocks, LuminaV2AModularPipeline
from diffusers_lumina_video.showcase.builtin_models import tiny_random_v2a_pipeline


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def frames(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (count, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def classic():
    return tiny_random_v2a_pipeline()


def modular_of(classic, guider=None) -> LuminaV2AModularPipeline:
    pipe = LuminaV2ABlocks().init_pipeline()
    pipe.update_components(**classic.components)
    if guider is not None:
        pipe.update_components(guider=guider)
    return pipe


@pytest.mark.parametrize(
    ("guidance_scale", "call"),
    [
        pytest.param(4.5, {"prompt": "rain", "negative_prompt": "music"}, id="guided-negative-prompt"),
        pytest.param([(0.0, 4.0), (0.3, 1.0)], {"prompt": ["rain", "wind"]}, id="guidance-off-mid-run-batch"),
    ],
)
def test_modular_equals_classic(classic, guidance_scale, call):
    pipe = modular_of(classic, LuminaGuidance(guidance_scale, guidance_renorm=None, negative_motion_score=None))
    batched = isinstance(call["prompt"], list)
    video = [frames(25), frames(25, seed=1)] if batched else frames(25)
    inputs = {"video": video, "fps": 12.5, "num_inference_steps": 5, **call}
    expected = classic(**inputs, guidance_scale=guidance_scale, generator=_seeded(), output_type="pt")
    output = pipe(**inputs, generator=_seeded(), output_type="pt", output=["audios", "sample_rate"])
    assert output["sample_rate"] == expected.sample_rate == 16000
    assert output["audios"].shape == expected.audios.shape == (len(call["prompt"]) if batched else 1, 32000)
    torch.testing.assert_close(output["audios"], expected.audios, atol=1e-6, rtol=0)


def test_default_guider_is_the_classic_default(classic):
    pipe = modular_of(classic)
    expected = classic(video=frames(25), fps=12.5, num_inference_steps=3, generator=_seeded(), output_type="latent")
    latents = pipe(video=frames(25), fps=12.5, num_inference_steps=3, generator=_seeded(), output_type="latent")
    torch.testing.assert_close(latents.get("audios"), expected.audios, atol=0, rtol=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"video": frames(1)},
        {"fps": None},
        {"duration": 5.0},
        {"prompt": ["a", "b"]},
        {"num_inference_steps": 0},
        {"output_type": "pil"},
        {"video": "/does/not/exist.mp4", "fps": None},
    ],
    ids=["one-frame", "no-fps", "too-long", "prompt-count", "steps", "output-type", "missing-file"],
)
def test_bad_inputs_get_the_classic_messages(classic, kwargs):
    call = {"video": frames(25), "fps": 12.5, "num_inference_steps": 2, **kwargs}
    with pytest.raises((ValueError, FileNotFoundError)) as classic_error:
        classic(**call)
    with pytest.raises(type(classic_error.value)) as modular_error:
        modular_of(classic)(**call, output="audios")
    assert str(modular_error.value) == str(classic_error.value)


def test_save_pretrained_round_trip(classic, tmp_path):
    pipe = modular_of(classic)
    pipe.save_pretrained(str(tmp_path), overwrite_modular_index=True)
    index = json.loads((tmp_path / "modular_model_index.json").read_text())
    assert index["_class_name"] == "LuminaV2AModularPipeline"
    assert index["requirements"] == {"diffusers_lumina_video": ">=0.1.0"}
    loaded = ModularPipeline.from_pretrained(str(tmp_path))
    assert isinstance(loaded, LuminaV2AModularPipeline)
    loaded.load_components()
    call = {"video": frames(25), "fps": 12.5, "num_inference_steps": 2, "output": "audios"}
    np.testing.assert_array_equal(loaded(**call, generator=_seeded()), pipe(**call, generator=_seeded()))


def test_classic_folder_loads_as_the_modular_pipeline(classic, tmp_path):
    classic.save_pretrained(tmp_path)
    pipe = ModularPipeline.from_pretrained(str(tmp_path))
    assert isinstance(pipe, LuminaV2AModularPipeline)
    pipe.load_components()
    call = {"video": frames(25), "fps": 12.5, "num_inference_steps": 2}
    expected = classic(**call, generator=_seeded()).audios
    np.testing.assert_allclose(pipe(**call, generator=_seeded(), output="audios"), expected, atol=1e-6, rtol=0)
