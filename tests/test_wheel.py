"""The built wheel, not the working tree, carries the built-in `tiny-shapes` and `tiny-shapes-v2a` models: the
package data cannot be missed."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
LOAD = """
import json, torch
from diffusers import DiffusionPipeline
from diffusers_lumina_video.showcase.builtin_models import tiny_shapes_path, tiny_shapes_v2a_path
pipe = DiffusionPipeline.from_pretrained(tiny_shapes_path(), torch_dtype=torch.float32)
video = pipe("a red circle moving left", num_inference_steps=2).frames[0]
v2a = DiffusionPipeline.from_pretrained(tiny_shapes_v2a_path(), torch_dtype=torch.float32)
sound = v2a(video=video, fps=8, prompt="a red circle moving left", num_inference_steps=2)
seconds = len(sound.audios[0]) / sound.sample_rate
print(json.dumps({"paths": [str(tiny_shapes_path()), str(tiny_shapes_v2a_path())], "shape": list(video.shape), "seconds": seconds}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from a copy of this tree's sources (the build writes beside them; no build isolation: no
    download), installed into a folder of its own."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(
        REPO / "diffusers_lumina_video",
        source / "diffusers_lumina_video",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root), "."]
    subprocess.run(build, cwd=source, check=True, capture_output=True)
    (wheel,) = root.glob("diffusers_lumina_video-*.whl")
    target = root / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    return target


def test_wheel_holds_every_file_of_the_shipped_model(installed):
    shipped = {
        p.relative_to(REPO).as_posix() for p in (REPO / "diffusers_lumina_video/showcase/pretrained").rglob("*")
    }
    pretrained = installed / "diffusers_lumina_video/showcase/pretrained"
    packaged = {p.relative_to(installed).as_posix() for p in pretrained.rglob("*")}
    assert packaged == shipped
    for model in ("tiny-shapes", "tiny-shapes-v2a"):
        assert f"diffusers_lumina_video/showcase/pretrained/{model}/README.md" in packaged


def test_the_installed_wheel_loads_both_built_in_models_from_outside_the_tree(installed, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", LOAD],
        cwd=tmp_path,  # not the repository: its package cannot be imported by accident
        env={"PYTHONPATH": str(installed), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(Path(path).is_relative_to(installed) for path in loaded["paths"])
    shipped = json.loads((Path(loaded["paths"][0]) / "model_index.json").read_text())
    preset = shipped["sampling_presets"][shipped["default_sampling_preset"]]
    assert loaded["shape"] == [
        preset["num_frames"],
        64,
        64,
        3,
    ]  # the model's own settings, read from the installed folder
    assert abs(loaded["seconds"] - preset["num_frames"] / preset["fps"]) < 0.1  # the sound of the whole video
