"""Every setting of a training run (Lumina-Video or Lumina-V2A, LoRA or full) in one dataclass, read from a
YAML/JSON/TOML file and overridden by flags.

Values are checked here, before any model or video is loaded, so a typo costs a second instead of a preparation run.
"""

import dataclasses
import difflib
import json
import os
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from diffusers.optimization import SchedulerType


PatchSize = tuple[int, int, int]

MANIFEST_SUFFIXES = (".csv", ".jsonl", ".json")
MIXED_PRECISIONS = ("no", "fp16", "bf16")
REPORT_TO = ("tensorboard", "none")
MODEL_FAMILIES = ("video", "v2a")
TRAINING_MODES = ("lora", "full")
# Settings that only one mode uses; setting one in the other mode is refused rather than silently ignored.
LORA_ONLY_SETTINGS = ("rank", "lora_alpha", "lora_dropout", "target_modules", "trigger_word")
FULL_ONLY_SETTINGS = ("ema_decay", "freeze_shared_blocks")
# Settings of one model family's data and validation; the other family refuses them.
VIDEO_ONLY_SETTINGS = (
    "motion_column",
    "resolution",
    "max_aspect_ratio",
    "num_frames",
    "fps",
    "max_sequence_length",
    "system_prompt",
    "patch_sizes",
    "freeze_shared_blocks",
    "timestep_shifts",
    "image_timestep_shift",
    "caption_dropout",
    "motion_dropout",
    "image_motion_zero_prob",
    "validation_negative_prompt",
    "validation_height",
    "validation_width",
    "validation_num_frames",
    "validation_motion_score",
)
V2A_ONLY_SETTINGS = (
    "clip_duration",
    "score_column",
    "score_threshold",
    "visual_dropout",
    "text_dropout",
    "sync_dropout",
    "validation_videos",
)
# Pixel sizes are multiples of this: the VAE's 8x times the largest spatial patch (4).
SIZE_MULTIPLE = 32
# Clips are 1 + 8k frames: the VAE makes 1 + 2k latent frames, the first is dropped and 2k splits into temporal
# patches of 1 or 2.
FRAME_MULTIPLE = 8
_PATCH_KEY = re.compile(r"^(\d+)x(\d+)x(\d+)$")


def _option(default: Any, help: str, *, aliases: Sequence[str] = ()) -> Any:
    value = {"default_factory": lambda: list(default)} if isinstance(default, list) else {"default": default}
    return field(**value, metadata={"help": help, "aliases": tuple(aliases)})


def parse_patch_size(value: str | Sequence[int]) -> PatchSize:
    """`"1x2x2"` or `[1, 2, 2]` -> `(1, 2, 2)`; the string form is the transformer's `patch_size_key`."""
    if isinstance(value, str):
        match = _PATCH_KEY.match(value.strip())
        if match is None:
            raise ValueError(f"a patch size is written 'pFxpHxpW' (e.g. '1x2x2'), got {value!r}")
        return tuple(int(p) for p in match.groups())
    if len(value) != 3 or not all(isinstance(p, int) for p in value):
        raise ValueError(f"a patch size is three integers (pF, pH, pW), got {value!r}")
    return tuple(value)


@dataclass
class TrainingConfig:
    """Settings of `lumina-video train-video` and `train-v2a`. Defaults follow the training recipe of the Lumina-Video
    reference; settings marked "V2A:" belong to `model_family: v2a`."""

    # Model
    model_family: str = _option("video", f"The model trained, one of {list(MODEL_FAMILIES)}.")
    training_mode: str = _option(
        "lora", f"One of {list(TRAINING_MODES)}: a LoRA on the frozen transformer, or every transformer weight."
    )
    pretrained_model_name_or_path: str | None = _option(None, "A Lumina-Video pipeline folder or Hub id.")
    revision: str | None = _option(None, "Hub revision of the pipeline.")
    variant: str | None = _option(None, "Weight variant of the pipeline files (e.g. 'fp16').")

    # Data
    dataset: str | None = _option(
        None, "A folder of videos/images with same-name .txt captions, or a .csv/.jsonl/.json manifest."
    )
    path_column: str = _option("path", "Manifest column with the file paths (relative to the manifest's folder).")
    caption_column: str = _option("caption", "Manifest column with the captions.")
    motion_column: str = _option(
        "motion_score", "Manifest column with motion scores; missing or empty values are computed."
    )
    cache_dir: str | None = _option(None, "Where prepared latents and text features go (default: OUTPUT_DIR/cache).")
    resolution: int = _option(256, "Side of the square whose area every aspect-ratio bucket has (multiple of 32).")
    max_aspect_ratio: float = _option(4.0, "Most elongated bucket allowed (long side / short side).")
    num_frames: int = _option(33, "Frames read per video, 1 + a multiple of 8 (shorter clips use fewer).")
    fps: float | None = _option(None, "Frame rate clips are resampled to (default: each video's own).")
    max_sequence_length: int = _option(256, "Longest tokenized caption.")
    system_prompt: str | None = _option(None, "Prefix of every caption (default: the reference's system prompt).")
    clip_duration: float = _option(8.0, "V2A: seconds of every clip (cut from the start of each video).")
    score_column: str | None = _option(
        None, "V2A: manifest column of audio-visual alignment scores (e.g. AV-Align); low-scoring clips are left out."
    )
    score_threshold: float | None = _option(None, "V2A: lowest alignment score kept (default 0.2 with a column).")

    # LoRA
    rank: int = _option(32, "LoRA rank.")
    lora_alpha: float | None = _option(None, "LoRA alpha (default: the rank, i.e. scale 1).")
    lora_dropout: float = _option(0.0, "Dropout on the LoRA branch.")
    target_modules: list[str] | None = _option(
        None, "Module names LoRA wraps (default: attention and feed-forward projections of every block)."
    )

    # Full training
    ema_decay: float | None = _option(
        0.999, "Decay of the moving average of the weights that validation and the saved pipeline use (0: off)."
    )

    # Recipe
    patch_sizes: list[str] | None = _option(
        None, "Patchifications trained each step, as 'pFxpHxpW' (default: all of the transformer's)."
    )
    freeze_shared_blocks: bool = _option(
        False,
        "Full training of the patchifications' own embedders and output heads only, every weight they share "
        "frozen: teaches patchifications a model was not trained on (list them in `patch_sizes`) without changing "
        "what the others generate.",
    )
    timestep_shifts: dict[str, float] | None = _option(
        None,
        "Time shift per patchification for videos, e.g. '1x2x2=2,2x2x2=4,2x4x4=8' (default: the reference's "
        "256px values).",
    )
    image_timestep_shift: float = _option(1.0, "Time shift for images (trained with the finest patch only).")
    vd_weight: float = _option(1.0, "Weight of the direction loss 1 - cos(pred, target); 0 turns it off.")
    caption_dropout: float = _option(0.2, "Probability that a caption becomes the system prompt alone.")
    motion_dropout: float = _option(0.3, "Probability that a video's motion condition is dropped.")
    image_motion_zero_prob: float = _option(0.4, "Probability that an image gets motion score 0 (else none).")
    visual_dropout: float = _option(0.1, "V2A: probability that a clip's visual condition becomes the empty one.")
    text_dropout: float = _option(0.1, "V2A: probability that a clip's text condition becomes the empty one.")
    sync_dropout: float = _option(0.1, "V2A: probability that a clip's sync condition becomes the empty one.")

    # Optimization
    train_batch_size: int = _option(1, "Samples per process in each micro-batch.")
    gradient_accumulation_steps: int = _option(
        1, "Rounds of micro-batches (one per patchification) per optimizer step."
    )
    max_train_steps: int = _option(1000, "Optimizer steps.")
    learning_rate: float = _option(2e-4, "Peak learning rate.")
    lr_scheduler: str = _option("constant", f"One of {[s.value for s in SchedulerType]}.")
    lr_warmup_steps: int = _option(0, "Warm-up steps of the learning-rate schedule.")
    adam_beta1: float = _option(0.9, "AdamW beta1.")
    adam_beta2: float = _option(0.95, "AdamW beta2.")
    adam_weight_decay: float = _option(0.0, "AdamW weight decay.")
    adam_epsilon: float = _option(1e-15, "AdamW epsilon (the reference's 1e-15).")
    max_grad_norm: float = _option(2.0, "Gradient clipping norm.")
    mixed_precision: str | None = _option(None, f"One of {list(MIXED_PRECISIONS)} (default: the accelerate config's).")
    gradient_checkpointing: bool = _option(False, "Recompute block activations in the backward pass.")
    seed: int = _option(0, "Seed of the LoRA init, the data order, the noise and the dropouts.")
    dataloader_num_workers: int = _option(0, "Processes reading cached samples.")

    # Checkpoints and outputs
    output_dir: str | None = _option(
        None, "Where checkpoints, logs, validation videos and the LoRA (or the full pipeline folder) go."
    )
    checkpointing_steps: int = _option(500, "Save a resumable checkpoint every N steps.")
    checkpoints_total_limit: int | None = _option(3, "Keep only the newest K checkpoints (default 3; null: all).")
    resume_from_checkpoint: str | None = _option(
        None, "'latest' or a checkpoint folder to continue from.", aliases=("--resume",)
    )

    # Validation
    validation_prompts: list[str] = _option(
        [], "Prompts rendered to mp4 during and after training (V2A: the captions of `validation_videos`, optional)."
    )
    validation_videos: list[str] = _option([], "V2A: video files whose sound is generated during and after training.")
    validation_negative_prompt: str = _option("", "Negative prompt of the validation videos.")
    validation_steps: int = _option(500, "Render validation videos every N steps (0: only at the end).")
    validation_height: int | None = _option(None, "Validation video height (default: the resolution).")
    validation_width: int | None = _option(None, "Validation video width (default: the resolution).")
    validation_num_frames: int | None = _option(None, "Frames of the validation videos (default: num_frames).")
    validation_num_inference_steps: int = _option(30, "Sampling steps of the validation videos.")
    validation_guidance_scale: float = _option(5.0, "Guidance scale of the validation videos.")
    validation_motion_score: float | None = _option(None, "Motion condition of the validation videos.")
    validation_seed: int | None = _option(None, "Seed of the validation noise (default: seed); fixed for the run.")

    # Logging and Hub
    report_to: str = _option("tensorboard", f"One of {list(REPORT_TO)}; a CSV of the loss is always written.")
    trigger_word: str | None = _option(None, "Word that calls the LoRA's concept, for the model card.")
    push_to_hub: bool = _option(False, "Upload the LoRA (or the pipeline) and its model card to the Hub at the end.")
    hub_model_id: str | None = _option(None, "Hub repository (default: the output folder's name).")
    hub_private: bool = _option(False, "Create the Hub repository as private.")

    def __post_init__(self) -> None:
        self._coerce_fields()

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "TrainingConfig":
        unknown = [key for key in values if key not in cls.field_names()]
        if unknown:
            hints = {key: difflib.get_close_matches(key, cls.field_names(), n=1) for key in unknown}
            described = ", ".join(
                f"{key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "") for key, hint in hints.items()
            )
            raise ValueError(f"Unknown setting(s) in {source}: {described}. Valid settings: {cls.field_names()}.")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> "TrainingConfig":
        """Reads a YAML (.yaml/.yml), JSON (.json) or TOML (.toml) file of settings; `overrides` win."""
        return cls.from_dict({**read_settings_file(path), **overrides}, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def _coerce_fields(self) -> None:
        hints = typing.get_type_hints(type(self))
        for name in self.field_names():
            setattr(self, name, _coerce(name, getattr(self, name), hints[name]))

    @property
    def uses_ema(self) -> bool:
        return self.training_mode == "full" and bool(self.ema_decay)

    def load_base_pipeline(self, pipeline_class: type, dtype: Any = None, **components: Any) -> Any:
        """The base pipeline folder as `pipeline_class`, at the configured revision and variant; `components` replace
        parts of it (a trained transformer) or leave them out (`None`)."""
        return pipeline_class.from_pretrained(
            self.pretrained_model_name_or_path,
            revision=self.revision,
            variant=self.variant,
            torch_dtype=dtype,
            **components,
        )

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else self.output_path / "cache"

    @property
    def parsed_patch_sizes(self) -> list[PatchSize] | None:
        return None if self.patch_sizes is None else [parse_patch_size(p) for p in self.patch_sizes]

    def validate(self) -> "TrainingConfig":
        """Raises one `ValueError` listing every setting that is wrong, with the allowed values."""
        errors = []

        def check(condition: bool, message: str) -> None:
            if not condition:
                errors.append(message)

        check(
            self.model_family in MODEL_FAMILIES,
            f"`model_family` must be one of {list(MODEL_FAMILIES)}, got {self.model_family!r}.",
        )
        check(
            self.training_mode in TRAINING_MODES,
            f"`training_mode` must be one of {list(TRAINING_MODES)}, got {self.training_mode!r}.",
        )
        if self.training_mode in TRAINING_MODES:
            other = "full" if self.training_mode == "lora" else "lora"
            foreign = LORA_ONLY_SETTINGS if self.training_mode == "full" else FULL_ONLY_SETTINGS
            for name in foreign:
                check(
                    getattr(self, name) == _default(name),
                    f"`{name}` only applies to `training_mode` '{other}'; remove it for '{self.training_mode}' "
                    "training.",
                )
        if self.model_family in MODEL_FAMILIES:
            other = "v2a" if self.model_family == "video" else "video"
            foreign = V2A_ONLY_SETTINGS if self.model_family == "video" else VIDEO_ONLY_SETTINGS
            for name in foreign:
                check(
                    getattr(self, name) == _default(name),
                    f"`{name}` only applies to `model_family` '{other}'; remove it for '{self.model_family}' "
                    "training.",
                )
        check(self.clip_duration > 0, f"`clip_duration` must be > 0 seconds, got {self.clip_duration}.")
        check(
            self.score_threshold is None or self.score_column is not None,
            "`score_threshold` needs `score_column` (the manifest column it applies to).",
        )
        for name in ("visual_dropout", "text_dropout", "sync_dropout"):
            value = getattr(self, name)
            check(0.0 <= value <= 1.0, f"`{name}` is a probability in [0, 1], got {value}.")
        if self.model_family == "v2a":
            check(
                not self.validation_prompts or len(self.validation_prompts) == len(self.validation_videos),
                f"`validation_prompts` are the captions of `validation_videos`: give one per video "
                f"({len(self.validation_videos)}) or none, got {len(self.validation_prompts)}.",
            )
            missing = [video for video in self.validation_videos if not Path(video).is_file()]
            check(not missing, f"`validation_videos` {missing} do not exist.")
        check(
            self.ema_decay is None or 0.0 <= self.ema_decay < 1.0,
            f"`ema_decay` must be in [0, 1) (0 or null: no moving average), got {self.ema_decay}.",
        )
        for name in ("pretrained_model_name_or_path", "dataset", "output_dir"):
            check(getattr(self, name) is not None, f"`{name}` is required.")
        if self.output_dir is not None:
            blocking = next((p for p in (Path(self.output_dir), *Path(self.output_dir).parents) if p.is_file()), None)
            check(blocking is None, f"`output_dir` must be a folder, but {blocking} is a file.")
        if self.dataset is not None:
            path = Path(self.dataset)
            check(path.exists(), f"`dataset` {path} does not exist.")
            check(
                not path.is_file() or path.suffix.lower() in MANIFEST_SUFFIXES,
                f"`dataset` must be a folder or a {'/'.join(MANIFEST_SUFFIXES)} manifest, got {path}.",
            )
        check(
            self.resolution > 0 and self.resolution % SIZE_MULTIPLE == 0,
            f"`resolution` must be a positive multiple of {SIZE_MULTIPLE} (8 for the VAE x 4 for the largest "
            f"patch), got {self.resolution}.",
        )
        check(self.max_aspect_ratio >= 1.0, f"`max_aspect_ratio` must be >= 1, got {self.max_aspect_ratio}.")
        check(
            self.num_frames > 1 and (self.num_frames - 1) % FRAME_MULTIPLE == 0,
            f"`num_frames` must be 1 + a multiple of {FRAME_MULTIPLE} (e.g. 9, 17, 33, 97), got {self.num_frames}.",
        )
        check(self.fps is None or self.fps > 0, f"`fps` must be > 0 or unset, got {self.fps}.")
        check(self.max_sequence_length > 0, f"`max_sequence_length` must be > 0, got {self.max_sequence_length}.")

        check(self.rank > 0, f"`rank` must be a positive integer, got {self.rank}.")
        check(self.lora_alpha is None or self.lora_alpha > 0, f"`lora_alpha` must be > 0, got {self.lora_alpha}.")
        check(0.0 <= self.lora_dropout < 1.0, f"`lora_dropout` must be in [0, 1), got {self.lora_dropout}.")
        check(
            self.target_modules is None or len(self.target_modules) > 0,
            "`target_modules` must name at least one module, or be unset for the default.",
        )

        for value in self.patch_sizes or []:
            try:
                parse_patch_size(value)
            except ValueError as error:
                errors.append(f"`patch_sizes`: {error}.")
        repeated = sorted({p for p in self.patch_sizes or [] if self.patch_sizes.count(p) > 1})
        check(not repeated, f"`patch_sizes` lists {repeated} more than once.")
        for key, shift in (self.timestep_shifts or {}).items():
            check(
                _PATCH_KEY.match(key) is not None,
                f"`timestep_shifts` keys are 'pFxpHxpW' (e.g. '1x2x2'), got {key!r}.",
            )
            check(shift > 0, f"`timestep_shifts[{key!r}]` must be > 0, got {shift}.")
        check(self.image_timestep_shift > 0, f"`image_timestep_shift` must be > 0, got {self.image_timestep_shift}.")
        check(self.vd_weight >= 0, f"`vd_weight` must be >= 0, got {self.vd_weight}.")
        for name in ("caption_dropout", "motion_dropout", "image_motion_zero_prob"):
            value = getattr(self, name)
            check(0.0 <= value <= 1.0, f"`{name}` is a probability in [0, 1], got {value}.")

        for name in ("train_batch_size", "gradient_accumulation_steps", "max_train_steps", "checkpointing_steps"):
            check(getattr(self, name) >= 1, f"`{name}` must be >= 1, got {getattr(self, name)}.")
        check(self.learning_rate > 0, f"`learning_rate` must be > 0, got {self.learning_rate}.")
        schedulers = [s.value for s in SchedulerType]
        check(
            self.lr_scheduler in schedulers, f"`lr_scheduler` must be one of {schedulers}, got {self.lr_scheduler!r}."
        )
        check(self.lr_warmup_steps >= 0, f"`lr_warmup_steps` must be >= 0, got {self.lr_warmup_steps}.")
        for name in ("adam_beta1", "adam_beta2"):
            check(0.0 <= getattr(self, name) < 1.0, f"`{name}` must be in [0, 1), got {getattr(self, name)}.")
        check(self.adam_weight_decay >= 0, f"`adam_weight_decay` must be >= 0, got {self.adam_weight_decay}.")
        check(self.adam_epsilon > 0, f"`adam_epsilon` must be > 0, got {self.adam_epsilon}.")
        check(self.max_grad_norm > 0, f"`max_grad_norm` must be > 0, got {self.max_grad_norm}.")
        check(
            self.mixed_precision is None or self.mixed_precision in MIXED_PRECISIONS,
            f"`mixed_precision` must be one of {list(MIXED_PRECISIONS)} or unset, got {self.mixed_precision!r}.",
        )
        check(
            self.dataloader_num_workers >= 0,
            f"`dataloader_num_workers` must be >= 0, got {self.dataloader_num_workers}.",
        )
        check(
            self.checkpoints_total_limit is None or self.checkpoints_total_limit >= 1,
            f"`checkpoints_total_limit` must be >= 1 or null (keep all), got {self.checkpoints_total_limit}.",
        )

        check(self.validation_steps >= 0, f"`validation_steps` must be >= 0, got {self.validation_steps}.")
        for name in ("validation_height", "validation_width"):
            value = getattr(self, name)
            check(
                value is None or (value > 0 and value % SIZE_MULTIPLE == 0),
                f"`{name}` must be a positive multiple of {SIZE_MULTIPLE}, got {value}.",
            )
        frames = self.validation_num_frames
        check(
            frames is None or frames >= 1,
            f"`validation_num_frames` must be >= 1, got {frames}.",
        )
        check(
            self.validation_num_inference_steps >= 1,
            f"`validation_num_inference_steps` must be >= 1, got {self.validation_num_inference_steps}.",
        )
        check(self.report_to in REPORT_TO, f"`report_to` must be one of {list(REPORT_TO)}, got {self.report_to!r}.")

        if errors:
            raise ValueError("Invalid training settings:\n  - " + "\n  - ".join(errors))
        return self


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """The settings of a YAML (.yaml/.yml), JSON (.json) or TOML (.toml) file, unchecked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file {path} does not exist.")
    text = path.read_text()
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        values = yaml.safe_load(text) or {}
    elif suffix == ".json":
        values = json.loads(text)
    elif suffix == ".toml":
        values = _load_toml(text)
    else:
        raise ValueError(f"Config file {path} must end in .yaml, .yml, .json or .toml.")
    if not isinstance(values, dict):
        raise ValueError(f"Config file {path} must hold a mapping of setting names to values.")
    return values


def _default(name: str) -> Any:
    (found,) = [f for f in dataclasses.fields(TrainingConfig) if f.name == name]
    return found.default_factory() if found.default is dataclasses.MISSING else found.default


def _load_toml(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError as error:
            raise ImportError("TOML config files need Python >= 3.11 or `pip install tomli`.") from error
    return tomllib.loads(text)


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Turns flag strings and file values into the field's type, or raises an error naming the field."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        (annotation,) = [a for a in args if a is not type(None)]
        return _coerce(name, value, annotation)
    if origin is list:
        items = value if isinstance(value, (list, tuple)) else [value]
        return [_coerce(name, item, args[0]) for item in items]
    if origin is dict:
        if isinstance(value, str):
            value = _parse_mapping(name, value)
        if not isinstance(value, dict):
            raise ValueError(f"`{name}` must be a mapping, got {value!r}.")
        return {str(k): _coerce(f"{name}[{k!r}]", v, args[1]) for k, v in value.items()}
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ValueError(f"`{name}` must be true or false, got {value!r}.")
    if annotation in (int, float):
        if isinstance(value, bool) or (annotation is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"`{name}` must be {'an integer' if annotation is int else 'a number'}, got {value!r}.")
        try:
            return annotation(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"`{name}` must be {'an integer' if annotation is int else 'a number'}, got {value!r}."
            ) from None
    if annotation is str:
        if isinstance(value, (list, dict)):
            raise ValueError(f"`{name}` must be a string, got {value!r}.")
        return str(value)
    raise TypeError(f"no coercion for `{name}` of type {annotation}")


def _parse_mapping(name: str, text: str) -> dict[str, str]:
    """`'a=1,b=2'` or a JSON object."""
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"`{name}` is written 'key=value,key=value' or as a JSON object, got {text!r}.")
    return {key.strip(): value.strip() for key, value in pairs}


def load_training_config(
    settings_file: str | os.PathLike | None, overrides: dict[str, Any], model_family: str = "video"
) -> TrainingConfig:
    """The settings file (if any) with `overrides` on top, validated; `model_family` is the command's
    (`train-video` or `train-v2a`), which the settings may repeat but not contradict."""
    values = {**(read_settings_file(settings_file) if settings_file else {}), **overrides}
    given = values.setdefault("model_family", model_family)
    if given != model_family:
        raise ValueError(
            f"`model_family` is '{model_family}' for this command, got {given!r}; train '{given}' with "
            f"`lumina-video train-{given}`."
        )
    source = str(settings_file) if settings_file else "command line"
    return TrainingConfig.from_dict(values, source=source).validate()
