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
