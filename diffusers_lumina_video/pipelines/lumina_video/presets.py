"""The four released sampling configurations, in this pipeline's terms.

Translation from the reference: `steps` grid points = `num_inference_steps + 1`; `cfg` = `guidance_scale - 1`;
"pFxp" patchification = `(pF, p, p)`; 96 frames = 24 latent frames (64 -> 16). `shift` belongs to the scheduler,
not to the call.
"""

_F24_SETTINGS = {
    "num_inference_steps": 69,
    "shift": 24.0,
    "guidance_scale": [(0.0, 21.0), (0.2, 1.0)],
    "guidance_renorm": 2.0,
    "motion_score": 6.0,
    "negative_motion_score": [(0.0, 2.0), (0.05, 6.0)],
    "height": 704,
    "width": 1248,
    "num_frames": 96,
}
_F16_SETTINGS = {
    "num_inference_steps": 69,
    "shift": 8.0,
    "guidance_scale": [(0.0, 13.0), (0.4, 1.0)],
    "guidance_renorm": None,
    "motion_score": 6.0,
    "negative_motion_score": [(0.0, 2.0), (0.05, 6.0)],
    "height": 384,
    "width": 672,
    "num_frames": 64,
}

SAMPLING_PRESETS: dict[str, dict] = {
    "f24F96R960": {**_F24_SETTINGS, "patch_size": (1, 2, 2)},
    "f24F96R960-MultiScale": {
        **_F24_SETTINGS,
        "patch_size": [(0.0, (2, 4, 4)), (0.03, (2, 2, 2)), (0.125, (1, 2, 2))],
    },
    "f16F64R512": {**_F16_SETTINGS, "patch_size": (1, 2, 2)},
    "f16F64R512-MultiScale": {
        **_F16_SETTINGS,
        "patch_size": [(0.0, (2, 4, 4)), (0.075, (2, 2, 2)), (0.3, (1, 2, 2))],
    },
}

# Frame rate each preset's model was trained at, for writing its videos.
PRESET_FPS = {"f24F96R960": 24, "f24F96R960-MultiScale": 24, "f16F64R512": 16, "f16F64R512-MultiScale": 16}

# What a preset may hold besides call arguments: the scheduler's time shift and the frame rate videos are written at.
PRESET_EXTRAS = ("shift", "fps")
PRESET_CALL_ARGUMENTS = (
    "height",
    "width",
    "num_frames",
    "num_inference_steps",
    "guidance_scale",
    "guidance_renorm",
    "motion_score",
    "negative_motion_score",
    "patch_size",
)
_SCHEDULABLE = ("guidance_scale", "motion_score", "negative_motion_score")


def check_model_presets(presets: dict[str, dict] | None, default: str | None) -> None:
    """A pipeline folder's own named settings (`sampling_presets`) and the name of those a call uses by default
    (`default_sampling_preset`); raises a `ValueError` naming what is wrong."""
    if presets is None:
        if default is not None:
            raise ValueError(f"`default_sampling_preset` {default!r} needs `sampling_presets` to name.")
        return
    if not isinstance(presets, dict) or not all(isinstance(s, dict) for s in presets.values()):
        raise ValueError(f"`sampling_presets` must map names to dicts of settings, got {presets!r}.")
    allowed = set(PRESET_CALL_ARGUMENTS) | set(PRESET_EXTRAS)
    for name, settings in presets.items():
        unknown = sorted(set(settings) - allowed)
        if unknown:
            raise ValueError(
                f"`sampling_presets[{name!r}]` has unknown settings {unknown}; allowed: {sorted(allowed)}."
            )
    if default is not None and default not in presets:
        raise ValueError(f"`default_sampling_preset` {default!r} is not one of `sampling_presets` {sorted(presets)}.")


def find_sampling_preset(name: str, model_presets: dict[str, dict] | None = None) -> dict:
    """The settings of preset `name`: a model's own (`model_presets`, read from its folder) or a released one, with
    the schedules a json file stores as lists given back as pairs and tuples."""
    presets = {**SAMPLING_PRESETS, **(model_presets or {})}
    if name not in presets:
        raise ValueError(f"Unknown sampling preset {name!r}; choose from {sorted(presets)}.")
    settings = dict(presets[name])
    for key in _SCHEDULABLE:
        if isinstance(settings.get(key), (list, tuple)):
            settings[key] = [tuple(pair) for pair in settings[key]]
    patch = settings.get("patch_size")
    if isinstance(patch, (list, tuple)):
        is_schedule = isinstance(patch[0], (list, tuple))
        settings["patch_size"] = [(t, tuple(p)) for t, p in patch] if is_schedule else tuple(patch)
    return settings


def preset_call_arguments(settings: dict) -> dict:
    """A preset's call arguments: all its settings but the shift and the frame rate."""
    return {key: value for key, value in settings.items() if key not in PRESET_EXTRAS}


def preset_fps(name: str, model_presets: dict[str, dict] | None = None, default: str | None = None) -> float:
    """Frame rate to write a video sampled with preset `name` at: the preset's own, else that of the model's default
    settings (the rate it was trained at), else the released model's."""
    model_presets = model_presets or {}
    for settings in (model_presets.get(name, {}), model_presets.get(default, {})):
        if "fps" in settings:
            return settings["fps"]
    return PRESET_FPS[name]
