"""Makes this package's classes reachable the way Diffusers reaches its own, without touching Diffusers' files.

- `DiffusionPipeline.from_pretrained` and `diffusers.AutoModel` look a folder's `_class_name` up on the `diffusers`
  module, so the public classes are exposed there.
- Cache methods (First Block Cache, MagCache, ...) need to know what each transformer block returns.
- `ModularPipelineBlocks.init_pipeline` picks the modular pipeline class of a blocks' `model_name`; modular repos
  name their pipeline, blocks and guider classes, which are looked up on the `diffusers` module too. Listing the
  classic pipelines among Diffusers' pipelines by task (text-to-video, and video-to-audio, a task Diffusers has no
  list for) gives their folders a model name, so `ModularPipeline.from_pretrained` of a classic folder builds the
  modular pipeline of that name.
- Pipeline components (models, feature extractors) are saved as `[library, class]` pairs. Listing this package
  among Diffusers' loadable libraries makes them read `["diffusers_lumina_video", "LuminaVideoTransformer3DModel"]`
  (instead of a private module path) and tells the loader which methods save and load them.
"""

from collections import OrderedDict

import diffusers
from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
from diffusers.modular_pipelines.modular_pipeline import MODULAR_PIPELINE_MAPPING, _create_default_map_fn
from diffusers.pipelines import auto_pipeline, pipeline_loading_utils


LIBRARY_NAME = "diffusers_lumina_video"
_SAVE_LOAD_METHODS = ["save_pretrained", "from_pretrained"]
VIDEO2AUDIO_PIPELINES_MAPPING: OrderedDict[str, type] = OrderedDict()


def register_with_diffusers(
    classes: dict[str, type],
    loadable_components: list[str],
    transformer_blocks: list[type],
    modular_pipelines: dict[str, str],
    text2video_pipelines: dict[str, type],
    video2audio_pipelines: dict[str, type],
) -> None:
    """`modular_pipelines` maps a blocks' `model_name` to the name of its modular pipeline class;
    `text2video_pipelines` and `video2audio_pipelines` map the same model names to classic pipelines."""
    for name, cls in classes.items():
        setattr(diffusers, name, cls)
    for model_name, pipeline_class_name in modular_pipelines.items():
        MODULAR_PIPELINE_MAPPING[model_name] = _create_default_map_fn(pipeline_class_name)
    auto_pipeline.AUTO_TEXT2VIDEO_PIPELINES_MAPPING.update(text2video_pipelines)
    VIDEO2AUDIO_PIPELINES_MAPPING.update(video2audio_pipelines)
    if VIDEO2AUDIO_PIPELINES_MAPPING not in auto_pipeline.SUPPORTED_TASKS_MAPPINGS:
        auto_pipeline.SUPPORTED_TASKS_MAPPINGS.append(VIDEO2AUDIO_PIPELINES_MAPPING)
    for block in transformer_blocks:
        metadata = TransformerBlockMetadata(return_hidden_states_index=0, return_encoder_hidden_states_index=None)
        TransformerBlockRegistry.register(model_class=block, metadata=metadata)
    loadable = {name: list(_SAVE_LOAD_METHODS) for name in loadable_components}
    pipeline_loading_utils.LOADABLE_CLASSES.setdefault(LIBRARY_NAME, {}).update(loadable)
    pipeline_loading_utils.ALL_IMPORTABLE_CLASSES.update(loadable)
