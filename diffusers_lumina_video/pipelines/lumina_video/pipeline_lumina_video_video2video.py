# Copyright 2026 The diffusers-lumina-video authors. All rights reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Video-to-video with Lumina-Video: a clip is encoded, noised to the first step that `strength` keeps, and sampled
from there on the text-to-video time axis (rectified flow needs no retraining for this)."""

import inspect
import numbers
import os
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers.utils import replace_example_docstring

from ...utils.media_io import frames_argument, read_video_argument, video_arguments
from .pipeline_lumina_video import SAMPLING_ARGUMENTS, LuminaVideoPipeline, check_video_size
from .pipeline_output import LuminaVideoPipelineOutput
from .schedules import SamplingSchedule


DEFAULT_STRENGTH = 0.8  # Diffusers' video-to-video default (CogVideoX, Wan)

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> from diffusers.utils import export_to_video
        >>> from diffusers_lumina_video import LuminaVideoVideoToVideoPipeline

        >>> pipe = LuminaVideoVideoToVideoPipeline.from_pretrained(
        ...     "path/to/Lumina-Video-f24R960-diffusers", torch_dtype=torch.bfloat16
        ... )
        >>> pipe.enable_model_cpu_offload()
        >>> pipe.vae.enable_tiling()
        >>> call_kwargs = pipe.use_sampling_preset("f24F96R960")
        >>> del call_kwargs["height"], call_kwargs["width"], call_kwargs["num_frames"]  # the input video's
        >>> video = pipe(video="input.mp4", prompt="A watercolour painting of a harbour", strength=0.6, **call_kwargs)
        >>> export_to_video(video.frames[0], "restyled.mp4", fps=24)
        ```
"""


def check_strength(strength: Any) -> float:
    """`strength` as Diffusers' video-to-video pipelines read it: the share of the denoising steps that run."""
    if isinstance(strength, bool) or not isinstance(strength, numbers.Real) or not 0.0 < strength <= 1.0:
        raise ValueError(f"`strength` must be a number in (0, 1], got {strength!r}.")
    return float(strength)


def first_step(num_inference_steps: int, strength: float) -> int:
    """Index of the first step that runs: the last `int(num_inference_steps * strength)` steps run (Diffusers'
    `get_timesteps`); a strength that keeps none is refused."""
    strength = check_strength(strength)
    kept = min(int(num_inference_steps * strength), num_inference_steps)
    if kept < 1:
        raise ValueError(
            f"`strength={strength}` keeps no step of `num_inference_steps={num_inference_steps}` (the last "
            f"int({num_inference_steps} x {strength}) = 0 steps run); raise either."
        )
    return num_inference_steps - kept


def read_video_frames(video: Any) -> list[np.ndarray]:
    """The frames (uint8 `[F, H, W, 3]`) of each video in a pipeline's `video` argument, read as the V2A pipeline
    reads them: file paths, frames or PIL lists, one video or several."""
    return [
        read_video_argument(v).frames if isinstance(v, (str, os.PathLike)) else frames_argument(v)
        for v in video_arguments(video)
    ]


def round_to_multiple(size: int, multiple: int) -> int:
    """The multiple of `multiple` nearest to `size`, at least `multiple`."""
    return max(multiple, round(size / multiple) * multiple)


class LuminaVideoVideoToVideoPipeline(LuminaVideoPipeline):
    r"""
    Video-to-video generation with Lumina-Video: restyle or redirect a clip with a new prompt.

    The clip is encoded with the VAE (the mode of its latent distribution, scaled as the pipeline decodes), noised
    with rectified flow to the Lumina time `t` of the first step that `strength` keeps (`x_t = t * video + (1 - t) *
    noise`, the scheduler's `scale_noise`), and sampled from there with every text-to-video argument. Loads from any
    Lumina-Video folder, or shares a loaded pipeline's models with `from_pipe`.

    Args: the same as [`LuminaVideoPipeline`]; `vae` is needed to encode a video.
    """

    _strength = 1.0  # of the call in progress
    _video_pixels = None  # the call's preprocessed videos, encoded where the latents are prepared

    def _video_multiple(self, schedule: SamplingSchedule) -> int:
        return self.vae_scale_factor_spatial * max(max(p[1:]) for p in schedule.patch_size.values)

    def prepare_video(
        self,
        video: Any,
        height: int | None,
        width: int | None,
        num_frames: int | None,
        schedule: SamplingSchedule,
        batch_size: int,
    ) -> tuple[torch.Tensor, int, int, int]:
        """The videos as the VAE's input `[V, 3, F', H, W]` in [-1, 1], and the output's height, width and frame
        count. Sizes left out are the first video's own, rounded to the size rules; each frame is resized to cover
        `height` x `width` and centre-cropped (aspect ratio kept). The first `num_frames` frames are used (default:
        all of the shortest video), one output frame per input frame whatever the frame rate; the last one is
        repeated up to the frame count the VAE encodes into the needed latent frames, and cropped from the output as
        in text-to-video."""
        if self.vae is None:
            raise ValueError("`video` needs a `vae` to encode it; this pipeline has none.")
        clips = read_video_frames(video)
        if len(clips) not in (1, batch_size):
            raise ValueError(
                f"`video` holds {len(clips)} videos; pass one (for every prompt) or one per prompt ({batch_size})."
            )
        multiple = self._video_multiple(schedule)
        height = round_to_multiple(clips[0].shape[1], multiple) if height is None else height
        width = round_to_multiple(clips[0].shape[2], multiple) if width is None else width
        shortest = min(len(clip) for clip in clips)
        num_frames = shortest if num_frames is None else num_frames
        check_video_size(height, width, num_frames, spatial_multiple=multiple)
        if num_frames > shortest:
            raise ValueError(
                f"`num_frames={num_frames}` is more than `video` has ({shortest} frames); pass at most {shortest}."
            )
        encoded_frames = self.decoded_num_frames(self.num_latent_frames(num_frames))
        pixels = []
        for clip in clips:
            clip = clip[:num_frames]
            clip = np.concatenate([clip, np.repeat(clip[-1:], encoded_frames - num_frames, axis=0)])
            images = [PIL.Image.fromarray(frame) for frame in clip]
            pixels.append(self.video_processor.preprocess_video(images, height, width, resize_mode="crop"))
        return torch.cat(pixels), height, width, num_frames

    def encode_video(self, pixels: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Latents `[V, C, L, H / 8, W / 8]` of videos `[V, 3, F, H, W]` in [-1, 1]: the mode of the VAE's latent
        distribution (no randomness, so a generator draws the same noise as in text-to-video), scaled by
        `vae.config.scaling_factor` as the pipeline decodes."""
        latents = [
            self.vae.encode(clip[None].to(device=device, dtype=self.vae.dtype)).latent_dist.mode() for clip in pixels
        ]
        latents = torch.cat(latents).float() * self.vae.config.scaling_factor
        expected = self.num_latent_frames(pixels.shape[2])
        if latents.shape[2] != expected:
            raise ValueError(
                f"The VAE encoded {pixels.shape[2]} frames into {latents.shape[2]} latent frames, but decodes "
                f"{expected} latent frames into them; its temporal compression is not the CogVideoX VAE's."
            )
        return latents

    def set_lumina_timesteps(self, num_inference_steps: int, device: torch.device) -> torch.Tensor:
        """The text-to-video grid (same shift, same Lumina times) without the steps before the first one `strength`
        keeps. The scheduler's grid is cut, not recomputed, so step `i` of the loop is the grid's step `start + i`."""
        timesteps = super().set_lumina_timesteps(num_inference_steps, device)
        start = first_step(num_inference_steps, self._strength)
        scheduler = self.scheduler
        scheduler.timesteps = timesteps[start:]
        scheduler.sigmas = scheduler.sigmas[start:]
        scheduler.num_inference_steps = len(scheduler.timesteps)
        self._num_timesteps = len(scheduler.timesteps)
        return scheduler.timesteps

    def prepare_latents(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Text-to-video's starting noise (same arguments, same draws) and, with a video, the encoded video noised
        with it to the first kept step. Without a video, the given `latents` are that start already."""
        noise = super().prepare_latents(*args, **kwargs)
        if self._video_pixels is None:
            return noise
        video_latents = self.encode_video(self._video_pixels, noise.device)
        video_latents = video_latents.repeat_interleave(noise.shape[0] // video_latents.shape[0], dim=0)
        start = self.scheduler.timesteps[:1].repeat(noise.shape[0])
        return self.scheduler.scale_noise(video_latents.to(noise.dtype), start, noise)

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        video: Any = None,
        prompt: str | list[str] | None = None,
        strength: float = DEFAULT_STRENGTH,
        **kwargs: Any,
    ) -> LuminaVideoPipelineOutput | tuple:
        r"""
        Generates videos from a video and a text. Every other keyword argument is [`LuminaVideoPipeline.__call__`]'s,
        with the same meaning and default. Time-aware ones (guidance, motion, patch size) are read on the same Lumina
        time axis, so a run that starts late meets only their late values (with the released presets, a low
        `strength` runs only the finest patchification and little or no guidance; see docs/video_to_video.md).

        Args:
            video: A video file path, frames `[F, H, W, 3]` (uint8, or float in [0, 1]), a list of PIL images, or a
                list (or `[B, F, H, W, 3]` array or tensor) of those, one per prompt. Its frames are used one to one
                (the frame rate is not changed). Pass `video` or `latents`, not both.
            height (`int`, *optional*), width (`int`, *optional*): Output size; the video is resized to cover it and
                centre-cropped. Default: the video's own, rounded to the nearest multiple of the size rule (8 x the
                largest patch used).
            num_frames (`int`, *optional*): Frames of the output, the video's first ones; default all of them (of
                the shortest video). More than the video has is refused.
            strength (`float`): In (0, 1]: the last `int(num_inference_steps * strength)` steps of the text-to-video
                grid run, from the video noised to that step's time. 1.0 starts from pure noise (text-to-video with
                the same noise); low values keep more of the video.
            latents (`torch.Tensor`, *optional*): Starting latents at the first kept step (already noised), instead
                of `video`; shaped as in text-to-video.

        Examples:

        Returns:
            [`LuminaVideoPipelineOutput`] or `tuple`: the videos in `frames` (or the first tuple element).
        """
        strength = check_strength(strength)
        call = inspect.signature(LuminaVideoPipeline.__call__).bind(self, prompt=prompt, **kwargs)
        call.apply_defaults()
        args = {name: value for name, value in call.arguments.items() if name != "self"}
        args.update(self.with_sampling_defaults(**{name: args[name] for name in SAMPLING_ARGUMENTS}))
        if (video is None) == (args["latents"] is None):
            raise ValueError("Pass exactly one of `video` and `latents` (the starting latents at the first step).")
        steps = args["num_inference_steps"]
        if isinstance(steps, int) and steps >= 1:
            first_step(steps, strength)  # else the text-to-video checks name the bad step count
        self._strength = strength
        self._video_pixels = None
        if video is not None:
            schedule = SamplingSchedule.parse(
                args["guidance_scale"],
                args["motion_score"],
                args["negative_motion_score"],
                args["patch_size"],
                self.transformer.config.patch_sizes,
            )
            embeds = args["prompt_embeds"]
            prompts = len(prompt) if isinstance(prompt, list) else None
            prompts = prompts or (embeds.shape[0] if prompt is None and isinstance(embeds, torch.Tensor) else 1)
            self._video_pixels, args["height"], args["width"], args["num_frames"] = self.prepare_video(
                video, args["height"], args["width"], args["num_frames"], schedule, prompts
            )
        try:
            return super().__call__(**args)
        finally:
            self._video_pixels = None  # the pixels are not kept between calls
