"""Makes this package's classes reachable the way Diffusers reaches its own.

`DiffusionPipeline.from_pretrained` looks the `_class_name` of `model_index.json` up on the `diffusers` module, and
`diffusers.AutoModel` does the same for a model's `config.json`; components are found through the library name
stored next to them (`diffusers_lumina_video`). Exposing the classes as attributes of `diffusers` is all it takes,
without touching Diffusers' files.
"""

import diffusers


def register_with_diffusers(classes: dict[str, type]) -> None:
    for name, cls in classes.items():
        setattr(diffusers, name, cls)
