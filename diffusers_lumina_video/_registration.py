"""Makes this package's classes reachable the way Diffusers reaches its own, without touching Diffusers' files.

- `DiffusionPipeline.from_pretrained` and `diffusers.AutoModel` look a folder's `_class_name` up on the `diffusers`
  module, so the public classes are exposed there.
- Cache methods (First Block Cache, MagCache, ...) need to know what each transformer block returns.
- Pipeline components (models, feature extractors) are saved as `[library, class]` pairs. Listing this package
  among Diffusers' loadable libraries makes them read `["diffusers_lumina_video", "LuminaVideoTransformer3DModel"]`
  (instead of a private module path) and tells the loader which methods save and load them.
"""

import diffusers
from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
from diffusers.pipelines import pipeline_loading_utils


LIBRARY_NAME = "diffusers_lumina_video"
_SAVE_LOAD_METHODS = ["save_pretrained", "from_pretrained"]


def register_with_diffusers(
    classes: dict[str, type], loadable_components: list[str], transformer_blocks: list[type]
) -> None:
    for name, cls in classes.items():
        setattr(diffusers, name, cls)
    for block in transformer_blocks:
        metadata = TransformerBlockMetadata(return_hidden_states_index=0, return_encoder_hidden_states_index=None)
        TransformerBlockRegistry.register(model_class=block, metadata=metadata)
    loadable = {name: list(_SAVE_LOAD_METHODS) for name in loadable_components}
    pipeline_loading_utils.LOADABLE_CLASSES.setdefault(LIBRARY_NAME, {}).update(loadable)
    pipeline_loading_utils.ALL_IMPORTABLE_CLASSES.update(loadable)
