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
"""Video-to-audio with Lumina-V2A: a silent video (and a text) in, a synchronized soundtrack out."""

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import logging, replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor
from transformers import (
    CLIPTextModel,
    CLIPVisionModelWithProjection,
    ImageProcessingMixin,
    PreTrainedTokenizerBase,
    SpeechT5HifiGan,
)

from ...loaders import LuminaVideoLoraLoaderMixin
from ...models import LuminaV2ATransformerModel, SynchformerEncoder
from ...models.transformers.transformer_lumina_v2a import SYNC_FEATURES_PER_SEGMENT
from ...processors import SynchformerVideoProcessor
from ...utils.media_io import (
    VideoFrames,
    frame_indices_at_rate,
    frames_argument,
    read_video_argument,
    video_arguments,
)
from ..lumina_video.denoising import (
    LuminaGuidance,
    call_kind,
    combine_branches,
    euler_step,
    guider_branches,
    lumina_time,
)
from ..lumina_video.schedules import TimeSchedule, parse_float
from ..sampling import LuminaSamplingMixin, check_output_type
from .audio_codec import LATENT_FRAMES_PER_SECOND, SAMPLE_RATE, latents_to_waveforms
from .pipeline_output import LuminaV2APipelineOutput


logger = logging.get_logger(__name__)

OUTPUT_TYPES = ("np", "pt", "latent")
# CLIP sees the video at a fixed 8 frames per second (MMAudio's rate); Synchformer's rate is its processor's (25).
CLIP_FPS = 8.0

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import diffusers_lumina_video  # registers the classes with Diffusers
        >>> from diffusers import DiffusionPipeline
        >>> from diffusers_lumina_video.utils.media_io import export_to_video_with_audio, read_video

        >>> pipe = DiffusionPipeline.from_pretrained("path/to/lumina-v2a")
        >>> output = pipe(video="silent.mp4", prompt="a dog barking in a park", num_inference_steps=25)
        >>> video = read_video("silent.mp4")
        >>> export_to_video_with_audio(video.frames, output.audios[0], output.sample_rate, "with_sound.mp4", video.fps)
        ```
"""


def sync_segment_count(duration: float, processor: SynchformerVideoProcessor | None = None) -> int:
    """Synchformer segments that `duration` seconds give (0 when too short for one); MMAudio's windowing unless
    `processor` says otherwise."""
    processor = processor or SynchformerVideoProcessor()
    frames = processor.num_frames_for_duration(duration)
    return processor.num_segments(frames) if frames >= processor.config.num_frames else 0


def latent_frame_count(duration: float, time_patch: int) -> int:
    """AudioLDM latent frames (25 per second) that cover `duration`, rounded up to the transformer's time patch."""
    frames = math.ceil(round(duration * SAMPLE_RATE) / (SAMPLE_RATE / LATENT_FRAMES_PER_SECOND))
    return math.ceil(frames / time_patch) * time_patch


class LuminaV2APipeline(DiffusionPipeline, LuminaVideoLoraLoaderMixin, LuminaSamplingMixin):
    r"""
    Video-to-audio generation with Lumina-V2A: a rectified-flow Next-DiT over AudioLDM VAE latents, conditioned on
    CLIP features of the frames, CLIP features of a text and Synchformer features of the motion.

    Args:
        transformer ([`LuminaV2ATransformerModel`]): Predicts the velocity from noise to data.
        scheduler ([`FlowMatchEulerDiscreteScheduler`]): Euler steps; its `shift` is the sampling time shift.
        vae ([`AutoencoderKL`]): AudioLDM's mel VAE; decodes latents into log-mel spectrograms.
        vocoder ([`SpeechT5HifiGan`]): AudioLDM's HiFi-GAN; turns mel spectrograms into 16 kHz waveforms.
        text_encoder ([`CLIPTextModel`]), tokenizer: CLIP's text tower; its last hidden state is the text feature.
        image_encoder ([`CLIPVisionModelWithProjection`]), feature_extractor: CLIP's image tower and its image
            processor; one projected feature per frame.
        sync_encoder ([`SynchformerEncoder`], *optional*): Synchformer's visual branch; without it, pass
            `sync_features` to the call.
    """

    lora_model_family = "v2a"
    model_cpu_offload_seq = "text_encoder->image_encoder->sync_encoder->transformer->vae->vocoder"
    _optional_components = ["sync_encoder"]
    _callback_tensor_inputs = ["latents"]

    def __init__(
        self,
        transformer: LuminaV2ATransformerModel,
        scheduler: FlowMatchEulerDiscreteScheduler,
        vae: AutoencoderKL,
        vocoder: SpeechT5HifiGan,
        text_encoder: CLIPTextModel,
        tokenizer: PreTrainedTokenizerBase,
        image_encoder: CLIPVisionModelWithProjection,
        feature_extractor: ImageProcessingMixin,
        sync_encoder: SynchformerEncoder | None = None,
    ):
        super().__init__()
        self.register_modules(
            transformer=transformer,
            scheduler=scheduler,
            vae=vae,
            vocoder=vocoder,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            image_encoder=image_encoder,
            feature_extractor=feature_extractor,
            sync_encoder=sync_encoder,
        )

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def _read_videos(video: Any, fps: float | None) -> list[VideoFrames]:
        """One or several videos as decoded frames with timestamps. A path is read from disk (its own frame rate);
        frames (`[F, H, W, 3]` uint8 or float in [0, 1], or a list of PIL images) take `fps`."""
        videos = video_arguments(video)
        paths = [isinstance(v, (str, os.PathLike)) for v in videos]
        if any(paths) and fps is not None:
            raise ValueError("`fps` is read from the video file; leave it unset when `video` is a path.")
        if not all(paths) and (fps is None or isinstance(fps, bool) or not fps > 0 or not math.isfinite(fps)):
            raise ValueError(f"`fps` must be a positive number when `video` holds frames, got {fps!r}.")
        return [
            read_video_argument(v) if is_path else _frames_with_times(v, fps)
            for v, is_path in zip(videos, paths, strict=True)
        ]

    def check_inputs(
        self,
        videos: list[VideoFrames],
        prompt: str | list[str] | None,
        negative_prompt: str | list[str] | None,
        duration: float | None,
        num_inference_steps: int,
        sync_features: torch.Tensor | None,
        output_type: str,
        callback_on_step_end_tensor_inputs: Sequence[str] | None,
    ) -> float:
        """Checks everything before any model runs; returns the duration of the audio to generate."""
        sync_processor = self.sync_processor
        lengths = [v.frames.shape[0] / v.fps for v in videos]
        for index, video in enumerate(videos):
            if video.frames.shape[0] < 2:
                raise ValueError(
                    f"`video` {index} has {video.frames.shape[0]} frame; a soundtrack needs a moving picture of at "
                    f"least {sync_processor.min_duration} s."
                )
        if duration is None:
            duration = min(lengths)
        elif isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration > 0:
            raise ValueError(f"`duration` must be a positive number of seconds, got {duration!r}.")
        elif duration > min(lengths) + 1e-6:
            raise ValueError(f"`duration` {duration} s is longer than the video ({min(lengths):.3f} s).")
        if len(videos) > 1 and max(lengths) - min(lengths) > 1e-6 and duration == min(lengths):
            logger.info(f"The videos have different lengths; generating {duration:.3f} s for each.")
        sync_frames = sync_processor.num_frames_for_duration(duration)
        if sync_frames < sync_processor.config.num_frames:
            raise ValueError(
                f"The video lasts {duration:.3f} s; Synchformer needs at least {sync_processor.min_duration} s "
                f"({sync_processor.config.num_frames} frames at {sync_processor.config.fps:g} fps)."
            )
        max_duration = self.transformer.config.max_latent_frames / LATENT_FRAMES_PER_SECOND
        if (
            latent_frame_count(duration, self.transformer.config.patch_size[0])
            > self.transformer.config.max_latent_frames
        ):
            raise ValueError(
                f"The video lasts {duration:.3f} s; this model generates at most {max_duration:.2f} s. Pass a shorter "
                "`duration` or cut the video."
            )

        batch_size = len(videos)
        for name, value in (("prompt", prompt), ("negative_prompt", negative_prompt)):
            if value is None or isinstance(value, str):
                continue
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise ValueError(f"`{name}` must be a string or a list of strings, got {value!r}.")
            if len(value) != batch_size:
                raise ValueError(f"`{name}` has {len(value)} entries, but there are {batch_size} videos.")
        if (
            isinstance(num_inference_steps, bool)
            or not isinstance(num_inference_steps, int)
            or num_inference_steps < 1
        ):
            raise ValueError(f"`num_inference_steps` must be an integer >= 1, got {num_inference_steps!r}.")

        expected_sync = (batch_size, sync_segment_count(duration, sync_processor) * SYNC_FEATURES_PER_SEGMENT)
        if sync_features is not None:
            width = self.transformer.config.sync_feat_dim
            if sync_features.ndim != 3 or tuple(sync_features.shape) != (*expected_sync, width):
                raise ValueError(
                    f"`sync_features` must be [B, S*8, D] = {(*expected_sync, width)} for {batch_size} video(s) of "
                    f"{duration:.3f} s, got {tuple(sync_features.shape)}."
                )
        elif self.sync_encoder is None:
            raise ValueError("This pipeline has no `sync_encoder`; pass precomputed `sync_features`.")
        check_output_type(output_type, OUTPUT_TYPES)
        unknown = set(callback_on_step_end_tensor_inputs or []) - set(self._callback_tensor_inputs)
        if unknown:
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` has {sorted(unknown)}; allowed: {self._callback_tensor_inputs}."
            )
        return float(duration)

    # ------------------------------------------------------------------ conditions
    def encode_prompt(
        self, prompt: str | list[str], device: torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CLIP text token features `[B, L, D]` and their mask `[B, L]` (1 for real tokens)."""
        device = device or self._execution_device
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        inputs = self.tokenizer(
            prompts,
            padding=True,
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        mask = inputs.attention_mask.to(device)
        features = self.text_encoder(input_ids=inputs.input_ids.to(device), attention_mask=mask).last_hidden_state
        return features, mask

    def encode_frames(self, videos: list[VideoFrames], duration: float) -> torch.Tensor:
        """CLIP features of each video's frames at 8 fps over `duration`: `[B, int(8 * duration), D]`."""
        count = max(1, int(CLIP_FPS * duration))
        device = self._execution_device
        features = []
        for video in videos:
            pixels = self.feature_extractor(images=list(_frames_at_rate(video, CLIP_FPS, count)), return_tensors="pt")
            pixels = pixels.pixel_values
            pixels = pixels.to(device=device, dtype=self.image_encoder.dtype)
            features.append(self.image_encoder(pixel_values=pixels).image_embeds)
        return torch.stack(features)

    @property
    def sync_processor(self) -> SynchformerVideoProcessor:
        """How Synchformer sees a video (frame rate, size, segments): the `sync_encoder`'s, or MMAudio's without one
        (which is what precomputed `sync_features` are checked against)."""
        if self.sync_encoder is None:
            return SynchformerVideoProcessor()
        return SynchformerVideoProcessor.from_encoder(self.sync_encoder)

    def encode_sync(self, videos: list[VideoFrames], duration: float) -> torch.Tensor:
        """Synchformer features of each video over `duration`: `[B, S * 8, D]`. The frames are picked by the same
        clock rule as CLIP's, at the processor's 25 fps."""
        processor = self.sync_processor
        count = processor.num_frames_for_duration(duration)
        frames = [_frames_at_rate(video, processor.config.fps, count) for video in videos]
        pixel_values = processor(torch.from_numpy(np.stack(frames)))
        pixel_values = pixel_values.to(device=self._execution_device, dtype=self.sync_encoder.dtype)
        return self.sync_encoder(pixel_values).features

    def prepare_latents(
        self,
        batch_size: int,
        latent_frames: int,
        device: torch.device,
        generator: torch.Generator | list[torch.Generator] | None,
        latents: torch.Tensor | None,
    ) -> torch.Tensor:
        shape = (batch_size, self.transformer.config.in_channels, latent_frames, self.vae_latent_bins)
        if latents is not None:
            if tuple(latents.shape) != shape:
                raise ValueError(f"`latents` must have shape {shape} for this video, got {tuple(latents.shape)}.")
            return latents.to(device=device, dtype=torch.float32)
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(f"`generator` is a list of {len(generator)}, but {batch_size} videos are given.")
        return randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)

    def prepare_conditions(
        self,
        videos: list[VideoFrames],
        prompt: str | list[str] | None,
        negative_prompt: str | list[str] | None,
        duration: float,
        uses_guidance: bool,
        sync_features: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        """The transformer's conditions for both branches: text, CLIP frames and Synchformer features, and the flags
        that make the negative branch drop the visual and sync streams (and the text, without a negative prompt)."""
        device = self._execution_device
        batch_size = len(videos)
        prompts = [prompt or ""] * batch_size if prompt is None or isinstance(prompt, str) else prompt
        negatives = negative_prompt if isinstance(negative_prompt, list) else [negative_prompt or ""] * batch_size
        texts = prompts + negatives if uses_guidance else prompts
        text, text_mask = self.encode_prompt(texts, device)
        visual = self.encode_frames(videos, duration)
        sync = self.encode_sync(videos, duration) if sync_features is None else sync_features
        keep, drop = torch.zeros(batch_size, dtype=torch.bool), torch.ones(batch_size, dtype=torch.bool)
        return {
            "text": text,
            "text_mask": text_mask,
            "visual": visual.repeat(2, 1, 1),
            "sync": sync.to(device).repeat(2, 1, 1),
            "drop_visual": torch.cat([keep, drop]).to(device),
            "drop_sync": torch.cat([keep, drop]).to(device),
            "drop_text": torch.cat([keep, keep if negative_prompt is not None else drop]).to(device),
        }

    @property
    def vae_latent_bins(self) -> int:
        """Frequency bins of a latent: the vocoder's mel bins over the VAE's down-sampling."""
        return self.vocoder.config.model_in_dim // 2 ** (len(self.vae.config.block_out_channels) - 1)

    # ------------------------------------------------------------------ sampling
    def _predict_velocity(
        self,
        latents: torch.Tensor,
        time: float,
        guider: LuminaGuidance,
        conditions: dict[str, torch.Tensor],
        step_index: int,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        """One transformer call for the guider's branches (batched), then their combination; the negative branch
        drops the visual and sync streams (and the text, unless a negative prompt was given)."""
        branches = guider_branches(guider, {})
        guided = len(branches) == 2
        rows = slice(None) if guided else slice(0, latents.shape[0])
        with self.transformer_call_context(call_kind(guided), step_index, time):
            model_input = torch.cat([latents] * len(branches))
            velocity = self._transformer_velocity(model_input, time, conditions, rows, attention_kwargs)
        return combine_branches(guider, branches, velocity)

    def _transformer_velocity(
        self,
        model_input: torch.Tensor,
        time: float,
        conditions: dict[str, torch.Tensor],
        rows: slice,
        attention_kwargs: dict[str, Any] | None,
    ) -> torch.Tensor:
        return self.transformer(
            hidden_states=model_input,  # the transformer casts it to its patch embedder's dtype
            timestep=torch.full((model_input.shape[0],), time, device=model_input.device),
            encoder_hidden_states=conditions["text"][rows],
            encoder_attention_mask=conditions["text_mask"][rows],
            visual_hidden_states=conditions["visual"][rows],
            sync_hidden_states=conditions["sync"][rows],
            drop_visual=conditions["drop_visual"][rows],
            drop_text=conditions["drop_text"][rows],
            drop_sync=conditions["drop_sync"][rows],
            attention_kwargs=attention_kwargs,
            return_dict=False,
        )[0].float()

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        video: Any,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        fps: float | None = None,
        duration: float | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float | list[tuple[float, float]] = 4.5,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        sync_features: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable[[Any, int, torch.Tensor, dict], dict]
        | PipelineCallback
        | MultiPipelineCallbacks
        | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ("latents",),
        attention_kwargs: dict[str, Any] | None = None,
    ) -> LuminaV2APipelineOutput | tuple:
        r"""
        Generates the soundtrack of a video.

        Args:
            video: A video file path, frames `[F, H, W, 3]` (uint8, or float in [0, 1]), a list of PIL images, or a
                list of such videos (a batch).
            prompt (`str` or `list[str]`, *optional*): What the audio should be; empty by default.
            negative_prompt (`str` or `list[str]`, *optional*): The negative branch's text; without it, the negative
                branch uses the learned empty text.
            fps (`float`, *optional*): Frame rate of `video` when it is given as frames (a file states its own).
            duration (`float`, *optional*): Seconds of audio, from the start of the video; default the whole video.
            num_inference_steps (`int`): Transformer evaluations per guidance branch.
            guidance_scale (`float` or schedule): `w` in `neg + w * (pos - neg)`, a constant or `(t_start, value)`
                pairs over Lumina time (0 = noise, 1 = data) as for `LuminaVideoPipeline`; where `w <= 1` the negative
                branch is not run.
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*): One, or one per video.
            latents (`torch.Tensor`, *optional*): Starting noise `[B, 8, latent_frames, 16]`.
            sync_features (`torch.Tensor`, *optional*): Precomputed Synchformer features `[B, S * 8, D]`; they replace
                the `sync_encoder`.
            output_type (`str`): `"np"`, `"pt"` or `"latent"` (the final latents).
            return_dict (`bool`): Return a [`LuminaV2APipelineOutput`] instead of a tuple.
            callback_on_step_end (*optional*): Called after each step as `(pipe, step, timestep, tensors)`; may return
                replacements for the tensors in `callback_on_step_end_tensor_inputs`.
            callback_on_step_end_tensor_inputs (`list[str]`): Tensors passed to the callback.
            attention_kwargs (`dict`, *optional*): Passed to the transformer (e.g. `{"scale": 0.7}` for LoRA).

        Examples:

        Returns:
            [`LuminaV2APipelineOutput`] or `tuple`: the waveforms `[B, num_samples]` in `audios`, and `sample_rate`.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        schedule = TimeSchedule.parse("guidance_scale", guidance_scale, parse_float)
        videos = self._read_videos(video, fps)
        duration = self.check_inputs(
            videos,
            prompt,
            negative_prompt,
            duration,
            num_inference_steps,
            sync_features,
            output_type,
            callback_on_step_end_tensor_inputs,
        )
        self._attention_kwargs = attention_kwargs
        self._current_timestep = None
        self._interrupt = False
        device = self._execution_device
        batch_size = len(videos)

        # 1. Conditions: text, CLIP frames and Synchformer features; the negative branch's flags
        uses_guidance = any(value > 1.0 for value in schedule.values)
        conditions = self.prepare_conditions(videos, prompt, negative_prompt, duration, uses_guidance, sync_features)

        # 2. Time grid (sigma = 1 - t) and noise
        timesteps = self.set_lumina_timesteps(num_inference_steps, device)
        latent_frames = latent_frame_count(duration, self.transformer.config.patch_size[0])
        latents = self.prepare_latents(batch_size, latent_frames, device, generator, latents)

        # 3. Denoising loop
        self.check_cache_for_run([call_kind(schedule.at(1.0 - float(s)) > 1.0) for s in self.scheduler.sigmas[:-1]])
        guider = LuminaGuidance(guidance_scale, guidance_renorm=None, negative_motion_score=None)
        with self.progress_bar(total=num_inference_steps) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                self._current_timestep = t
                time = lumina_time(self.scheduler, i)
                guider.set_state(i, num_inference_steps, t, time=time)
                self._guidance_scale = guider.guidance_scale
                velocity = self._predict_velocity(latents, time, guider, conditions, i, self.attention_kwargs)
                latents = euler_step(self.scheduler, velocity, t, latents)

                if callback_on_step_end is not None:
                    tensors = {name: {"latents": latents}[name] for name in callback_on_step_end_tensor_inputs}
                    latents = (callback_on_step_end(self, i, t, tensors) or {}).pop("latents", latents)
                progress_bar.update()
        self._current_timestep = None

        # 4. Latents -> mel -> waveform, cut to the video's duration
        audios = decode_audio(self.vae, self.vocoder, latents, duration, output_type)

        self.maybe_free_model_hooks()
        if not return_dict:
            return (audios, SAMPLE_RATE)
        return LuminaV2APipelineOutput(audios=audios, sample_rate=SAMPLE_RATE)


def decode_audio(
    vae: AutoencoderKL, vocoder: SpeechT5HifiGan, latents: torch.Tensor, duration: float, output_type: str
):
    """Latents -> log-mel -> waveforms on the CPU, cut to `duration` (`output_type` "latent": the latents)."""
    if output_type == "latent":
        return latents
    audios = latents_to_waveforms(latents, vae, vocoder, num_samples=round(duration * SAMPLE_RATE)).cpu()
    return audios if output_type == "pt" else audios.numpy()


def _frames_at_rate(video: VideoFrames, rate: float, count: int) -> np.ndarray:
    """`count` frames of `video` on a `rate` clock (MMAudio's rule, `frame_indices_at_rate`); a final tick that falls
    after the last frame's timestamp shows the last frame, so every clip of `duration` seconds gives `int(rate *
    duration)` frames."""
    indices = frame_indices_at_rate(video.timestamps, rate, count)
    indices = np.concatenate([indices, np.full(count - len(indices), len(video.frames) - 1, dtype=np.int64)])
    return video.frames[indices]


def _frames_with_times(video: Any, fps: float) -> VideoFrames:
    """Frames given in memory as uint8 `[F, H, W, 3]`, with timestamps `i / fps`."""
    frames = frames_argument(video)
    return VideoFrames(frames=frames, timestamps=np.arange(frames.shape[0]) / fps, fps=float(fps))
