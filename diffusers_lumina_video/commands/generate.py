"""`lumina-video generate`: one prompt to one mp4."""

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
from diffusers.utils import export_to_video

from ..pipelines.lumina_video.pipeline_lumina_video import check_video_size
from ..pipelines.lumina_video.presets import (
    SAMPLING_PRESETS,
    find_sampling_preset,
    preset_call_arguments,
    preset_fps,
)
from ..showcase.builtin_models import (
    BUILTIN_MODEL_IDS,
    SOUND_MODEL_OF,
    TINY_RANDOM_DEFAULTS,
    TINY_RANDOM_ID,
    TINY_SHAPES_ID,
    builtin_models_of,
    check_builtin_family,
    model_location,
)
from ..utils.atomic import atomic_output_file, restore_folder
from ..utils.component_paths import is_hub_repo_id
from ..utils.output_paths import check_output_file
from .lora_options import add_lora_arguments, apply_loras, checked_loras
from .soundtrack import MIN_DURATION, add_sound_arguments, check_sound_arguments, write_with_soundtrack
from .start_video import add_start_video_arguments, read_start_video, video_to_video


logger = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# The preset of a model without settings of its own.
DEFAULT_PRESET = "f24F96R960"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate", help="Generate a video from a text prompt and write it as mp4.")
    parser.add_argument(
        "--model",
        default=TINY_SHAPES_ID,
        help=f"A converted pipeline folder or Hub id, `{TINY_SHAPES_ID}` (the default: a built-in model trained on "
        f"moving shapes) or `{TINY_RANDOM_ID}` (a tiny random-weight pipeline).",
    )
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--negative-prompt", default=None)
    parser.add_argument("--output", required=True, type=Path, help="The .mp4 file to write.")
    parser.add_argument(
        "--preset",
        help="Named sampling settings: the model's own (its folder's `sampling_presets`, e.g. `tiny-shapes-MultiScale`)"
        f" or a released model's {sorted(SAMPLING_PRESETS)}. Default: the model's own default settings, else "
        f"`{DEFAULT_PRESET}`.",
    )
    parser.add_argument("--height", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument(
        "--num-frames",
        type=int,
        help="Frames of the video (multiples of 8, or 1 + a multiple of 8, waste no compute).",
    )
    parser.add_argument("--steps", type=int, help="Transformer evaluations per guidance branch.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--motion-score", type=float, help="Motion condition of the positive branch.")
    parser.add_argument(
        "--fps", type=int, help="Frame rate of the written video (default: the preset's, or --video's)."
    )
    parser.add_argument("--offload", action="store_true", help="Model CPU offload (needs an accelerator).")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="Default: bf16 on CUDA, fp32 on CPU.")
    add_lora_arguments(parser)
    parser.add_argument(
        "--with-audio",
        metavar="V2A_MODEL",
        nargs="?",
        const=True,
        help="Also generate its soundtrack with this Lumina-V2A pipeline (folder, Hub id, or a built-in one "
        f"{list(builtin_models_of('v2a'))}); without a value, the built-in video model's own sound model "
        f"({', '.join(f'{video} -> {sound}' for video, sound in SOUND_MODEL_OF.items())}).",
    )
    parser.add_argument("--audio-prompt", help="What the sound should be (default: the video's prompt).")
    add_sound_arguments(parser, prefix="audio-")
    add_lora_arguments(parser, prefix="audio-", family="v2a")
    add_start_video_arguments(parser)
    parser.set_defaults(run=run)


def model_presets(model: str) -> tuple[dict[str, dict], str | None]:
    """A model's own named sampling settings and the name of its default ones, read from its folder's
    `model_index.json` before anything loads; none for `tiny-random` or a Hub id. Shared with the demo."""
    if model not in BUILTIN_MODEL_IDS:
        restore_folder(model)
    index = Path(model_location(model)).expanduser() / "model_index.json"
    if model == TINY_RANDOM_ID or not index.is_file():
        return {}, None
    try:
        config = json.loads(index.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{index} is not a json file ({error}).") from None
    return config.get("sampling_presets") or {}, config.get("default_sampling_preset")


def preset_name(model: str, preset: str | None) -> str:
    """The preset a run uses: the one asked for, else the model's own default settings, else `DEFAULT_PRESET`."""
    return preset or model_presets(model)[1] or DEFAULT_PRESET


def sampling_kwargs(model: str, preset: str | None, overrides: dict, preset_flag: str = "--preset") -> dict:
    """The call arguments of the preset (see `preset_name`; `tiny-random`'s small size over them) and the user's
    overrides (those not `None`) on top, shift and frame rate excluded. Shared with `lumina-video demo`."""
    own, _ = model_presets(model)
    name = preset_name(model, preset)
    if name not in own and name not in SAMPLING_PRESETS:
        raise ValueError(f"`{preset_flag}` must be one of {sorted({*own, *SAMPLING_PRESETS})}, got {name!r}.")
    kwargs = preset_call_arguments(find_sampling_preset(name, own))
    if model == TINY_RANDOM_ID:
        kwargs.update(TINY_RANDOM_DEFAULTS)
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return kwargs


def check_sampling_kwargs(kwargs: dict, steps_name: str = "--steps") -> None:
    """Everything about the call arguments that can be checked before loading a model (shared with the demo)."""
    if kwargs["num_inference_steps"] < 1:
        raise ValueError(f"`{steps_name}` must be >= 1, got {kwargs['num_inference_steps']}.")
    patch = kwargs["patch_size"]
    patches = [value for _, value in patch] if isinstance(patch, list) else [patch]
    check_video_size(
        kwargs["height"],
        kwargs["width"],
        kwargs["num_frames"],
        spatial_multiple=8 * max(max(p[1:]) for p in patches),
    )


def _check_args(args: argparse.Namespace, kwargs: dict) -> None:
    """Everything that can be checked before loading a model."""
    if not args.prompt.strip():
        raise ValueError("`--prompt` must not be empty.")
    check_output_file(args.output, "--output", suffixes=(".mp4",))
    check_sampling_kwargs(kwargs)
    if not 0 <= args.seed < 2**63:
        raise ValueError(f"`--seed` must be an integer in [0, 2**63), got {args.seed}.")
    if args.fps is not None and args.fps <= 0:
        raise ValueError(f"`--fps` must be a positive frame rate, got {args.fps}.")
    if args.motion_score is not None and not math.isfinite(args.motion_score):
        raise ValueError(
            f"`--motion-score` must be a finite number (negative = no motion condition), got {args.motion_score}."
        )
    if args.offload and not torch.cuda.is_available():
        raise ValueError("`--offload` moves models between CPU and an accelerator, and no CUDA device is available.")
    check_model_id(args.model, "--model")
    if args.with_audio is not None:
        check_model_id(args.with_audio, "--with-audio", family="v2a")
        check_sound_arguments(args, prefix="audio-", model=args.with_audio)
        fps = args.fps or video_fps(args.model, args.preset)
        seconds = kwargs["num_frames"] / fps
        if seconds < MIN_DURATION:
            raise ValueError(
                f"`--with-audio` needs at least {MIN_DURATION} s of video (one Synchformer segment); "
                f"{kwargs['num_frames']} frames at {fps} fps last {seconds:.3f} s. "
                "Raise `--num-frames` or lower `--fps`."
            )


def sound_model(video_model: str, with_audio: str | bool | None) -> str | None:
    """The V2A model `--with-audio` names; given without a value, the sound model of the built-in `video_model`."""
    if with_audio is not True:
        return with_audio
    if video_model not in SOUND_MODEL_OF:
        pairs = ", ".join(f"{video} -> {sound}" for video, sound in SOUND_MODEL_OF.items())
        raise ValueError(
            f"`--with-audio` without a value picks the sound model of a built-in video model ({pairs}); with "
            f"`--model {video_model}` name one: `--with-audio V2A_MODEL` (a Lumina-V2A pipeline folder or Hub id)."
        )
    return SOUND_MODEL_OF[video_model]


def check_model_id(model: str, flag: str, family: str = "video") -> None:
    """A built-in model of `family` (`video` or `v2a`), a local folder or a Hub id; checked before anything
    loads."""
    check_builtin_family(model, family, flag)
    if model not in BUILTIN_MODEL_IDS:
        restore_folder(model)
    if model not in BUILTIN_MODEL_IDS and not Path(model).is_dir() and not is_hub_repo_id(model):
        raise FileNotFoundError(
            f"`{flag}` {model} is neither a pipeline folder nor a Hub id ('owner/name'), nor one of the built-in "
            f"models {list(builtin_models_of(family))}."
        )


def use_preset(pipe, model: str, preset: str | None) -> None:
    """Sets the scheduler's time shift of the run's preset (see `preset_name`; shared with the demo)."""
    pipe.use_sampling_preset(preset_name(model, preset))


def video_fps(model: str, preset: str | None) -> float:
    """Frame rate to write a video at: the preset's, else the one the model was trained at (see `preset_fps`)."""
    own, default = model_presets(model)
    return preset_fps(preset_name(model, preset), own, default)


def default_dtype(device: str) -> torch.dtype:
    """bf16 on an accelerator, fp32 on a CPU (where half precision is slow or unsupported)."""
    return torch.float32 if device == "cpu" else torch.bfloat16


def load_pipeline(model: str, dtype: torch.dtype, pipeline_class: type | None = None):
    """`tiny-random` built locally (the tiny pipeline of `pipeline_class`, video by default), `tiny-shapes` and
    `tiny-shapes-v2a` from the package, anything else through `DiffusionPipeline.from_pretrained`; a pipeline that
    is not a `pipeline_class` is refused."""
    from ..pipelines import LuminaV2APipeline, LuminaVideoPipeline

    pipeline_class = pipeline_class or LuminaVideoPipeline
    if model == TINY_RANDOM_ID:
        from ..showcase.builtin_models import tiny_random_pipeline, tiny_random_v2a_pipeline

        tiny = {LuminaVideoPipeline: tiny_random_pipeline, LuminaV2APipeline: tiny_random_v2a_pipeline}
        logger.warning(f"`{TINY_RANDOM_ID}` has random weights: its output is noise, not an answer to the prompt.")
        pipe = tiny[pipeline_class]()
        return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(model_location(model), torch_dtype=dtype)
    if not isinstance(pipe, pipeline_class):
        raise ValueError(f"{model} holds a {type(pipe).__name__}, not a {pipeline_class.__name__}.")
    return pipe


def run(args: argparse.Namespace) -> int:
    from ..pipelines import LuminaV2APipeline, LuminaVideoPipeline

    args.with_audio = sound_model(args.model, args.with_audio)
    overrides = {
        "height": args.height,
        "width": args.width,
        "num_frames": args.num_frames,
        "num_inference_steps": args.steps,
        "motion_score": args.motion_score,
    }
    kwargs = sampling_kwargs(args.model, args.preset, overrides)
    start = read_start_video(args.video, args.strength, kwargs, num_frames_given=args.num_frames is not None)
    if start is not None and args.fps is None:
        args.fps = start.clip.fps  # frames are used one to one, so the input's rate keeps its timing
    _check_args(args, kwargs)
    loras = checked_loras(args, "", args.model, LuminaVideoPipeline)
    audio_loras = checked_loras(args, "audio-", args.with_audio, LuminaV2APipeline)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = DTYPES[args.dtype] if args.dtype else default_dtype(device)

    pipe = load_pipeline(args.model, dtype)
    use_preset(pipe, args.model, args.preset)
    if start is not None:
        pipe, kwargs = video_to_video(pipe, start, kwargs)
    apply_loras(pipe, loras, args.fuse_lora)
    if args.offload:
        pipe.enable_model_cpu_offload()
    else:
        pipe.to(device)
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    video = pipe(prompt=args.prompt, negative_prompt=args.negative_prompt, generator=generator, **kwargs).frames[0]

    fps = args.fps or video_fps(args.model, args.preset)
    if args.with_audio is None:
        with atomic_output_file(args.output) as temporary:
            export_to_video(video, str(temporary), fps=fps)
        print(f"Wrote {len(video)} frames to {args.output}")
        return 0

    del pipe  # the video model is done; make room for the sound model
    v2a = load_pipeline(args.with_audio, dtype, LuminaV2APipeline)
    apply_loras(v2a, audio_loras, args.audio_fuse_lora)
    v2a.to(device)
    prompt = args.prompt if args.audio_prompt is None else args.audio_prompt
    seconds = write_with_soundtrack(v2a, np.asarray(video), fps, args.output, args, prompt)
    print(f"Wrote {len(video)} frames and {seconds:.2f} s of sound to {args.output}")
    return 0
