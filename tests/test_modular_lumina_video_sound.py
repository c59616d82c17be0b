"""Text to video with sound as one modular pipeline: the classic pipelines' frames and audio, one repo."""

import json

import numpy as np
import pytest
import torch
from diffusers import ModularPipeline

from diffusers_lumina_video import LuminaGuidance, LuminaVideoSoundBlocks, LuminaVideoSoundModularPipeline
from diffusers_lumina_video.showcase.builtin_models import tiny_random_pipeline, tiny_random_v2a_pipeline


VIDEO = {"height": 32, "width": 32, "num_frames": 25, "num_inference_steps": 4}
VIDEO_GUIDANCE = {"guidance_scale": [(0.0, 3.0), (0.2, 1.0)], "guidance_renorm": 2.0, "negative_motion_score": 2.0}


@pytest.fixture(scope="module")
def classics():
    return tiny_random_pipeline(), tiny_random_v2a_pipeline()


def workflow_of(video, audio) -> LuminaVideoSoundModularPipeline:
    pipe = LuminaVideoSoundBlocks().init_pipeline()
    pipe.update_components(**video.components, **{f"audio_{name}": c for name, c in audio.components.items()})
    pipe.update_components(guider=LuminaGuidance(**VIDEO_GUIDANCE))
    return pipe


def test_workflow_equals_the_classic_pipelines_one_after_the_other(classics):
    video, audio = classics
    generator = torch.Generator().manual_seed(0)
    frames = video("a cat", generator=generator, motion_score=4.0, **VIDEO_GUIDANCE, **VIDEO).frames
    expected = audio(frames, fps=12.5, prompt="rain", num_inference_steps=5, generator=generator)

    output = workflow_of(video, audio)(
        prompt="a cat",
        motion_score=4.0,
        fps=12.5,
        audio_prompt="rain",
        audio_num_inference_steps=5,
        generator=torch.Generator().manual_seed(0),
        output=["videos", "audios", "sample_rate"],
        **VIDEO,
    )
    # 25 frames at 12.5 fps: two seconds of sound.
    assert output["videos"].shape == (1, 25, 32, 32, 3) and output["audios"].shape == (1, 32000)
    assert output["sample_rate"] == 16000
    np.testing.assert_allclose(output["videos"], frames, atol=1e-6, rtol=0)
    np.testing.assert_allclose(output["audios"], expected.audios, atol=1e-6, rtol=0)


def test_one_repo_round_trip(classics, tmp_path):
    pipe = workflow_of(*classics)
    pipe.save_pretrained(str(tmp_path), overwrite_modular_index=True)
    index = json.loads((tmp_path / "modular_model_index.json").read_text())
    assert index["_class_name"] == "LuminaVideoSoundModularPipeline"
    assert index["requirements"] == {"diffusers_lumina_video": ">=0.1.0"}
    assert (tmp_path / "audio_transformer" / "config.json").is_file() and (tmp_path / "transformer").is_dir()

    loaded = ModularPipeline.from_pretrained(str(tmp_path))
    assert isinstance(loaded, LuminaVideoSoundModularPipeline)
    loaded.load_components()
    loaded.update_components(guider=pipe.guider)
    call = {"prompt": "a cat", "fps": 12.5, "audio_num_inference_steps": 2, "output": ["videos", "audios"], **VIDEO}
    expected = pipe(**call, generator=torch.Generator().manual_seed(0))
    output = loaded(**call, generator=torch.Generator().manual_seed(0))
    # A reloaded transformer recomputes its RoPE tables, which moves the frames by about 1e-6.
    np.testing.assert_allclose(output["videos"], expected["videos"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(output["audios"], expected["audios"], atol=1e-5, rtol=0)


def test_video_too_short_for_sound_gets_the_v2a_message(classics):
    with pytest.raises(ValueError, match=r"The video lasts 0.360 s; Synchformer needs at least"):
        workflow_of(*classics)(
            prompt="a cat", fps=25.0, output="audios", **{**VIDEO, "num_frames": 9}, audio_num_inference_steps=2
        )
