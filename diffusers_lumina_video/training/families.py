"""What the trainer needs to know about each model it trains: its transformer and pipeline classes, its data (how it
is checked, prepared and cut into micro-batches) and its validation outputs.

`VideoFamily` is Lumina-Video (captioned clips and images, one micro-batch per patchification); `V2AFamily` is
Lumina-V2A (clips with sound, one stream of fixed-duration clips, visual/text/sync condition dropout). The trainer
(`trainer.py`) owns everything else: modes, optimizer, moving average, checkpoints, logs and outputs.
"""

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from accelerate import Accelerator
from diffusers.utils import export_to_video
from torch.utils.data import Dataset

from ..models import LuminaV2ATransformerModel, LuminaVideoTransformer3DModel
from ..models.transformers.transformer_lumina_video import patch_size_key
from ..pipelines import LuminaV2APipeline, LuminaVideoPipeline
from ..utils.atomic import atomic_output_file
from ..utils.media_io import export_to_video_with_audio, read_video, write_wav
from .av_batches import AVBatchDataset, PreparedAVDataset
from .av_data import load_av_items
from .av_prepare import av_cache_is_current, prepare_av_dataset
from .batches import MicroBatchDataset, MicroBatchPlanner, PreparedDataset
from .config import PatchSize, TrainingConfig, parse_patch_size
from .prepare import cache_is_current, load_dataset_items, prepare_dataset, resolved_system_prompt
from .recipe import REFERENCE_TIMESTEP_SHIFTS


logger = logging.getLogger(__name__)

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def encoder_dtype(device: torch.device, mixed_precision: str | None) -> torch.dtype:
    """The frozen encoders run in the training precision on GPUs, in float32 elsewhere (half precision is slow on
    CPUs)."""
    return DTYPES.get(mixed_precision, torch.float32) if device.type == "cuda" else torch.float32


def patch_marker(patch_size: PatchSize) -> str:
    """The name part, e.g. ".1x2x2.", of the modules only one patchification uses (its embedder and output head)."""
    return f".{patch_size_key(patch_size)}."


def has_marker(name: str, markers: list[str]) -> bool:
    """Whether the module or parameter `name` holds one of the patchification `markers`."""
    return any(marker in f".{name}." for marker in markers)


def not_prepared_error(cache: Path, command: str) -> RuntimeError:
    return RuntimeError(
        f"The prepared data in {cache} is missing or out of date. Prepare it in one process first: "
        f"`lumina-video {command} --config ... --prepare_only`."
    )


class VideoFamily:
    """Lumina-Video: captioned videos and images, every patchification of the transformer trained each step."""

    transformer_class = LuminaVideoTransformer3DModel
    pipeline_class = LuminaVideoPipeline
    command = "train-video"

    def __init__(self, config: TrainingConfig):
        self.config = config

    def check_transformer(self, transformer: nn.Module) -> list[str]:
        """Checks patch sizes and time shifts against a weightless transformer; returns the name parts of the
        modules that only one patchification uses (its embedder and output head)."""
        config = self.config
        available = [tuple(p) for p in transformer.config.patch_sizes]
        patch_sizes = config.parsed_patch_sizes or available
        unknown = [p for p in patch_sizes if p not in available]
        if unknown:
            raise ValueError(
                f"`patch_sizes` {[patch_size_key(p) for p in unknown]} are not patchifications of this transformer; "
                f"it has {[patch_size_key(p) for p in available]}."
            )
        configured = {parse_patch_size(key): shift for key, shift in (config.timestep_shifts or {}).items()}
        shifts = {**REFERENCE_TIMESTEP_SHIFTS, **configured}
        missing = [patch_size_key(p) for p in patch_sizes if p not in shifts]
        if missing:
            raise ValueError(f"`timestep_shifts` needs a value for {missing} (e.g. '{missing[0]}=2').")
        self.patch_sizes: list[PatchSize] = patch_sizes
        self.video_shifts: dict[PatchSize, float] = {p: shifts[p] for p in patch_sizes}
        self.patch_markers = {p: patch_marker(p) for p in available}
        return list(self.patch_markers.values()) if len(available) > 1 else []

    def load_items(self) -> list:
        return load_dataset_items(self.config)

    def prepare(self, device: torch.device, dtype: torch.dtype, items: list | None = None) -> Path:
        """Writes the cache unless it is up to date; returns its folder."""
        return prepare_dataset(self.config, device, dtype, items)

    def setup_data(self, accelerator: Accelerator, items: list) -> None:
        config = self.config
        if accelerator.num_processes > 1 and not cache_is_current(config, items):
            raise not_prepared_error(config.cache_path, self.command)
        self.prepare(accelerator.device, encoder_dtype(accelerator.device, accelerator.mixed_precision), items)
        self.data = PreparedDataset(config.cache_path)
        streams = self.data.build_streams(self.patch_sizes, self.video_shifts, config.image_timestep_shift)
        trained = {s.patch_size for s in streams}
        for patch in self.patch_sizes:
            if patch not in trained:
                logger.warning(f"No sample can train patchification {patch_size_key(patch)}; it is skipped.")
        # Name parts of the modules no micro-batch runs: the trainer freezes them.
        self.untrained_markers = [marker for p, marker in self.patch_markers.items() if p not in trained]
        self.planner = MicroBatchPlanner(
            streams,
            global_batch_size=config.train_batch_size * accelerator.num_processes,
            rounds=config.gradient_accumulation_steps,
            seed=config.seed,
        )
        self.loss_keys = [s.key for s in streams]
        self.global_batch_size = self.planner.global_batch_size
        self.micro_batches_per_step = self.planner.micro_batches_per_step

    def batch_dataset(self, process_index: int) -> Dataset:
        config = self.config
        return MicroBatchDataset(
            self.data,
            self.planner,
            process_index,
            config.train_batch_size,
            config.caption_dropout,
            config.motion_dropout,
            config.image_motion_zero_prob,
        )

    def check_compatible(self, transformer: nn.Module) -> None:
        self.data.check_compatible(transformer.config.in_channels, transformer.config.cap_feat_dim)

    def card_settings(self) -> dict[str, Any]:
        config = self.config
        return {
            "patch_sizes": [patch_size_key(p) for p in self.patch_sizes],
            "timestep_shifts": {patch_size_key(p): s for p, s in self.video_shifts.items()},
            "image_timestep_shift": config.image_timestep_shift,
            "caption_dropout": config.caption_dropout,
            "motion_dropout": config.motion_dropout,
            "resolution": config.resolution,
            "num_frames": config.num_frames,
            "fps": config.fps,
        }

    def try_command(self, model: str, lora: Path | None) -> list[str]:
        """The `lumina-video generate` command that samples the result (`model`, with `lora` on it) as validation
        does, for the run's last log line."""
        config = self.config
        prompt = (config.validation_prompts or [config.trigger_word or "a prompt"])[0]
        return [
            *("lumina-video", "generate", "--model", model, *(["--lora", str(lora)] if lora else [])),
            *("--prompt", prompt, "--height", str(config.validation_height or config.resolution)),
            *("--width", str(config.validation_width or config.resolution)),
            *("--num-frames", str(config.validation_num_frames or config.num_frames)),
            *("--steps", str(config.validation_num_inference_steps), "--output", str(config.output_path / "try.mp4")),
        ]

    def prepare_validation(self, accelerator: Accelerator, dtype: torch.dtype) -> bool:
        """Text features of the validation prompts, computed once; the text encoder is freed right after. Returns
        whether there is anything to validate."""
        config = self.config
        self.validation_embeds = None
        if not config.validation_prompts:
            return False
        pipe = config.load_base_pipeline(LuminaVideoPipeline, dtype, transformer=None, vae=None).to(accelerator.device)
        with torch.no_grad():
            embeds = pipe.encode_prompt(
                config.validation_prompts,
                negative_prompt=[config.validation_negative_prompt] * len(config.validation_prompts),
                do_classifier_free_guidance=True,
                system_prompt=resolved_system_prompt(config),
                max_sequence_length=config.max_sequence_length,
            )
        self.validation_embeds = [
            tuple(t[i : i + 1].cpu() for t in embeds) for i in range(len(config.validation_prompts))
        ]
        return True

    def render_validation(
        self, transformer: nn.Module, device: torch.device, dtype: torch.dtype, step: int, folder: Path, seed: int
    ) -> list[Path]:
        """One mp4 per validation prompt; the caller fixes the random streams and the weights."""
        config = self.config
        pipe = config.load_base_pipeline(
            LuminaVideoPipeline, dtype, transformer=transformer, text_encoder=None, tokenizer=None
        ).to(device)
        pipe.set_progress_bar_config(disable=True)
        call_kwargs = {
            "height": config.validation_height or config.resolution,
            "width": config.validation_width or config.resolution,
            "num_frames": config.validation_num_frames or config.num_frames,
            "num_inference_steps": config.validation_num_inference_steps,
            "guidance_scale": config.validation_guidance_scale,
            "output_type": "np",
        }
        if config.validation_motion_score is not None:
            call_kwargs["motion_score"] = config.validation_motion_score
        paths = []
        for index, (embeds, mask, negative_embeds, negative_mask) in enumerate(self.validation_embeds):
            video = pipe(
                prompt_embeds=embeds.to(device),
                prompt_attention_mask=mask.to(device),
                negative_prompt_embeds=negative_embeds.to(device),
                negative_prompt_attention_mask=negative_mask.to(device),
                generator=torch.Generator(device).manual_seed(seed),
                **call_kwargs,
            ).frames[0]
            path = folder / f"step-{step:06d}-{index}.mp4"
            with atomic_output_file(path) as staging:
                export_to_video(list(video), str(staging), fps=round(config.fps or 16))
            paths.append(path)
        return paths


class V2AFamily:
    """Lumina-V2A: video files with their sound, cut to `clip_duration`; the audio latents are trained with the
    visual, text and sync conditions, each dropped to its learned empty embedding with its own probability."""

    transformer_class = LuminaV2ATransformerModel
    pipeline_class = LuminaV2APipeline
    command = "train-v2a"

    def __init__(self, config: TrainingConfig):
        self.config = config
        self.loss_keys: list[str] = []
        self.untrained_markers: list[str] = []  # one patchification: every module runs in every micro-batch

    def check_transformer(self, transformer: nn.Module) -> list[str]:
        return []  # one patchification: every module runs in every micro-batch

    def load_items(self) -> list:
        """The clips to train on; those left out (score below the threshold, missing files) are reported."""
        config = self.config
        items, skipped = load_av_items(
            config.dataset,
            path_column=config.path_column,
            caption_column=config.caption_column,
            score_column=config.score_column,
            score_threshold=config.score_threshold,
        )
        for name, reason in skipped.items():
            logger.warning(f"Clip {name} is left out: {reason}.")
        if not items:
            raise ValueError(f"`dataset` {config.dataset} has no clip to train on ({len(skipped)} left out).")
        return items

    def prepare(self, device: torch.device, dtype: torch.dtype, items: list | None = None) -> Path:
        config = self.config
        prepare_av_dataset(
            config.pretrained_model_name_or_path,
            self.load_items() if items is None else items,
            config.cache_path,
            clip_duration=config.clip_duration,
            device=device,
            dtype=dtype,
            revision=config.revision,
            variant=config.variant,
        )
        return config.cache_path

    def setup_data(self, accelerator: Accelerator, items: list) -> None:
        config = self.config
        current = av_cache_is_current(
            config.cache_path,
            items,
            config.clip_duration,
            config.pretrained_model_name_or_path,
            revision=config.revision,
            variant=config.variant,
        )
        if accelerator.num_processes > 1 and not current:
            raise not_prepared_error(config.cache_path, self.command)
        # Returns at once when up to date; clips that cannot be prepared are reported by name and left out.
        self.prepare(accelerator.device, encoder_dtype(accelerator.device, accelerator.mixed_precision), items)
        self.data = PreparedAVDataset(config.cache_path)
        self.global_batch_size = config.train_batch_size * accelerator.num_processes
        self.micro_batches_per_step = config.gradient_accumulation_steps

    def batch_dataset(self, process_index: int) -> Dataset:
        config = self.config
        return AVBatchDataset(
            self.data,
            process_index,
            self.global_batch_size // config.train_batch_size,
            config.train_batch_size,
            config.seed,
            config.visual_dropout,
            config.text_dropout,
            config.sync_dropout,
        )

    def check_compatible(self, transformer: nn.Module) -> None:
        self.data.check_compatible(transformer.config)

    def card_settings(self) -> dict[str, Any]:
        config = self.config
        names = ("clip_duration", "score_column", "score_threshold", "visual_dropout", "text_dropout", "sync_dropout")
        return {name: getattr(config, name) for name in names}

    def try_command(self, model: str, lora: Path | None) -> list[str]:
        """The `lumina-video add-audio` command that gives the first validation video (or `VIDEO.mp4`) its sound
        from the result (`model`, with `lora` on it), for the run's last log line."""
        config = self.config
        video = (config.validation_videos or ["VIDEO.mp4"])[0]
        prompt = (config.validation_prompts or [""])[0]
        return [
            *("lumina-video", "add-audio", str(video), "--model", model, *(["--lora", str(lora)] if lora else [])),
            *("--prompt", prompt, "--duration", str(config.clip_duration)),
            *("--steps", str(config.validation_num_inference_steps), "--output", str(config.output_path / "try.mp4")),
        ]

    def prepare_validation(self, accelerator: Accelerator, dtype: torch.dtype) -> bool:
        return bool(self.config.validation_videos)

    def render_validation(
        self, transformer: nn.Module, device: torch.device, dtype: torch.dtype, step: int, folder: Path, seed: int
    ) -> list[Path]:
        """For each validation video, its generated sound as a wav and as an mp4 with the clip's own frames; the
        caller fixes the random streams and the weights."""
        config = self.config
        pipe = config.load_base_pipeline(LuminaV2APipeline, dtype, transformer=transformer).to(device)
        pipe.set_progress_bar_config(disable=True)
        prompts = config.validation_prompts or [""] * len(config.validation_videos)
        paths = []
        for index, (video, prompt) in enumerate(zip(config.validation_videos, prompts, strict=True)):
            output = pipe(
                video=video,
                prompt=prompt,
                duration=config.clip_duration,
                num_inference_steps=config.validation_num_inference_steps,
                guidance_scale=config.validation_guidance_scale,
                generator=torch.Generator(device).manual_seed(seed),
            )
            audio = np.asarray(output.audios[0], dtype=np.float32)
            clip = read_video(video)
            frames = clip.frames[clip.timestamps < config.clip_duration]
            wav, mp4 = folder / f"step-{step:06d}-{index}.wav", folder / f"step-{step:06d}-{index}.mp4"
            write_wav(audio, wav, output.sample_rate)
            export_to_video_with_audio(frames, audio, output.sample_rate, mp4, clip.fps)
            paths += [mp4, wav]
        return paths


def model_family(config: TrainingConfig) -> VideoFamily | V2AFamily:
    return {"video": VideoFamily, "v2a": V2AFamily}[config.model_family](config)
