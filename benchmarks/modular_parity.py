"""Largest difference between the modular and the classic pipelines for the same seed and settings.

Runs on a CPU in about a minute: Lumina-Video on tiny random weights (single-scale with renorm, multi-scale with
guidance turning off mid-run, a released multi-scale preset) and on the shipped `tiny-shapes`, Lumina-V2A on tiny
random weights, and the text-to-video-with-sound workflow. Prints a Markdown table.

    python benchmarks/modular_parity.py
"""

import numpy as np
import torch
from diffusers import DiffusionPipeline, ModularPipeline

from diffusers_lumina_video import LuminaGuidance, LuminaV2ABlocks, LuminaVideoBlocks, LuminaVideoSoundBlocks
from diffusers_lumina_video.showcase.builtin_models import (
    TINY_SHAPES_DEFAULTS,
    tiny_random_pipeline,
    tiny_random_v2a_pipeline,
    tiny_shapes_path,
)


def max_difference(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def modular(blocks, components: dict, **more):
    pipe = blocks.init_pipeline()
    pipe.update_components(**components, **more)
    return pipe


def video_cases(video) -> list[tuple[str, float]]:
    small = {"height": 32, "width": 32, "num_frames": 9, "num_inference_steps": 6}
    cases = {
        "single-scale, renorm 1.5, 2 prompts x 2 videos": (
            {"guidance_scale": 4.5, "guidance_renorm": 1.5, "negative_motion_score": 2.0},
            {"prompt": ["a cat", "a dog"], "negative_prompt": ["blur", "noise"], "num_videos_per_prompt": 2},
        ),
        "multi-scale (2,4,4)->(1,2,2), guidance 6 -> off at t=0.2": (
            {"guidance_scale": [(0.0, 6.0), (0.2, 1.0)], "guidance_renorm": 2.0, "negative_motion_score": 1.0},
            {"prompt": "a cat", "patch_size": [(0.0, (2, 4, 4)), (0.1, (1, 2, 2))]},
        ),
    }
    rows = []
    for name, (guidance, call) in cases.items():
        pipe = modular(LuminaVideoBlocks(), video.components, guider=LuminaGuidance(**guidance))
        expected = video(**call, **guidance, **small, generator=torch.manual_seed(0)).frames
        rows.append(
            (
                f"Lumina-Video tiny random, {name}",
                max_difference(pipe(**call, **small, generator=torch.manual_seed(0), output="videos"), expected),
            )
        )
    pipe = modular(LuminaVideoBlocks(), video.components)
    sizes = {"height": 64, "width": 64, "num_frames": 9, "num_inference_steps": 8}
    classic_kwargs = {**video.use_sampling_preset("f16F64R512-MultiScale"), **sizes}
    modular_kwargs = {**pipe.use_sampling_preset("f16F64R512-MultiScale"), **sizes}
    expected = video("a cat", generator=torch.manual_seed(0), **classic_kwargs).frames
    frames = pipe(prompt="a cat", generator=torch.manual_seed(0), output="videos", **modular_kwargs)
    rows.append(
        ("Lumina-Video tiny random, preset f16F64R512-MultiScale (8 steps, 64x64x9)", max_difference(frames, expected))
    )
    return rows


def tiny_shapes_case() -> tuple[str, float]:
    classic = DiffusionPipeline.from_pretrained(str(tiny_shapes_path()))
    pipe = ModularPipeline.from_pretrained(str(tiny_shapes_path()))
    pipe.load_components()
    settings = dict(TINY_SHAPES_DEFAULTS)
    guidance = {name: settings.pop(name) for name in ("guidance_scale", "guidance_renorm", "negative_motion_score")}
    pipe.update_components(guider=LuminaGuidance(**guidance))
    expected = classic("a red circle moving right", generator=torch.manual_seed(0), **guidance, **settings).frames
    frames = pipe(prompt="a red circle moving right", generator=torch.manual_seed(0), output="videos", **settings)
    return "tiny-shapes, its own settings (20 steps, 64x64x8), frames", max_difference(frames, expected)


def audio_cases(video, audio) -> list[tuple[str, float]]:
    clip = np.random.default_rng(0).integers(0, 255, (25, 32, 32, 3), dtype=np.uint8)
    rows = []
    for name, guidance in (("guidance 4.5", 4.5), ("guidance 4 -> off at t=0.3", [(0.0, 4.0), (0.3, 1.0)])):
        guider = LuminaGuidance(guidance, guidance_renorm=None, negative_motion_score=None)
        pipe = modular(LuminaV2ABlocks(), audio.components, guider=guider)
        call = {"video": clip, "fps": 12.5, "prompt": "rain", "num_inference_steps": 5}
        expected = audio(**call, guidance_scale=guidance, generator=torch.manual_seed(0)).audios
        rows.append(
            (
                f"Lumina-V2A tiny random, {name}, audio",
                max_difference(pipe(**call, generator=torch.manual_seed(0), output="audios"), expected),
            )
        )

    guidance = {"guidance_scale": [(0.0, 3.0), (0.2, 1.0)], "guidance_renorm": 2.0, "negative_motion_score": 2.0}
    audio_components = {f"audio_{name}": component for name, component in audio.components.items()}
    workflow = modular(
        LuminaVideoSoundBlocks(), video.components, **audio_components, guider=LuminaGuidance(**guidance)
    )
    sizes = {"height": 32, "width": 32, "num_frames": 25, "num_inference_steps": 4}
    generator = torch.manual_seed(0)
    frames = video("a cat", generator=generator, **guidance, **sizes).frames
    sound = audio(frames, fps=12.5, prompt="rain", num_inference_steps=5, generator=generator).audios
    output = workflow(
        prompt="a cat",
        fps=12.5,
        audio_prompt="rain",
        audio_num_inference_steps=5,
        generator=torch.manual_seed(0),
        output=["videos", "audios"],
        **sizes,
    )
    rows.append(("Text to video with sound, tiny random, frames", max_difference(output["videos"], frames)))
    rows.append(("Text to video with sound, tiny random, audio", max_difference(output["audios"], sound)))
    return rows


def main() -> None:
    video, audio = tiny_random_pipeline(), tiny_random_v2a_pipeline()
    for pipe in (video, audio):
        pipe.set_progress_bar_config(disable=True)
    rows = [*video_cases(video), tiny_shapes_case(), *audio_cases(tiny_random_pipeline(), audio)]
    print("| Case | Max abs difference, modular vs classic |\n|---|---|")
    for name, difference in rows:
        print(f"| {name} | {difference:.3g} |")


if __name__ == "__main__":
    main()
