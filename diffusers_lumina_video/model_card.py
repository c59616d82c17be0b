"""Hub model cards for converted Lumina-Video models and for LoRAs trained on them, rendered from one template.

The cards carry the metadata the Hub indexes (library, task, base model, license, tags), usage code that runs, the
released sampling presets and the paper's reported numbers. The template is a string in this module, so it ships
with the package without any data-file configuration.
"""

import json
import logging
import re
from pathlib import PurePosixPath
from typing import Any

from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.utils import validate_repo_id

from .pipelines import SAMPLING_PRESETS
from .pipelines.lumina_video.presets import PRESET_FPS
from .utils.component_paths import is_hub_repo_id


logger = logging.getLogger(__name__)

PAPER_URL = "https://arxiv.org/abs/2502.06782"
CODE_URL = "https://github.com/Alpha-VLLM/Lumina-Video"
PACKAGE_URL = "https://pypi.org/project/diffusers-lumina-video/"
TAGS = ["lumina-video", "text-to-video", "video-generation", "diffusers-lumina-video"]

CITATION = """@article{liu2025luminavideo,
  title={Lumina-Video: Efficient and Flexible Video Generation with Multi-scale Next-DiT},
  author={Liu, Dongyang and Li, Shicheng and Liu, Yutong and Li, Zhen and Wang, Kai and Li, Xinyue and Qin, Qi and
          Liu, Yufei and Xin, Yi and Li, Zhongyu and Fu, Bin and Si, Chenyang and Cao, Yuewen and He, Conghui and
          Liu, Ziwei and Qiao, Yu and Hou, Qibin and Li, Hongsheng and Gao, Peng},
  journal={arXiv preprint arXiv:2502.06782},
  year={2025}
}"""

# Paper, 2B model: VBench total / quality / semantic scores, and the relative time cost of each patchification.
VBENCH_SCORES = {"Single-scale": (82.99, 83.92, 79.27), "Multi-scale": (82.94, 84.08, 78.39)}
RELATIVE_TIME_COST = {"(1, 2, 2)": 1.00, "(2, 2, 2)": 0.36, "(2, 4, 4)": 0.07, "Multi-scale schedule": 0.34}

EXAMPLE_PROMPT = "A red panda eats bamboo in a misty forest, soft morning light filtering through the leaves."

# Sections both card templates share (Jinja source, joined into each template).
_USAGE_SECTION = """## Usage

```bash
pip install diffusers-lumina-video
```

```python
{{ usage }}
```

Diffusers finds the Lumina classes once the package is imported: an error such as `module diffusers has no attribute
LuminaVideoPipeline` means `pip install diffusers-lumina-video` and `import diffusers_lumina_video` before loading.
"""
_TRAINING_SETTINGS_SECTION = """{%- if training_settings %}

## Training settings

| Setting | Value |
|---|---|
{%- for name, value in training_settings.items() %}
| `{{ name }}` | `{{ value }}` |
{%- endfor %}
{%- endif %}
"""
_CITATION_SECTION = """## Citation

```bibtex
{{ citation }}
```
"""

MODEL_CARD_TEMPLATE = (
    """---
{{ card_data }}
---

# {{ title }}

{{ summary }}
{%- if trigger_phrase %}

Put the trigger phrase `{{ trigger_phrase }}` in your prompts.
{%- endif %}
{%- if validation_video %}

<video src="{{ validation_video }}" controls autoplay loop muted></video>
{%- if validation_prompt %}

*{{ validation_prompt }}*
{%- endif %}
{%- endif %}

"""
    + _USAGE_SECTION
    + _TRAINING_SETTINGS_SECTION
    + """
## Sampling presets

The configurations released with Lumina-Video, available as `SAMPLING_PRESETS` and through
`pipe.use_sampling_preset(name)`, which also sets the scheduler's time shift. Times `t` run from 0 (noise) to 1
(data); a value "from t" takes over at that time.

| Preset | Steps | Shift | Guidance scale | Renorm | Motion / negative motion | Patch size (pF, pH, pW) | Width x height, frames |
|---|---|---|---|---|---|---|---|
{%- for preset in presets %}
| `{{ preset.name }}` | {{ preset.steps }} | {{ preset.shift }} | {{ preset.guidance }} | {{ preset.renorm }} | {{ preset.motion }} | {{ preset.patch_size }} | {{ preset.size }} |
{%- endfor %}

## Reported results

From the Lumina-Video paper (2B model). VBench:

| Inference | Total | Quality | Semantic |
|---|---|---|---|
{%- for name, scores in vbench.items() %}
| {{ name }} | {{ scores[0] }} | {{ scores[1] }} | {{ scores[2] }} |
{%- endfor %}

Relative time cost of each patchification:

| Patch size (pF, pH, pW) | Relative time |
|---|---|
{%- for name, cost in time_cost.items() %}
| {{ name }} | {{ "%.2f" | format(cost) }} |
{%- endfor %}
{%- if license_note %}

## License

{{ license_note }}
{%- endif %}

"""
    + _CITATION_SECTION
)


# A Hub tag: letters, digits and `_.:/+-`, starting with a letter or digit.
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/+-]*$")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".gif")
# These would end the quoted strings of the usage code or the `<video src="...">` attribute the values go into.
_UNQUOTABLE = ('"', "\\", "\n", "\r", "<", ">")


def check_card_location(name: str, value: Any, hub_only: bool = False) -> None:
    """A Hub id (valid by the Hub's rules) or, unless `hub_only`, a local path, as a string the card can quote."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"`{name}` must be a non-empty string (a Hub id such as 'me/lumina-video'), got {value!r}.")
    if any(character in value for character in _UNQUOTABLE):
        raise ValueError(
            f"`{name}` must not contain quotes, backslashes, angle brackets or line breaks, got {value!r}."
        )
    if hub_only or is_hub_repo_id(value):
        try:
            validate_repo_id(value)
        except ValueError as error:
            raise ValueError(f"`{name}` must be a Hub repository id such as 'me/lumina-video': {error}") from None


def _check_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str) or not isinstance(tags, (list, tuple)):
        raise ValueError(f"`tags` must be a list of strings, got {tags!r}.")
    bad = [tag for tag in tags if not isinstance(tag, str) or not _TAG.match(tag)]
    if bad:
        raise ValueError(f"`tags` must be Hub tags (letters, digits and `_.:/+-`, no spaces), got {bad}.")
    return list(tags)


def _check_sample_path(name: str, value: Any) -> None:
    """A video inside the repository: relative, without `..`, with a video suffix, quotable."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"`{name}` must be a path relative to the repository, such as 'samples/step-500.mp4'.")
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValueError(f"`{name}` must be a path inside the repository (relative, no '..'), got {value!r}.")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"`{name}` must be a video file ({', '.join(VIDEO_SUFFIXES)}), got {value!r}.")
    if any(character in value for character in _UNQUOTABLE):
        raise ValueError(f"`{name}` must not contain quotes, angle brackets or line breaks, got {value!r}.")


def _check_text(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"`{name}` must be a string or None, got {value!r}.")


def _describe(value: Any) -> str:
    """A constant, or a time schedule `[(t_start, value), ...]` as "v0, v1 from t=t1, ..."."""
    if isinstance(value, list):
        first, *rest = value
        return ", ".join([str(first[1]), *(f"{v} from t={t}" for t, v in rest)])
    return "off" if value is None else str(value)


def _preset_rows() -> list[dict[str, str]]:
    return [
        {
            "name": name,
            "steps": str(preset["num_inference_steps"]),
            "shift": str(preset["shift"]),
            "guidance": _describe(preset["guidance_scale"]),
            "renorm": _describe(preset["guidance_renorm"]),
            "motion": f"{_describe(preset['motion_score'])} / {_describe(preset['negative_motion_score'])}",
            "patch_size": _describe(preset["patch_size"]),
            "size": f"{preset['width']} x {preset['height']}, {preset['num_frames']}",
        }
        for name, preset in SAMPLING_PRESETS.items()
    ]


def _format_count(count: int) -> str:
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.2f}M"


def _generation_code(load_lines: str, sampling_preset: str, prompt: str) -> str:
    """Usage code that loads a pipeline (`load_lines`), applies a preset and writes a video file."""
    return f"""import torch
from diffusers import DiffusionPipeline
from diffusers.utils import export_to_video

import diffusers_lumina_video  # noqa: F401  (makes the Lumina-Video classes loadable by Diffusers)

{load_lines}
pipe.to("cuda")
pipe.vae.enable_tiling()

call_kwargs = pipe.use_sampling_preset("{sampling_preset}")
video = pipe({json.dumps(prompt, ensure_ascii=False)}, generator=torch.Generator().manual_seed(1000), **call_kwargs).frames[0]
export_to_video(video, "lumina_video.mp4", fps={PRESET_FPS[sampling_preset]})"""


def _render(card_data: ModelCardData, **template_kwargs: Any) -> ModelCard:
    return ModelCard.from_template(
        card_data,
        template_str=MODEL_CARD_TEMPLATE,
        presets=_preset_rows(),
        vbench=VBENCH_SCORES,
        time_cost=RELATIVE_TIME_COST,
        citation=CITATION,
        **template_kwargs,
    )


def create_pipeline_model_card(
    model_id: str,
    base_model: str,
    transformer_only: bool = False,
    num_parameters: int | None = None,
    dtype: str | None = None,
    sampling_preset: str = "f24F96R960",
    tags: list[str] | None = None,
) -> ModelCard:
    r"""
    The card of a converted Lumina-Video folder (a whole pipeline, or the transformer alone).

    Args:
        model_id (`str`): Where the folder is loaded from in the usage code: its Hub id, or a local path.
        base_model (`str`): The Hub id of the original checkpoint, e.g. `"Alpha-VLLM/Lumina-Video-f24R960"`.
        transformer_only (`bool`): The folder holds `LuminaVideoTransformer3DModel` alone.
        num_parameters (`int`, *optional*), dtype (`str`, *optional*): Shown in the summary.
        sampling_preset (`str`): The `SAMPLING_PRESETS` entry the usage code samples with.
        tags (`list[str]`, *optional*): Hub tags added to the package's own.
    """
    if sampling_preset not in SAMPLING_PRESETS:
        raise ValueError(f"`sampling_preset` must be one of {list(SAMPLING_PRESETS)}, got {sampling_preset!r}.")
    check_card_location("model_id", model_id)
    check_card_location("base_model", base_model, hub_only=True)
    extra_tags = _check_tags(tags)
    if num_parameters is not None and (isinstance(num_parameters, bool) or not isinstance(num_parameters, int)):
        raise ValueError(f"`num_parameters` must be an integer or None, got {num_parameters!r}.")
    if num_parameters is not None and num_parameters < 0:
        raise ValueError(f"`num_parameters` must be >= 0, got {num_parameters}.")
    details = ", ".join(
        part
        for part in (
            f"{_format_count(num_parameters)} parameters" if num_parameters else "",
            f"stored in {dtype}" if dtype else "",
        )
        if part
    )
    source = (
        f"Converted from [`{base_model}`](https://huggingface.co/{base_model}) with "
        f"[diffusers-lumina-video]({PACKAGE_URL}). Lumina-Video: [paper]({PAPER_URL}), [code]({CODE_URL})."
    )
    if transformer_only:
        title = "Lumina-Video transformer (Multi-scale Next-DiT) for Diffusers"
        summary = (
            f"The Multi-scale Next-DiT of Lumina-Video as a `LuminaVideoTransformer3DModel`"
            f"{f' ({details})' if details else ''}: one set of transformer blocks shared by several patch sizes, "
            f"so sampling can move from coarse to fine patches. {source}"
        )
        usage = f"""import torch
from diffusers_lumina_video import LuminaVideoTransformer3DModel

transformer = LuminaVideoTransformer3DModel.from_pretrained("{model_id}", torch_dtype=torch.bfloat16)
print(f"{{transformer.num_parameters() / 1e9:.2f}}B parameters, patch sizes {{transformer.config.patch_sizes}}")
# Use it in a converted pipeline: LuminaVideoPipeline.from_pretrained(pipeline_folder, transformer=transformer)"""
        license_note = None
    else:
        title = "Lumina-Video for Diffusers"
        summary = (
            f"Text-to-video generation with Lumina-Video, as a Diffusers `LuminaVideoPipeline`: the Multi-scale "
            f"Next-DiT transformer{f' ({details})' if details else ''}, the Gemma-2-2B text encoder and the "
            f"CogVideoX-2b VAE. Multi-scale sampling starts with coarse patches and finishes with fine ones, at about "
            f"a third of the single-scale cost. {source}"
        )
        usage = _generation_code(
            f'pipe = DiffusionPipeline.from_pretrained("{model_id}", torch_dtype=torch.bfloat16)',
            sampling_preset,
            EXAMPLE_PROMPT,
        )
        license_note = (
            "The transformer and the CogVideoX-2b VAE are released under the Apache 2.0 license. The Gemma-2-2B text "
            "encoder is subject to the [Gemma Terms of Use](https://ai.google.dev/gemma/terms)."
        )
    card_data = ModelCardData(
        license="apache-2.0",
        library_name="diffusers",
        pipeline_tag="text-to-video",
        base_model=base_model,
        tags=[*TAGS, "transformer" if transformer_only else "pipeline", *extra_tags],
    )
    return _render(card_data, title=title, summary=summary, usage=usage, license_note=license_note)


def create_lora_model_card(
    repo_id: str,
    base_model: str,
    training_settings: dict[str, Any] | None = None,
    validation_video: str | None = None,
    validation_prompt: str | None = None,
    trigger_phrase: str | None = None,
    sampling_preset: str = "f24F96R960",
    tags: list[str] | None = None,
) -> ModelCard:
    r"""
    The card of a LoRA trained on a Lumina-Video pipeline.

    Args:
        repo_id (`str`): Where the LoRA is loaded from in the usage code: its Hub id, or a local path.
        base_model (`str`): The Diffusers-format Lumina-Video pipeline the LoRA was trained on (Hub id or path). A
            local path stays in the usage code but not in the metadata, where the Hub expects a model id.
        training_settings (`dict`, *optional*): Shown as a table, e.g. `{"rank": 32, "learning_rate": 2e-4}`.
        validation_video (`str`, *optional*): A video file in the repository (relative path), shown on the card and
            used as the Hub widget's example output.
        validation_prompt (`str`, *optional*): The prompt of `validation_video`; also the usage code's prompt.
        trigger_phrase (`str`, *optional*): The phrase the LoRA was trained to respond to (`instance_prompt`).
        sampling_preset (`str`): The `SAMPLING_PRESETS` entry the usage code samples with.
        tags (`list[str]`, *optional*): Hub tags added to the package's own.
    """
    return _trained_model_card(
        "lora", repo_id, base_model, training_settings, validation_video, validation_prompt, trigger_phrase,
        sampling_preset, tags,
    )  # fmt: skip


def create_full_model_card(
    repo_id: str,
    base_model: str,
    training_settings: dict[str, Any] | None = None,
    validation_video: str | None = None,
    validation_prompt: str | None = None,
    sampling_preset: str = "f24F96R960",
    tags: list[str] | None = None,
) -> ModelCard:
    r"""
    The card of a Lumina-Video pipeline whose transformer was fully trained (fine-tuned or from scratch) from
    `base_model`.

    Args:
        repo_id (`str`): Where the pipeline is loaded from in the usage code: its Hub id, or a local path.
        base_model (`str`): The pipeline training started from (Hub id or path). A local path is not named in the
            metadata, where the Hub expects a model id.
        training_settings (`dict`, *optional*): Shown as a table, e.g. `{"ema_decay": 0.999}`.
        validation_video (`str`, *optional*): A video file in the repository (relative path), shown on the card and
            used as the Hub widget's example output.
        validation_prompt (`str`, *optional*): The prompt of `validation_video`; also the usage code's prompt.
        sampling_preset (`str`): The `SAMPLING_PRESETS` entry the usage code samples with.
        tags (`list[str]`, *optional*): Hub tags added to the package's own.
    """
    return _trained_model_card(
        "full", repo_id, base_model, training_settings, validation_video, validation_prompt, None, sampling_preset,
        tags,
    )  # fmt: skip


def _trained_model_card(
    mode: str,
    repo_id: str,
    base_model: str,
    training_settings: dict[str, Any] | None,
    validation_video: str | None,
    validation_prompt: str | None,
    trigger_phrase: str | None,
    sampling_preset: str,
    tags: list[str] | None,
) -> ModelCard:
    """The card of a model trained with the package: a LoRA (`mode="lora"`) or a whole pipeline (`"full"`)."""
    if sampling_preset not in SAMPLING_PRESETS:
        raise ValueError(f"`sampling_preset` must be one of {list(SAMPLING_PRESETS)}, got {sampling_preset!r}.")
    check_card_location("repo_id", repo_id)
    check_card_location("base_model", base_model)
    extra_tags = _check_tags(tags)
    if validation_video is not None:
        _check_sample_path("validation_video", validation_video)
    _check_text("validation_prompt", validation_prompt)
    _check_text("trigger_phrase", trigger_phrase)
    if training_settings is not None and (
        not isinstance(training_settings, dict) or not all(isinstance(k, str) for k in training_settings)
    ):
        raise ValueError(f"`training_settings` must be a dict with setting names as keys, got {training_settings!r}.")
    if validation_prompt is not None and validation_video is None:
        raise ValueError("`validation_prompt` describes `validation_video`; pass the video as well.")
    prompt = validation_prompt or (f"{trigger_phrase}, {EXAMPLE_PROMPT}" if trigger_phrase else EXAMPLE_PROMPT)
    widget = [{"text": prompt, "output": {"url": validation_video}}] if validation_video else None
    on_hub = is_hub_repo_id(base_model)
    lora = mode == "lora"
    if not on_hub:
        logger.warning(
            f"`base_model` {base_model} is a local folder, so the card's metadata names no base model; train from "
            f"(or edit the card to name) the Hub id of the pipeline to link the {'LoRA' if lora else 'model'} to it."
        )
    card_data = ModelCardData(
        license="apache-2.0",
        library_name="diffusers",
        pipeline_tag="text-to-video",
        base_model=base_model if on_hub else None,
        base_model_relation=("adapter" if lora else "finetune") if on_hub else None,
        instance_prompt=trigger_phrase,
        widget=widget,
        tags=[*TAGS, "lora" if lora else "pipeline", "diffusers-training", *extra_tags],
    )
    source = f"[`{base_model}`](https://huggingface.co/{base_model})" if on_hub else f"`{base_model}`"
    if lora:
        title = f"Lumina-Video LoRA: {repo_id.rstrip('/').split('/')[-1]}"
        what = f"A LoRA for the Lumina-Video transformer of {source}"
        load_lines = (
            f'pipe = DiffusionPipeline.from_pretrained("{base_model}", torch_dtype=torch.bfloat16)\n'
            f'pipe.load_lora_weights("{repo_id}")'
        )
    else:
        title = f"Lumina-Video: {repo_id.rstrip('/').split('/')[-1]}"
        what = f"A Lumina-Video pipeline whose transformer was trained from {source}"
        load_lines = f'pipe = DiffusionPipeline.from_pretrained("{repo_id}", torch_dtype=torch.bfloat16)'
    summary = (
        f"{what}, trained with [diffusers-lumina-video]({PACKAGE_URL}). "
        f"Lumina-Video: [paper]({PAPER_URL}), [code]({CODE_URL})."
    )
    return _render(
        card_data,
        title=title,
        summary=summary,
        usage=_generation_code(load_lines, sampling_preset, prompt),
        trigger_phrase=trigger_phrase,
        validation_video=validation_video,
        validation_prompt=validation_prompt,
        training_settings=training_settings,
        license_note=None,
    )


V2A_MODEL_CARD_TEMPLATE = (
    """---
{{ card_data }}
---

# {{ title }}

{{ summary }}

| Component | Source |
|---|---|
{%- for name, source in components.items() %}
| {{ name }} | `{{ source }}` |
{%- endfor %}
{%- if validation_video %}

<video src="{{ validation_video }}" controls></video>
{%- endif %}

"""
    + _USAGE_SECTION
    + """
The architecture, the conditioning path and how to train: see the package's `docs/v2a.md`.
"""
    + _TRAINING_SETTINGS_SECTION
    + "\n"
    + _CITATION_SECTION
)


def create_v2a_model_card(
    model_id: str,
    components: dict[str, str],
    num_parameters: int | None = None,
    trained: bool = True,
    tags: list[str] | None = None,
    training_settings: dict[str, Any] | None = None,
    lora_base_model: str | None = None,
    validation_video: str | None = None,
) -> ModelCard:
    r"""
    The card of a Lumina-V2A pipeline folder, or of a LoRA trained on one.

    Args:
        model_id (`str`): Where the folder is loaded from in the usage code: its Hub id, or a local path.
        components (`dict[str, str]`): Each component model and where it came from, e.g. `{"CLIP": "openai/..."}`.
        num_parameters (`int`, *optional*): The transformer's parameter count.
        trained (`bool`): False for an assembled pipeline whose transformer has its initial, random weights.
        tags (`list[str]`, *optional*): Hub tags added to the package's own.
        training_settings (`dict`, *optional*): Shown as a table, for a model trained with the package.
        lora_base_model (`str`, *optional*): For a LoRA: the pipeline it was trained on (Hub id or path); the usage
            code loads it and then the LoRA from `model_id`.
        validation_video (`str`, *optional*): An mp4 in the repository (relative path) with generated sound.
    """
    check_card_location("model_id", model_id)
    if lora_base_model is not None:
        check_card_location("lora_base_model", lora_base_model)
    if validation_video is not None:
        _check_sample_path("validation_video", validation_video)
    if training_settings is not None and (
        not isinstance(training_settings, dict) or not all(isinstance(k, str) for k in training_settings)
    ):
        raise ValueError(f"`training_settings` must be a dict with setting names as keys, got {training_settings!r}.")
    extra_tags = _check_tags(tags)
    if not isinstance(components, dict) or not all(isinstance(v, str) for v in components.values()):
        raise ValueError(f"`components` must map component names to their sources, got {components!r}.")
    size = f" ({_format_count(num_parameters)} parameters)" if num_parameters else ""
    if lora_base_model is not None:
        summary = f"A LoRA for the Lumina-V2A transformer of `{lora_base_model}`, trained with diffusers-lumina-video."
    elif trained:
        summary = f"A Lumina-V2A video-to-audio pipeline{size}: a silent video in, a synchronized soundtrack out."
    else:
        summary = (
            f"**The transformer of this pipeline is untrained**{size}: its weights are the initial random ones, so it "
            "makes noise. The folder assembles released component models around it and is the starting point of "
            "training with `lumina-video train-v2a`."
        )
    load_lines = (
        f'pipe = DiffusionPipeline.from_pretrained("{lora_base_model}")\npipe.load_lora_weights("{model_id}")'
        if lora_base_model is not None
        else f'pipe = DiffusionPipeline.from_pretrained("{model_id}")'
    )
    usage = f"""import diffusers_lumina_video  # noqa: F401  (makes the Lumina classes loadable by Diffusers)
from diffusers import DiffusionPipeline
from diffusers_lumina_video.utils.media_io import export_to_video_with_audio, read_video

{load_lines}
output = pipe(video="silent.mp4", prompt="rain on a tin roof")
video = read_video("silent.mp4")
export_to_video_with_audio(video.frames, output.audios[0], output.sample_rate, "with_sound.mp4", video.fps)"""
    card_data = ModelCardData(
        library_name="diffusers",
        pipeline_tag="video-to-audio",
        license="apache-2.0",
        tags=[
            "lumina-v2a",
            "video-to-audio",
            "diffusers-lumina-video",
            *extra_tags,
            *([] if trained else ["untrained"]),
            *(["lora"] if lora_base_model is not None else []),
        ],
    )
    return ModelCard.from_template(
        card_data,
        template_str=V2A_MODEL_CARD_TEMPLATE,
        title="Lumina-V2A" + (" LoRA" if lora_base_model is not None else "" if trained else " (untrained)"),
        summary=summary,
        components=components,
        usage=usage,
        citation=CITATION,
        training_settings=training_settings,
        validation_video=validation_video,
    )
