"""What a saved modular Lumina pipeline needs installed, written where a user reading the repo sees it.

Diffusers writes a blocks' `_requirements` into their `modular_config.json`, which it reads only for remote code
(`trust_remote_code=True`). These blocks ship in this package instead, so the pipelines also write the requirements
into `modular_model_index.json`, the file every modular repo has.
"""

import os

from diffusers.modular_pipelines import ModularPipelineBlocks
from diffusers.modular_pipelines.modular_pipeline_utils import _validate_requirements


PACKAGE = "diffusers_lumina_video"
# The distribution (`pip install diffusers-lumina-video`) whose import registers the blocks and pipelines.
REQUIREMENTS = {PACKAGE: ">=0.1.0"}


class LuminaPipelineBlock(ModularPipelineBlocks):
    """A block of this package: it names the package in its requirements."""

    _requirements = REQUIREMENTS


class RequirementsInIndexMixin:
    """Mixed into a `ModularPipeline`: `save_pretrained` also writes the blocks' requirements."""

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        self.register_to_config(requirements=_validate_requirements(self._blocks._requirements))
        super().save_pretrained(save_directory, *args, **kwargs)
