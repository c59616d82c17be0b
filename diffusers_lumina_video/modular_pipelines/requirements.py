"""What the modular Lumina pipelines add to Diffusers' saving: a repo that names the package it needs and that loads
by repo id once uploaded as saved.

- Diffusers writes a blocks' `_requirements` into their `modular_config.json`, which it reads only for remote code
  (`trust_remote_code=True`). These blocks ship in this package instead, so the pipelines also write the
  requirements into `modular_model_index.json`, the file every modular repo has.
- `ModularPipeline.save_pretrained` records the folder's own path as the source of each saved component, which is
  wrong once the folder is uploaded. The pipelines record "this repo" (no path) instead and, loaded from a repo id or
  a folder, read those components from it.
"""

import json
import os
from pathlib import Path

from diffusers.modular_pipelines import ModularPipelineBlocks
from diffusers.modular_pipelines.modular_pipeline_utils import _validate_requirements

from ..utils.atomic import atomic_output_file


PACKAGE = "diffusers_lumina_video"
# The distribution (`pip install diffusers-lumina-video`) whose import registers the blocks and pipelines.
REQUIREMENTS = {PACKAGE: ">=0.1.0"}
INDEX_NAME = "modular_model_index.json"


class LuminaPipelineBlock(ModularPipelineBlocks):
    """A block of this package: it names the package in its requirements."""

    _requirements = REQUIREMENTS


class LuminaModularPipelineMixin:
    """Mixed into a `ModularPipeline` (first): the saving and loading described above."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for spec in self._component_specs.values():
            in_this_repo = spec.default_creation_method == "from_pretrained" and spec.subfolder
            if in_this_repo and spec.pretrained_model_name_or_path is None:
                spec.pretrained_model_name_or_path = self._pretrained_model_name_or_path

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """Also: every saved component is recorded as saved here (Diffusers' `overwrite_modular_index`, the default
        from 0.43 on), not as the folder or repo it was loaded from."""
        kwargs.setdefault("overwrite_modular_index", True)
        self.register_to_config(requirements=_validate_requirements(self._blocks._requirements))
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("push_to_hub"):
            return  # Diffusers recorded the repo id
        index_path = Path(save_directory) / INDEX_NAME
        index = json.loads(index_path.read_text())
        for value in index.values():
            if isinstance(value, list) and len(value) == 3 and isinstance(value[2], dict):
                if value[2].get("pretrained_model_name_or_path") == str(save_directory):
                    value[2]["pretrained_model_name_or_path"] = None
        with atomic_output_file(index_path) as temporary:
            temporary.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
