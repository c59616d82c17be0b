"""Hub model cards for converted Lumina-Video models and for LoRAs trained on them, rendered from one template.

The cards carry the metadata the Hub indexes (library, task, base model, license, tags), usage code that runs, the
released sampling presets and the paper's reported numbers. The template is a string in this module, so it ships
with the package without any data-file configuration.
"""

import json
import logging
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from .loaders.single_file_utils import is_hub_repo_id
from .pipelines import SAMPLING_PRESETS
from .pipelines.lumina_video.presets import PRESET_FPS


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

MODEL_CARD_TEMPLATE = """---
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

## Usage

```bash
pip install diffusers-lumina-video
```

```python
{{ usage }}
```
{%- if training_settings %}

## Training settings

| Setting | Value |
|---|---|
{%- for name, value in training_settings.items() %}
| `{{ name }}` | `{{ value }}` |
{%- endfor %}
{%- endif %}

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

## Citation

```bibtex
{{ citation }}
```
"""


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
) -> ModelCard:
    r"""
    The card of a converted Lumina-Video folder (a whole pipeline, or the transformer alone).

    Args:
        model_id (`str`): Where the folder is loaded from in the usage code: its Hub id, or a local path.
        base_model (`str`): The Hub id of the original checkpoint, e.g. `"Alpha-VLLM/Lumina-Video-f24R960"`.
        transformer_only (`bool`): The folder holds `LuminaVideoTransformer3DModel` alone.
        num_parameters (`int`, *optional*), dtype (`str`, *optional*): Shown in the summary.
        sampling_preset (`str`): The `SAMPLING_PRESETS` entry the usage code samples with.
    """
    if sampling_preset not in SAMPLING_PRESETS:
        raise ValueError(f"`sampling_preset` must be one of {list(SAMPLING_PRESETS)}, got {sampling_preset!r}.")
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
        tags=[*TAGS, "transformer" if transformer_only else "pipeline"],
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
    """
    if sampling_preset not in SAMPLING_PRESETS:
        raise ValueError(f"`sampling_preset` must be one of {list(SAMPLING_PRESETS)}, got {sampling_preset!r}.")
    if validation_prompt is not None and validation_video is None:
        raise ValueError("`validation_prompt` describes `validation_video`; pass the video as well.")
    prompt = validation_prompt or (f"{trigger_phrase}, {EXAMPLE_PROMPT}" if trigger_phrase else EXAMPLE_PROMPT)
    widget = [{"text": prompt, "output": {"url": validation_video}}] if validation_video else None
    on_hub = is_hub_repo_id(base_model)
    if not on_hub:
        logger.warning(
            f"`base_model` {base_model} is a local folder, so the card's metadata names no base model; train from "
            "(or edit the card to name) the Hub id of the pipeline to link the LoRA to it."
        )
    card_data = ModelCardData(
        license="apache-2.0",
        library_name="diffusers",
        pipeline_tag="text-to-video",
        base_model=base_model if on_hub else None,
        base_model_relation="adapter" if on_hub else None,
        instance_prompt=trigger_phrase,
        widget=widget,
        tags=[*TAGS, "lora", "diffusers-training"],
    )
    source = f"[`{base_model}`](https://huggingface.co/{base_model})" if on_hub else f"`{base_model}`"
    summary = (
        f"A LoRA for the Lumina-Video transformer of {source}, trained with [diffusers-lumina-video]({PACKAGE_URL}). "
        f"Lumina-Video: [paper]({PAPER_URL}), [code]({CODE_URL})."
    )
    usage = _generation_code(
        f'pipe = DiffusionPipeline.from_pretrained("{base_model}", torch_dtype=torch.bfloat16)\n'
        f'pipe.load_lora_weights("{repo_id}")',
        sampling_preset,
        prompt,
    )
    return _render(
        card_data,
        title=f"Lumina-Video LoRA: {repo_id.rstrip('/').split('/')[-1]}",
        summary=summary,
        usage=usage,
        trigger_phrase=trigger_phrase,
        validation_video=validation_video,
        validation_prompt=validation_prompt,
        training_settings=training_settings,
        license_note=None,
    )
