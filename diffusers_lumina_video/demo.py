"""A Gradio page to try a Lumina-Video pipeline: one prompt (and, optionally, a video to start from) in, one video
shown in the page and offered for download; with a Lumina-V2A pipeline, a second button gives that video its
soundtrack.

Everything the page asks for is checked with the same rules as `lumina-video generate` before a model is loaded, and
a bad value comes back as a message in the page (`gr.Error`), never as a stack trace.
"""

import math
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import torch
from diffusers.utils import export_to_video
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .commands.generate import (
    check_sampling_kwargs,
    default_dtype,
    load_pipeline,
    model_presets,
    preset_name,
    sampling_kwargs,
    use_preset,
    video_fps,
)
from .commands.lora_options import check_lora_file, find_lora_file
from .commands.soundtrack import sound_guidance_scale
from .commands.start_video import read_start_video, video_to_video
from .pipelines import LuminaV2APipeline, LuminaVideoPipeline
from .pipelines.lumina_video.pipeline_lumina_video_video2video import DEFAULT_STRENGTH, first_step
from .pipelines.lumina_video.presets import SAMPLING_PRESETS, find_sampling_preset
from .showcase.builtin_models import (
    BUILTIN_MODEL_IDS,
    SOUND_MODEL_OF,
    TINY_SHAPES_ID,
    builtin_models_of,
    check_builtin_family,
)
from .utils.atomic import atomic_output_file, restore_folder
from .utils.media_io import export_to_video_with_audio, read_video


# The model the page opens with.
DEFAULT_MODEL = TINY_SHAPES_ID
# Slider ranges small enough for the built-in model to answer in seconds on a CPU; sizes step by 32, the largest
# spatial multiple any preset needs.
SIZE_RANGE = (32, 512)
FRAMES_RANGE = (1, 97)
STEPS_RANGE = (1, 100)
DEFAULT_AUDIO_STEPS = 25
MOTION_SCORE_RANGE = (-1.0, 20.0)  # negative: no motion condition
LORA_WEIGHT_RANGE = (-2.0, 2.0)


def check_model(model: str, family: str = "video", name: str = "model") -> str:
    """A built-in model of `family` (`video` or `v2a`), a Diffusers pipeline folder or a Hub id; anything else is
    refused before loading. `name` is the box's, for the messages."""
    model = (model or "").strip()
    builtins = list(builtin_models_of(family))
    if not model:
        raise ValueError(f"`{name}` is empty: give one of {builtins}, a pipeline folder or a Hub id.")
    check_builtin_family(model, family, name)
    if model in BUILTIN_MODEL_IDS:
        return model
    folder = Path(model).expanduser()
    restore_folder(folder)
    if folder.is_dir():
        if not (folder / "model_index.json").is_file():
            raise ValueError(
                f"`{name}` folder {model} has no model_index.json: it is not a Diffusers pipeline folder."
            )
        return str(folder)
    try:
        validate_repo_id(model)
    except HFValidationError:
        raise ValueError(
            f"`{name}` {model!r} is neither a built-in model {builtins}, an existing pipeline "
            "folder nor a Hub id (owner/name)."
        ) from None
    return model


def check_lora_weight(weight: float | None) -> float:
    """The slider keeps the page's value in range, but a request can carry anything a client posts."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise ValueError(f"`LoRA weight` must be a finite number, got {weight}.")
    return float(weight)


def _as_int(value: float | int | None, name: str) -> int:
    """Gradio numbers and sliders may arrive as floats; only whole numbers are accepted."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise ValueError(f"`{name}` must be a whole number, got {value}.")
    return int(value)


def _check_seed(seed: float | int | None) -> int:
    seed = _as_int(seed, "seed")
    if seed < 0:
        raise ValueError(f"`seed` must be >= 0, got {seed}.")
    return seed


def check_request(
    prompt: str,
    preset: str,
    motion_score: float,
    steps: float,
    seed: float,
    model: str,
    height: float,
    width: float,
    num_frames: float,
) -> tuple[str, dict]:
    """The checked model id and call arguments of one request; raises `ValueError` naming the bad value."""
    if not (prompt or "").strip():
        raise ValueError("`prompt` is empty: describe the video to generate.")
    if isinstance(motion_score, bool) or not isinstance(motion_score, (int, float)) or not math.isfinite(motion_score):
        raise ValueError(f"`motion_score` must be a finite number, got {motion_score}.")
    _check_seed(seed)
    overrides = {
        "height": _as_int(height, "height"),
        "width": _as_int(width, "width"),
        "num_frames": _as_int(num_frames, "frames"),
        "num_inference_steps": _as_int(steps, "steps"),
        "motion_score": float(motion_score),
    }
    model = check_model(model)
    kwargs = sampling_kwargs(model, preset, overrides, preset_flag="preset")
    check_sampling_kwargs(kwargs, steps_name="steps")
    return model, kwargs


class PipelineCache:
    """Loaded pipelines by model id, so that only the first request for a model pays for loading it."""

    def __init__(self) -> None:
        self._pipelines = {}
        self._loras: dict[int, dict[str, str]] = {}  # per pipeline (by id): adapter name by LoRA
        self._lock = threading.Lock()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def get(self, model: str, pipeline_class: type | None = None, box: str = "model"):
        """The pipeline of `model`, loaded on first use; one not of `pipeline_class` is refused as a message about
        the page's `box`."""
        pipeline_class = pipeline_class or LuminaVideoPipeline
        key = (model, pipeline_class)  # `tiny-random` names a video and a V2A pipeline
        with self._lock:
            if key not in self._pipelines:
                try:
                    pipe = load_pipeline(model, default_dtype(self.device), pipeline_class)
                except ValueError as error:  # a pipeline of another kind
                    raise gr.Error(f"`{box}` {error}") from error
                except Exception as error:  # a missing folder, no network for a Hub id, a broken download...
                    raise gr.Error(f"Could not load model {model!r}: {error}") from error
                self._pipelines[key] = pipe.to(self.device)
            return self._pipelines[key]

    def use_lora(self, pipe, lora: str, weight: float) -> None:
        """Samples `pipe` with only the LoRA `lora` (a file, folder or Hub id) on, at `weight`, or with none for an
        empty `lora`. Each LoRA is loaded once per pipeline and kept (turned off while unused), so going back to it
        costs nothing; `remove_loras` frees them."""
        lora = (lora or "").strip()
        loaded = self._loras.setdefault(id(pipe), {})
        if not lora:
            if loaded:
                pipe.disable_lora()
            return
        if lora not in loaded:
            file = find_lora_file(lora, None, flag="LoRA")
            check_lora_file(file, pipe.transformer, pipe.lora_model_family, f"`LoRA` {lora}")
            name = f"lora_{len(loaded)}"
            pipe.load_lora_weights(str(file), adapter_name=name)
            loaded[lora] = name
        pipe.enable_lora()
        pipe.set_adapters(loaded[lora], weight)

    def remove_loras(self) -> int:
        """Unloads every LoRA from every cached pipeline; returns how many there were."""
        with self._lock:
            count = 0
            for pipe in self._pipelines.values():
                loaded = self._loras.pop(id(pipe), {})
                if loaded:
                    pipe.unload_lora_weights()
                    count += len(loaded)
            return count


def _step_reporter(progress: gr.Progress, total: int, desc: str):
    """A `callback_on_step_end` that moves the page's progress bar."""

    def report_step(pipe, step: int, timestep: torch.Tensor, tensors: dict) -> dict:
        progress((step + 1, total), desc=desc)
        return {}

    return report_step


class DemoApp:
    """The page's behaviour, apart from its layout: check, load (cached), sample with progress, write the mp4."""

    def __init__(self, output_dir: str | Path | None = None) -> None:
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.pipelines = PipelineCache()
        self._count = 0
        self._count_lock = threading.Lock()

    def generate(
        self,
        prompt: str,
        negative_prompt: str,
        preset: str,
        motion_score: float,
        steps: float,
        seed: float,
        model: str,
        height: float,
        width: float,
        num_frames: float,
        lora: str = "",
        lora_weight: float = 1.0,
        start_video: str | None = None,
        strength: float = DEFAULT_STRENGTH,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (how Gradio is asked for a progress tracker)
    ) -> tuple[str, str, str]:
        """Returns the mp4 path twice (player and download) and a status line. With `start_video`, the video is
        the start (video-to-video at `strength`), its frame count at most the page's."""
        try:
            model, kwargs = check_request(prompt, preset, motion_score, steps, seed, model, height, width, num_frames)
            lora_weight = check_lora_weight(lora_weight)
            start_from = read_start_video(
                start_video or None,
                strength if start_video else None,
                kwargs,
                num_frames_given=False,
                names=("start video", "strength", "frames"),
            )
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from None

        progress(0, desc=f"Loading {model}")
        pipe = self.pipelines.get(model, LuminaVideoPipeline)
        use_preset(pipe, model, preset)
        try:
            self.pipelines.use_lora(pipe, lora, lora_weight)
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from None
        steps_run = kwargs["num_inference_steps"]
        if start_from is not None:
            pipe, kwargs = video_to_video(pipe, start_from, kwargs)
            steps_run -= first_step(steps_run, start_from.strength)
        start = time.perf_counter()
        try:
            frames = pipe(
                prompt=prompt,
                negative_prompt=negative_prompt or None,
                generator=torch.Generator(device="cpu").manual_seed(int(seed)),
                callback_on_step_end=_step_reporter(progress, steps_run, "Sampling"),
                **kwargs,
            ).frames[0]
        except ValueError as error:  # what the pipeline's own checks refuse for this model
            raise gr.Error(str(error)) from None
        seconds = time.perf_counter() - start

        path = self._next_path()
        fps = video_fps(model, preset) if start_from is None else start_from.clip.fps
        with atomic_output_file(path) as temporary:
            export_to_video(frames, str(temporary), fps=fps)
        with_lora = f" and LoRA {lora.strip()} at {lora_weight:g}" if (lora or "").strip() else ""
        status = (
            f"{len(frames)} frames of {kwargs['width']}x{kwargs['height']} in {seconds:.1f} s with {model}{with_lora}"
        )
        status += "." if start_from is None else f", from the start video at strength {start_from.strength}."
        return str(path), str(path), status

    def add_sound(
        self,
        video: str | None,
        prompt: str,
        negative_prompt: str,
        steps: float,
        seed: float,
        audio_model: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (how Gradio is asked for a progress tracker)
    ) -> tuple[str, str, str]:
        """The shown video with a soundtrack from the V2A pipeline `audio_model`; same returns as `generate`."""
        try:
            if not video or not Path(video).is_file():
                raise ValueError("There is no video to add sound to: generate one first.")
            steps = _as_int(steps, "audio steps")
            if steps < 1:
                raise ValueError(f"`audio steps` must be >= 1, got {steps}.")
            _check_seed(seed)
            audio_model = check_model(audio_model, family="v2a", name="audio model")
        except ValueError as error:
            raise gr.Error(str(error)) from None

        progress(0, desc=f"Loading {audio_model}")
        pipe = self.pipelines.get(audio_model, LuminaV2APipeline, box="audio model")
        clip = read_video(video)
        start = time.perf_counter()
        try:
            output = pipe(
                video=clip.frames,
                fps=clip.fps,
                prompt=prompt or None,
                negative_prompt=negative_prompt or None,
                num_inference_steps=steps,
                guidance_scale=sound_guidance_scale(audio_model),
                generator=torch.Generator(device="cpu").manual_seed(int(seed)),
                callback_on_step_end=_step_reporter(progress, steps, "Sampling the sound"),
            )
        except ValueError as error:  # what the pipeline's own checks refuse, e.g. a model without its sync encoder
            raise gr.Error(str(error)) from None
        seconds = time.perf_counter() - start

        path = self._next_path(suffix="_sound")
        export_to_video_with_audio(clip.frames, output.audios[0], output.sample_rate, path, clip.fps)
        status = f"{len(output.audios[0]) / output.sample_rate:.2f} s of sound in {seconds:.1f} s with {audio_model}."
        return str(path), str(path), status

    def remove_loras(self) -> tuple[str, str]:
        """Empties the LoRA box and frees every loaded LoRA; returns the box's value and a status line."""
        return "", f"Unloaded every LoRA ({self.pipelines.remove_loras()})."

    def _next_path(self, suffix: str = "") -> Path:
        with self._count_lock:
            self._count += 1
            if self.output_dir is None:  # made on first use, so that a page never used leaves nothing behind
                self.output_dir = Path(tempfile.mkdtemp(prefix="lumina-video-demo-"))
            self.output_dir.mkdir(parents=True, exist_ok=True)
            return self.output_dir / f"video_{self._count:04d}{suffix}.mp4"


def build_demo(
    model: str = DEFAULT_MODEL, audio_model: str | None = None, output_dir: str | Path | None = None
) -> gr.Blocks:
    """The page; `model` and `audio_model` are the initial values of the model boxes (`audio_model` by default the
    built-in video model's own sound model, such as `tiny-shapes-v2a` for `tiny-shapes`)."""
    audio_model = audio_model or SOUND_MODEL_OF.get(model)
    app = DemoApp(output_dir)
    # The page starts from the model's own settings (its folder's default preset), and shows them.
    own, _ = model_presets(model)
    start = preset_name(model, None)
    settings = find_sampling_preset(start, own)
    with gr.Blocks(title="Lumina-Video", analytics_enabled=False) as demo:
        gr.Markdown("# Lumina-Video\nText to video with a Multi-scale Next-DiT.")
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(label="Prompt", lines=2, elem_id="prompt")
                negative_prompt = gr.Textbox(label="Negative prompt", elem_id="negative-prompt")
                model_box = gr.Textbox(
                    value=model,
                    label="Model",
                    info=f"Built in: {', '.join(f'`{m}`' for m in builtin_models_of('video'))}; or a pipeline "
                    "folder or a Hub id.",
                    elem_id="model",
                )
                preset_box = gr.Dropdown(
                    [*sorted(own), *sorted(SAMPLING_PRESETS)],
                    value=start,
                    label="Sampling preset",
                    info=f"Starts from {model}'s own settings ({start})." if start in own else None,
                    elem_id="preset",
                )
                motion_score = gr.Slider(
                    *MOTION_SCORE_RANGE,
                    value=_in_range(settings["motion_score"], MOTION_SCORE_RANGE),
                    step=0.5,
                    label="Motion score (negative: none)",
                    elem_id="motion-score",
                )
                with gr.Row():
                    steps = gr.Slider(
                        *STEPS_RANGE,
                        value=_in_range(settings["num_inference_steps"], STEPS_RANGE),
                        step=1,
                        label="Steps",
                        elem_id="steps",
                    )
                    seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
                with gr.Row():
                    height = gr.Slider(
                        *SIZE_RANGE, value=_in_range(settings["height"], SIZE_RANGE), step=32, label="Height"
                    )
                    width = gr.Slider(
                        *SIZE_RANGE, value=_in_range(settings["width"], SIZE_RANGE), step=32, label="Width"
                    )
                    num_frames = gr.Slider(
                        *FRAMES_RANGE,
                        value=_in_range(settings["num_frames"], FRAMES_RANGE),
                        step=1,  # any count: tiny-shapes makes 16 frames, the released models 96
                        label="Frames",
                        elem_id="frames",
                    )
                with gr.Row():
                    lora_box = gr.Textbox(
                        label="LoRA",
                        info="A .safetensors file, a LoRA folder or a Hub id; empty: none. Loaded once and kept.",
                        elem_id="lora",
                    )
                    lora_weight = gr.Slider(
                        *LORA_WEIGHT_RANGE, value=1.0, step=0.05, label="LoRA weight", elem_id="lora-weight"
                    )
                    remove_lora = gr.Button("Remove LoRA", elem_id="remove-lora")
                with gr.Accordion("Start from a video", open=False):
                    start_video = gr.Video(
                        label="Start video",
                        sources=["upload"],
                        elem_id="start-video",
                    )
                    strength = gr.Slider(
                        0.05,
                        1.0,
                        value=DEFAULT_STRENGTH,
                        step=0.05,
                        label="Strength",
                        info="The share of the steps that run from the noised video: lower keeps more of it.",
                        elem_id="strength",
                    )
                generate = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                video = gr.Video(label="Video", elem_id="video", buttons=["download"])
                download = gr.File(label="Download (mp4)", elem_id="download")
                status = gr.Textbox(label="Status", interactive=False, elem_id="status")
                with gr.Accordion("Sound", open=bool(audio_model)):
                    audio_model_box = gr.Textbox(
                        value=audio_model or "",
                        label="Audio model",
                        info=f"Built in: {', '.join(f'`{m}`' for m in builtin_models_of('v2a'))}; or a Lumina-V2A "
                        "pipeline folder or Hub id.",
                        elem_id="audio-model",
                    )
                    audio_prompt = gr.Textbox(label="Sound prompt", elem_id="audio-prompt")
                    audio_negative_prompt = gr.Textbox(label="Sound negative prompt")
                    audio_steps = gr.Slider(*STEPS_RANGE, value=DEFAULT_AUDIO_STEPS, step=1, label="Audio steps")
                    add_sound = gr.Button("Add sound", elem_id="add-sound")
        generate.click(
            app.generate,
            inputs=[
                prompt,
                negative_prompt,
                preset_box,
                motion_score,
                steps,
                seed,
                model_box,
                height,
                width,
                num_frames,
                lora_box,
                lora_weight,
                start_video,
                strength,
            ],
            outputs=[video, download, status],
        )
        remove_lora.click(app.remove_loras, outputs=[lora_box, status])
        add_sound.click(
            app.add_sound,
            inputs=[video, audio_prompt, audio_negative_prompt, audio_steps, seed, audio_model_box],
            outputs=[video, download, status],
        )
    return demo


def _in_range(value: float, bounds: tuple[float, float]) -> float:
    """A setting as a slider can start on it (a released model's 704 px are beyond the page's sliders)."""
    return min(max(value, bounds[0]), bounds[1])


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, **kwargs):
    """Starts the server locally only: no share link, no server-side rendering (it needs Node), no telemetry."""
    return demo.launch(server_name=host, server_port=port, share=False, ssr_mode=False, **kwargs)
