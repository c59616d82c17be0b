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
"""Text-to-video with Lumina-Video: multi-scale sampling, motion control and time-aware guidance."""

import dataclasses
import html
import math
import numbers
from collections.abc import Callable
from typing import Any

import ftfy
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLCogVideoX, DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import logging, replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor
from transformers import Gemma2Model, PreTrainedTokenizerBase

from ...loaders import LuminaVideoLoraLoaderMixin
from ...models import LuminaVideoTransformer3DModel
from ...utils.tensor_checks import check_tensor, check_values, finite, has_token_per_row, skip_value_checks
from ..sampling import LuminaSamplingMixin, check_output_type
from .denoising import LuminaGuidance, call_kind, check_guidance_renorm, decode_video, denoise_video_step, lumina_time
from .pipeline_output import LuminaVideoPipelineOutput
from .presets import (
    PRESET_CALL_ARGUMENTS,
    SAMPLING_PRESETS,
    check_model_presets,
    find_sampling_preset,
    preset_call_arguments,
)
from .schedules import SamplingSchedule, StepSettings


logger = logging.get_logger(__name__)

SYSTEM_PROMPT = (
    "You are an assistant designed to generate high-quality videos with the highest degree of image-text alignment "
    "based on user prompts. <Prompt Start> "
)
OUTPUT_TYPES = ("np", "pil", "pt", "latent")
_DEFAULTS = SAMPLING_PRESETS["f24F96R960"]
# `guidance_renorm`'s default, "not given": `None` already means "off".


def released_sampling_defaults() -> dict[str, Any]:
    """The call arguments of the `f24F96R960` preset, for a model that names no settings of its own; its patch size
    is left to the transformer's finest."""
    return {k: v for k, v in preset_call_arguments(_DEFAULTS).items() if k != "patch_size"}


# The call arguments a model's own settings fill in when they are not given (`with_sampling_defaults`): a preset's,
# less the video's size, which the model's size rules settle.
SAMPLING_ARGUMENTS = tuple(name for name in PRESET_CALL_ARGUMENTS if name not in ("height", "width", "num_frames"))
MODEL_DEFAULT = "model default"
# Repairs what copying text through web pages and wrong encodings does to it (mojibake such as "cafÃ©", terminal
# escapes, C1 controls) and leaves everything a person would type on purpose alone: curly quotes, ligatures,
# full-width letters, line breaks and Unicode normalisation keep their tokens, so clean prompts match the reference.
_FTFY_CONFIG = ftfy.TextFixerConfig(
    uncurl_quotes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    fix_line_breaks=False,
    remove_control_chars=False,
    normalization=None,
    explain=False,
)

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> import diffusers_lumina_video  # registers the classes with Diffusers
        >>> from diffusers import DiffusionPipeline
        >>> from diffusers.utils import export_to_video

        >>> pipe = DiffusionPipeline.from_pretrained("path/to/Lumina-Video-f24R960-diffusers", torch_dtype=torch.bfloat16)
        >>> pipe.enable_model_cpu_offload()
        >>> pipe.vae.enable_tiling()
        >>> call_kwargs = pipe.use_sampling_preset("f24F96R960-MultiScale")
        >>> video = pipe("A red panda eating bamboo in a misty forest", **call_kwargs).frames[0]
        >>> export_to_video(video, "red_panda.mp4", fps=24)
        ```
"""


def check_video_size(height: int, width: int, num_frames: int, spatial_multiple: int) -> None:
    """Pixel sizes must patchify after the VAE; any positive frame count works (see `num_latent_frames`)."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (height, width, num_frames)):
        raise ValueError(f"`height`, `width` and `num_frames` must be integers, got {height}, {width}, {num_frames}.")
    if height <= 0 or width <= 0 or height % spatial_multiple or width % spatial_multiple:
        raise ValueError(
            f"`height` and `width` must be positive multiples of {spatial_multiple} (the VAE's spatial factor x the "
            f"largest patch in `patch_size`), got {height}x{width}."
        )
    if num_frames < 1:
        raise ValueError(f"`num_frames` must be >= 1, got {num_frames}.")


def check_texts(
    prompt, negative_prompt, prompt_embeds, negative_prompt_embeds, max_sequence_length: int, can_encode: bool
) -> None:
    """Texts or their features, not both, and how texts are tokenized (the rest of `check_inputs` needs the
    transformer); `can_encode`: a text encoder and tokenizer are loaded."""
    if (prompt is None) == (prompt_embeds is None):
        raise ValueError("Pass exactly one of `prompt` and `prompt_embeds`.")
    if prompt is not None and not (
        isinstance(prompt, str) or (isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt))
    ):
        raise ValueError(f"`prompt` must be a string or a non-empty list of strings, got {prompt!r}.")
    if negative_prompt is not None and negative_prompt_embeds is not None:
        raise ValueError("Pass at most one of `negative_prompt` and `negative_prompt_embeds`.")
    if max_sequence_length <= 0 or max_sequence_length % 8:
        raise ValueError(
            f"`max_sequence_length` must be a positive multiple of 8 (texts are padded to multiples of 8), got "
            f"{max_sequence_length}."
        )
    if prompt is not None and not can_encode:
        raise ValueError("This pipeline has no `text_encoder`/`tokenizer`; pass `prompt_embeds` instead of `prompt`.")


def check_video_output_type(output_type: str, vae: AutoencoderKLCogVideoX | None) -> None:
    check_output_type(output_type, OUTPUT_TYPES)
    if output_type != "latent" and vae is None:
        raise ValueError(f"`output_type={output_type!r}` needs a `vae`; use `output_type='latent'` without one.")


def clean_prompt(text: str) -> str:
    """Repairs broken Unicode and HTML entities (also double-escaped ones, `&amp;amp;`) as Diffusers' Wan pipeline
    does; a clean prompt comes back unchanged. Whitespace is kept, unlike Wan, because the reference tokenizes it."""
    return html.unescape(html.unescape(ftfy.fix_text(text, config=_FTFY_CONFIG)))


class LuminaVideoPipeline(DiffusionPipeline, LuminaVideoLoraLoaderMixin, LuminaSamplingMixin):
    r"""
    Text-to-video generation with the Multi-scale Next-DiT of Lumina-Video.

    Args:
        transformer ([`LuminaVideoTransformer3DModel`]): Predicts the velocity from noise to data.
        scheduler ([`FlowMatchEulerDiscreteScheduler`]): Euler steps; its `shift` is the sampling time shift.
        vae ([`AutoencoderKLCogVideoX`], *optional*): Decodes latents into frames; not needed for latent output.
        text_encoder ([`Gemma2Model`], *optional*): Its second-to-last hidden state is the caption feature.
        tokenizer (*optional*): The Gemma tokenizer; not needed when embeddings are given.
        sampling_presets (`dict[str, dict]`, *optional*): The model's own named sampling settings (call arguments
            as in `SAMPLING_PRESETS`, plus `shift` and the `fps` to write videos at), saved in `model_index.json`
            like any pipeline-level config; `use_sampling_preset` takes their names.
        default_sampling_preset (`str`, *optional*): The one of `sampling_presets` a call uses for the arguments it
            is not given, so that `pipe(prompt)` makes this model's own video; without it, the `f24F96R960`
            preset's.
    """

    lora_model_family = "video"
    model_cpu_offload_seq = "text_encoder->transformer->vae"
    _optional_components = ["vae", "text_encoder", "tokenizer"]
    _callback_tensor_inputs = ["latents", "prompt_embeds", "negative_prompt_embeds"]

    def __init__(
        self,
        transformer: LuminaVideoTransformer3DModel,
        scheduler: FlowMatchEulerDiscreteScheduler,
        vae: AutoencoderKLCogVideoX | None = None,
        text_encoder: Gemma2Model | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        sampling_presets: dict[str, dict] | None = None,
        default_sampling_preset: str | None = None,
    ):
        super().__init__()
        self.register_modules(
            transformer=transformer, scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer
        )
        check_model_presets(sampling_presets, default_sampling_preset)
        self.register_to_config(sampling_presets=sampling_presets, default_sampling_preset=default_sampling_preset)
        self.vae_scale_factor_spatial = 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 8
        self.vae_scale_factor_temporal = vae.config.temporal_compression_ratio if vae is not None else 4
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor_spatial)
        if tokenizer is not None:
            tokenizer.padding_side = "right"

    def _tokenize(self, texts: list[str], max_sequence_length: int, device: torch.device):
        """Tokenizes all texts together (one padded length, a multiple of 8) and warns about what was cut."""
        inputs = self.tokenizer(
            texts,
            padding=True,
            pad_to_multiple_of=8,
            max_length=max_sequence_length,
            truncation=True,
            return_tensors="pt",
        )
        full_ids = self.tokenizer(texts).input_ids
        removed = [
            self.tokenizer.decode(ids[max_sequence_length:]) for ids in full_ids if len(ids) > max_sequence_length
        ]
        if removed:
            logger.warning(
                f"Prompts were cut to `max_sequence_length={max_sequence_length}` tokens; this part was removed: "
                f"{removed}"
            )
        return inputs.input_ids.to(device), inputs.attention_mask.to(device)

    def _encode_texts(
        self, texts: list[str], max_sequence_length: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        input_ids, attention_mask = self._tokenize(texts, max_sequence_length, device)
        outputs = self.text_encoder(input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return outputs.hidden_states[-2], attention_mask

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        negative_prompt: str | list[str] | None = None,
        do_classifier_free_guidance: bool = True,
        num_videos_per_prompt: int = 1,
        device: torch.device | None = None,
        prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_attention_mask: torch.Tensor | None = None,
        system_prompt: str | None = None,
        max_sequence_length: int = 256,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        r"""
        Encodes `system_prompt + prompt` (and the negative prompt, same prefix) with the Gemma2 text encoder.

        Positive and negative texts are padded together, as the reference does. Returns `(prompt_embeds,
        prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask)`, each repeated
        `num_videos_per_prompt` times; the negatives are `None` without classifier-free guidance.
        """
        device = device or self._execution_device
        system_prompt = SYSTEM_PROMPT if system_prompt is None else system_prompt
        prompts = [prompt] if isinstance(prompt, str) else prompt
        batch_size = len(prompts) if prompts is not None else prompt_embeds.shape[0]

        texts = []
        if prompt_embeds is None:
            texts += [system_prompt + clean_prompt(text) for text in prompts]
        need_negative = do_classifier_free_guidance and negative_prompt_embeds is None
        if need_negative:
            negatives = negative_prompt or ""
            negatives = [negatives] * batch_size if isinstance(negatives, str) else negatives
            texts += [system_prompt + clean_prompt(text) for text in negatives]
        if texts:
            embeds, masks = self._encode_texts(texts, max_sequence_length, device)
            if prompt_embeds is None:
                prompt_embeds, prompt_attention_mask = embeds[:batch_size], masks[:batch_size]
            if need_negative:
                negative_prompt_embeds, negative_prompt_attention_mask = embeds[-batch_size:], masks[-batch_size:]

        if not do_classifier_free_guidance:
            negative_prompt_embeds = negative_prompt_attention_mask = None
        prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask = (
            None if tensor is None else tensor.repeat_interleave(num_videos_per_prompt, dim=0).to(device)
            for tensor in (
                prompt_embeds,
                prompt_attention_mask,
                negative_prompt_embeds,
                negative_prompt_attention_mask,
            )
        )
        # Named values, so callers (and Diffusers' pipeline tests) can pass them back to `__call__` by name.
        return prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask

    def check_inputs(
        self,
        prompt,
        negative_prompt,
        height: int,
        width: int,
        num_frames: int,
        schedule: SamplingSchedule,
        guidance_renorm: float | None,
        prompt_embeds,
        prompt_attention_mask,
        negative_prompt_embeds,
        negative_prompt_attention_mask,
        output_type: str,
        callback_on_step_end_tensor_inputs: list[str] | None,
        latents: torch.Tensor | None,
        max_sequence_length: int,
        num_inference_steps: int,
        num_videos_per_prompt: int,
        generator: torch.Generator | list[torch.Generator] | None = None,
    ) -> None:
        check_texts(
            prompt,
            negative_prompt,
            prompt_embeds,
            negative_prompt_embeds,
            max_sequence_length,
            can_encode=self.text_encoder is not None and self.tokenizer is not None,
        )
        value_conditions = []  # read back in one sync at the end
        cap_feat_dim = self.transformer.config.cap_feat_dim
        for embeds, mask, name in (
            (prompt_embeds, prompt_attention_mask, "prompt"),
            (negative_prompt_embeds, negative_prompt_attention_mask, "negative_prompt"),
        ):
            if embeds is None:
                continue
            check_tensor(f"{name}_embeds", embeds)
            if embeds.ndim != 3 or embeds.shape[-1] != cap_feat_dim:
                raise ValueError(
                    f"`{name}_embeds` must be [B, L, {cap_feat_dim}] (the transformer's `cap_feat_dim`), got "
                    f"{tuple(embeds.shape)}."
                )
            if embeds.shape[0] == 0 or embeds.shape[1] == 0:
                raise ValueError(f"`{name}_embeds` is empty ({tuple(embeds.shape)}); give at least one caption token.")
            if mask is None:
                raise ValueError(f"`{name}_embeds` needs `{name}_attention_mask` (1 for real tokens).")
            check_tensor(f"{name}_attention_mask", mask, kind="mask")
            if tuple(mask.shape) != tuple(embeds.shape[:2]):
                raise ValueError(
                    f"`{name}_attention_mask` must have shape {tuple(embeds.shape[:2])} to match `{name}_embeds`, "
                    f"got {tuple(mask.shape)}."
                )
            value_conditions += [finite(f"{name}_embeds", embeds), has_token_per_row(f"{name}_attention_mask", mask)]
        batch_size = len(prompt) if isinstance(prompt, list) else 1 if prompt is not None else prompt_embeds.shape[0]
        if negative_prompt_embeds is not None and negative_prompt_embeds.shape[0] != batch_size:
            raise ValueError(
                f"`negative_prompt_embeds` has batch size {negative_prompt_embeds.shape[0]}, but there are {batch_size} "
                "prompts."
            )
        if isinstance(negative_prompt, list) and len(negative_prompt) != batch_size:
            raise ValueError(
                f"`negative_prompt` has {len(negative_prompt)} entries but there are {batch_size} prompts."
            )
        for name, value in (
            ("num_inference_steps", num_inference_steps),
            ("num_videos_per_prompt", num_videos_per_prompt),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
        if schedule.uses_guidance and negative_prompt_embeds is None and self.text_encoder is None:
            raise ValueError(
                "`guidance_scale` > 1 needs a negative branch: pass `negative_prompt_embeds` (and its mask) or load "
                "a `text_encoder`."
            )

        check_video_size(
            height,
            width,
            num_frames,
            spatial_multiple=self.vae_scale_factor_spatial * max(max(p[1:]) for p in schedule.patch_size.values),
        )
        check_guidance_renorm(guidance_renorm)
        check_video_output_type(output_type, self.vae)
        unknown = set(callback_on_step_end_tensor_inputs or []) - set(self._callback_tensor_inputs)
        if unknown:
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` has {sorted(unknown)}; allowed: {self._callback_tensor_inputs}."
            )
        num_videos = batch_size * num_videos_per_prompt
        if isinstance(generator, list):
            if len(generator) != num_videos:
                raise ValueError(f"`generator` is a list of {len(generator)}, but {num_videos} videos are generated.")
            if not all(isinstance(g, torch.Generator) for g in generator):
                raise TypeError("`generator` must be a torch.Generator or a list of them, one per video.")
        elif generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"`generator` must be a torch.Generator or a list of them, got {type(generator).__name__}."
            )
        if latents is not None:
            shape = self.latents_shape(num_videos, height, width, num_frames)
            if tuple(latents.shape) != shape:
                raise ValueError(
                    f"`latents` must have shape {shape} for these arguments ({num_videos} videos of {num_frames} "
                    f"frames at {height}x{width}), got {tuple(latents.shape)}."
                )
            value_conditions.append(finite("latents", latents))
        check_values(value_conditions)

    def _resolve_video_size(
        self, height: int | None, width: int | None, num_frames: int | None, latents: torch.Tensor | None
    ) -> tuple[int, int, int]:
        """Sizes left out are read from `latents` when given, else taken from `sampling_defaults`."""
        if latents is None:
            sizes = (height, width, num_frames)
            own = self.sampling_defaults
            defaults = (own["height"], own["width"], own["num_frames"])
            return tuple(default if size is None else size for size, default in zip(sizes, defaults, strict=True))
        check_tensor("latents", latents)
        if latents.ndim != 5:
            raise ValueError(f"`latents` must be [B, C, F, H, W], got shape {tuple(latents.shape)}.")
        spatial = self.vae_scale_factor_spatial
        return (
            latents.shape[3] * spatial if height is None else height,
            latents.shape[4] * spatial if width is None else width,
            self.decoded_num_frames(latents.shape[2]) if num_frames is None else num_frames,
        )

    @staticmethod
    def _check_latents_grid(latents: torch.Tensor, schedule: SamplingSchedule) -> None:
        """Given `latents` must patchify with every patch of the schedule; said of `latents`, since the sizes the
        other checks speak of (`height`, `width`) were read from it."""
        patch = max(max(p[1:]) for p in schedule.patch_size.values)
        grid = tuple(latents.shape[3:])
        if grid[0] % patch or grid[1] % patch:
            raise ValueError(
                f"`latents` height and width {grid[0]}x{grid[1]} must be multiples of {patch} (the largest patch in "
                f"`patch_size`), got shape {tuple(latents.shape)}."
            )

    def decoded_num_frames(self, num_latent_frames: int) -> int:
        """Frames the CogVideoX VAE decodes `num_latent_frames` into. It decodes latent frames two at a time, an odd
        count putting three in the first chunk, whose first frame is not upsampled in time: 13 -> 49, 24 -> 96."""
        factor = self.vae_scale_factor_temporal
        return factor * num_latent_frames if num_latent_frames % 2 == 0 else factor * (num_latent_frames - 1) + 1

    def num_latent_frames(self, num_frames: int) -> int:
        """The fewest latent frames that decode into at least `num_frames` frames (the reference's `frames // 4` for
        its 96- and 64-frame settings); the few extra decoded frames are cropped."""
        num_latent_frames = 1
        while self.decoded_num_frames(num_latent_frames) < num_frames:
            num_latent_frames += 1
        return num_latent_frames

    def prepare_latents(
        self,
        batch_size: int,
        num_channels_latents: int,
        height: int,
        width: int,
        num_frames: int,
        dtype: torch.dtype,
        device: torch.device,
        generator: torch.Generator | list[torch.Generator] | None,
        latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The starting noise; given `latents` were checked against `latents_shape` by `check_inputs`."""
        if latents is not None:
            return latents.to(device=device, dtype=dtype)
        shape = self.latents_shape(batch_size, height, width, num_frames, num_channels_latents)
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype)

    def latents_shape(
        self, batch_size: int, height: int, width: int, num_frames: int, num_channels_latents: int | None = None
    ) -> tuple[int, int, int, int, int]:
        """`[B, C, F, H, W]` of the latents that decode into `num_frames` frames of `height` x `width`."""
        return (
            batch_size,
            num_channels_latents or self.transformer.config.in_channels,
            self.num_latent_frames(num_frames),
            height // self.vae_scale_factor_spatial,
            width // self.vae_scale_factor_spatial,
        )

    @staticmethod
    def _call_kind(step: StepSettings) -> str:
        """The cache context of a step: guided (both branches batched) or not, and its patchification."""
        return call_kind(step.guidance_scale > 1.0, step.patch_size)

    @staticmethod
    def _step_settings(
        schedule: SamplingSchedule,
        time: float,
        guidance_override: float | None,
        text: dict[str, torch.Tensor],
        batch_size: int,
    ) -> StepSettings:
        """The schedule's settings at `time`, with the guidance scale a callback set, if any."""
        step = schedule.at(time)
        if guidance_override is None:
            return step
        if isinstance(guidance_override, bool) or not isinstance(guidance_override, numbers.Real):
            raise TypeError(f"A callback set `pipe._guidance_scale` to {guidance_override!r}; it must be a number.")
        if not math.isfinite(guidance_override):
            raise ValueError(f"A callback set `pipe._guidance_scale` to {guidance_override}; it must be finite.")
        if guidance_override > 1.0 and text["embeds"].shape[0] == batch_size:
            raise ValueError(
                f"A callback set `pipe._guidance_scale` to {guidance_override}, but this call prepared no negative "
                "branch because its `guidance_scale` is <= 1 at every step. Pass a `guidance_scale` (or schedule) "
                "that is > 1 somewhere to prepare it."
            )
        return dataclasses.replace(step, guidance_scale=float(guidance_override))

    @staticmethod
    def _pad_and_join(
        embeds: torch.Tensor,
        mask: torch.Tensor,
        negative_embeds: torch.Tensor | None,
        negative_mask: torch.Tensor | None,
    ) -> dict[str, torch.Tensor | None]:
        """Positive rows then negative rows, right-padded to one length so both branches run in one batch, with the
        caption mask of each kind of transformer call: both branches (`guided_mask`) or the positive rows alone
        (`mask_of_positive`). A mask is `None` where none of its rows is padded, so those calls attend to the caption
        without one; this reads the mask once per call instead of once per step."""
        batch_size = embeds.shape[0]
        if negative_embeds is not None:
            length = max(embeds.shape[1], negative_embeds.shape[1])
            rows = [(embeds, mask), (negative_embeds, negative_mask.to(mask.dtype))]
            embeds = torch.cat([F.pad(e, (0, 0, 0, length - e.shape[1])) for e, _ in rows])
            mask = torch.cat([F.pad(m, (0, length - m.shape[1])) for _, m in rows])
        padded_rows = (~mask.bool().all(dim=1)).tolist()
        return {
            "embeds": embeds,
            "guided_mask": mask if any(padded_rows) else None,
            "mask_of_positive": mask[:batch_size] if any(padded_rows[:batch_size]) else None,
        }

    def use_sampling_preset(self, name: str) -> dict[str, Any]:
        """Sets the scheduler's shift for a sampling config, the model's own (`sampling_presets`) or a released one
        (`SAMPLING_PRESETS`), and returns its call arguments."""
        settings = find_sampling_preset(name, self.config.sampling_presets)
        if "shift" in settings:
            self.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
                self.scheduler.config, shift=settings["shift"]
            )
        return preset_call_arguments(settings)

    @property
    def sampling_defaults(self) -> dict[str, Any]:
        """The call arguments a call uses for those it is not given: the model's `default_sampling_preset`, over the
        `f24F96R960` preset's (whose patch size is left to the transformer's finest)."""
        defaults = released_sampling_defaults()
        if self.config.default_sampling_preset is not None:
            own = find_sampling_preset(self.config.default_sampling_preset, self.config.sampling_presets)
            defaults.update(preset_call_arguments(own))
        return defaults

    def with_sampling_defaults(self, **arguments: Any) -> dict[str, Any]:
        """The sampling `arguments` (in their order) with those not given, `None` (`guidance_renorm`:
        `MODEL_DEFAULT`), taken from `sampling_defaults`; a patch size neither gives is the transformer's finest."""
        defaults = self.sampling_defaults
        filled = {}
        for name, value in arguments.items():
            not_given = (
                value is None if name != "guidance_renorm" else isinstance(value, str) and value == MODEL_DEFAULT
            )
            filled[name] = defaults.get(name) if not_given else value
        if "patch_size" in filled and filled["patch_size"] is None:
            filled["patch_size"] = self.transformer.finest_patch_size
        return filled

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | list[tuple[float, float]] | None = None,
        guidance_renorm: float | None | str = MODEL_DEFAULT,
        motion_score: float | list[tuple[float, float]] | None = None,
        negative_motion_score: float | list[tuple[float, float]] | None = None,
        patch_size: tuple[int, int, int] | list[tuple[float, tuple[int, int, int]]] | None = None,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_attention_mask: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable[[Any, int, torch.Tensor, dict], dict]
        | PipelineCallback
        | MultiPipelineCallbacks
        | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ("latents",),
        max_sequence_length: int = 256,
        system_prompt: str | None = None,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> LuminaVideoPipelineOutput | tuple:
        r"""
        Generates videos from text. Time-aware arguments take a constant or a schedule: a list of `(t_start, value)`
        pairs, first `t_start` 0.0 and increasing, where t is the Lumina time at the start of a step (0 = noise,
        1 = data); the value in force is the one with the largest `t_start <= t`. Sampling arguments not given take
        the model's own settings (`sampling_defaults`: its `default_sampling_preset`, e.g. the built-in
        `tiny-shapes`'), else the `f24F96R960` preset's.

        Args:
            prompt (`str` or `list[str]`): What to generate; prefixed with `system_prompt`.
            negative_prompt (`str` or `list[str]`, *optional*): The negative branch's text (default: empty, i.e. the
                system prompt alone).
            height (`int`, *optional*), width (`int`, *optional*): Pixel size; multiples of 8 x the largest patch
                used (32 for (2, 4, 4)). Defaults: read from `latents` when given, else `sampling_defaults`.
            num_frames (`int`, *optional*): Frames of the output video (1 for an image); the default, like the size's,
                comes from `latents` or `sampling_defaults`. The CogVideoX VAE decodes `L` latent
                frames into `4L` frames (`L` even) or `4L - 3` (`L` odd); the pipeline samples the fewest latent frames
                that cover `num_frames` and crops the rest, so counts of `8k` or `8k + 1` waste nothing.
            num_inference_steps (`int`): Transformer evaluations per branch (the reference's `steps` minus one).
            guidance_scale (`float` or schedule): `w` in `neg + w * (pos - neg)` (the reference's `cfg + 1`); where
                `w <= 1` the negative branch is not run.
            guidance_renorm (`float`, *optional*): Caps the guided velocity's norm at this multiple of the
                positive velocity's norm; `None` turns it off. Not given (`MODEL_DEFAULT`): `sampling_defaults`'.
            motion_score (`float` or schedule): Motion condition of the positive branch (negative = none).
            negative_motion_score (`float` or schedule): Motion condition of the negative branch; the difference to
                `motion_score` controls how much motion there is.
            patch_size (`tuple` or schedule, *optional*): `(pF, pH, pW)` from `transformer.config.patch_sizes`;
                coarse-to-fine schedules give multi-scale sampling. Defaults to the model's own settings' if they name
                one, else the finest patch.
            num_videos_per_prompt (`int`): Videos per prompt.
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*): One, or one per video.
            latents (`torch.Tensor`, *optional*): Starting noise `[B, C, pipe.num_latent_frames(num_frames), H / 8,
                W / 8]`.
            prompt_embeds, prompt_attention_mask (`torch.Tensor`, *optional*): Caption features and their mask.
            negative_prompt_embeds, negative_prompt_attention_mask (`torch.Tensor`, *optional*): Same, negative.
            output_type (`str`): `"np"`, `"pil"`, `"pt"` or `"latent"` (the final latents, scaling not undone).
            return_dict (`bool`): Return a [`LuminaVideoPipelineOutput`] instead of a tuple.
            callback_on_step_end (*optional*): Called after each step as `(pipe, step, timestep, tensors)`; may
                return replacements for the tensors in `callback_on_step_end_tensor_inputs`.
            callback_on_step_end_tensor_inputs (`list[str]`): Tensors passed to the callback.
            max_sequence_length (`int`): Longest tokenized text; longer texts are cut with a warning.
            system_prompt (`str`, *optional*): Prefix of every text; defaults to the reference's.
            attention_kwargs (`dict`, *optional*): Passed to the transformer (e.g. `{"scale": 0.7}` for LoRA).

        Examples:

        Returns:
            [`LuminaVideoPipelineOutput`] or `tuple`: the videos in `frames` (or the first tuple element).
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        num_inference_steps, guidance_scale, guidance_renorm, motion_score, negative_motion_score, patch_size = (
            self.with_sampling_defaults(
                num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale,
                guidance_renorm=guidance_renorm,
                motion_score=motion_score,
                negative_motion_score=negative_motion_score,
                patch_size=patch_size,
            ).values()
        )
        schedule = SamplingSchedule.parse(
            guidance_scale, motion_score, negative_motion_score, patch_size, self.transformer.config.patch_sizes
        )
        height, width, num_frames = self._resolve_video_size(height, width, num_frames, latents)
        if latents is not None:
            self._check_latents_grid(latents, schedule)
        self.check_inputs(
            prompt,
            negative_prompt,
            height,
            width,
            num_frames,
            schedule,
            guidance_renorm,
            prompt_embeds,
            prompt_attention_mask,
            negative_prompt_embeds,
            negative_prompt_attention_mask,
            output_type,
            callback_on_step_end_tensor_inputs,
            latents,
            max_sequence_length,
            num_inference_steps,
            num_videos_per_prompt,
            generator,
        )
        self._guidance_scale = schedule.guidance_scale.at(0.0)
        self._attention_kwargs = attention_kwargs
        self._current_timestep = None
        self._interrupt = False
        device = self._execution_device

        # 1. Text features (positive and negative padded together)
        prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask = (
            self.encode_prompt(
                prompt,
                negative_prompt,
                do_classifier_free_guidance=schedule.uses_guidance,
                num_videos_per_prompt=num_videos_per_prompt,
                device=device,
                prompt_embeds=prompt_embeds,
                prompt_attention_mask=prompt_attention_mask,
                negative_prompt_embeds=negative_prompt_embeds,
                negative_prompt_attention_mask=negative_prompt_attention_mask,
                system_prompt=system_prompt,
                max_sequence_length=max_sequence_length,
            )
        )
        transformer_dtype = self.transformer.dtype
        prompt_embeds = prompt_embeds.to(transformer_dtype)
        if negative_prompt_embeds is not None:
            negative_prompt_embeds = negative_prompt_embeds.to(transformer_dtype)

        # 2. Time grid: sigma = 1 - t, the reference's `steps = num_inference_steps + 1` points before the shift
        timesteps = self.set_lumina_timesteps(num_inference_steps, device)

        # 3. Noise
        latents = self.prepare_latents(
            prompt_embeds.shape[0],
            self.transformer.config.in_channels,
            height,
            width,
            num_frames,
            torch.float32,
            device,
            generator,
            latents,
        )

        # 4. Denoising loop
        text = self._pad_and_join(
            prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask
        )
        self.check_cache_for_run([self._call_kind(schedule.at(1.0 - float(s))) for s in self.scheduler.sigmas[:-1]])
        guider = LuminaGuidance(guidance_scale, guidance_renorm, negative_motion_score)
        # A callback that sets `pipe._guidance_scale` (Diffusers' pattern, e.g. guidance off after some steps)
        # overrides the schedule from the next step on.
        guidance_override = None
        # Inputs were checked once above; the transformer's per-step value checks would sync every step.
        with self.progress_bar(total=len(timesteps)) as progress_bar, skip_value_checks():
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                self._current_timestep = t
                time = lumina_time(self.scheduler, i)
                step = self._step_settings(schedule, time, guidance_override, text, prompt_embeds.shape[0])
                self._guidance_scale = step.guidance_scale
                guider.set_state(i, num_inference_steps, t, time=time, guidance_scale=step.guidance_scale)
                latents = denoise_video_step(
                    self, guider, latents, i, t, step.motion_score, step.patch_size, text, self.attention_kwargs
                )

                if callback_on_step_end is not None:
                    available = {
                        "latents": latents,
                        "prompt_embeds": prompt_embeds,
                        "negative_prompt_embeds": negative_prompt_embeds,
                    }
                    tensors = {name: available[name] for name in callback_on_step_end_tensor_inputs}
                    replaced = callback_on_step_end(self, i, t, tensors) or {}
                    if self._guidance_scale != step.guidance_scale:
                        guidance_override = self._guidance_scale
                    latents = replaced.pop("latents", latents)
                    if "prompt_embeds" in replaced or "negative_prompt_embeds" in replaced:
                        prompt_embeds = replaced.pop("prompt_embeds", prompt_embeds)
                        negative_prompt_embeds = replaced.pop("negative_prompt_embeds", negative_prompt_embeds)
                        text = self._pad_and_join(
                            prompt_embeds.to(transformer_dtype),
                            prompt_attention_mask,
                            None if negative_prompt_embeds is None else negative_prompt_embeds.to(transformer_dtype),
                            negative_prompt_attention_mask,
                        )
                progress_bar.update()
        self._current_timestep = None

        # 5. Decode
        video = decode_video(self.vae, self.video_processor, latents, num_frames, output_type)

        self.maybe_free_model_hooks()
        if not return_dict:
            return (video,)
        return LuminaVideoPipelineOutput(frames=video)
