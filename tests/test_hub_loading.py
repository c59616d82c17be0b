"""Folders uploaded to the Hub as they were written load by repo id once the package is imported: a `convert`
output, a trainer's (the shipped `tiny-shapes`), `save_pretrained` outputs and modular repos. Loaded in a fresh
process from a Hub cache laid out as a download, offline."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from diffusers_lumina_video import LuminaV2ABlocks, LuminaVideoSoundBlocks
from diffusers_lumina_video.conversion import convert_lumina_video_checkpoint
from diffusers_lumina_video.showcase.builtin_models import (
    tiny_random_pipeline,
    tiny_random_v2a_pipeline,
    tiny_shapes_path,
)


ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def add_to_hub_cache(cache: Path, repo_id: str, folder: Path) -> None:
    """`folder` as `hf download` leaves a repo in the cache: `models--org--name/{refs/main, snapshots/<commit>}`."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    shutil.copytree(folder, repo / "snapshots" / COMMIT)


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, golden_dir, components_dir) -> Path:
    cache, work = tmp_path_factory.mktemp("hub"), tmp_path_factory.mktemp("folders")
    converted = convert_lumina_video_checkpoint(
        golden_dir,
        work / "converted",
        dtype="fp32",
        text_encoder_path=str(components_dir / "gemma"),
        vae_path=str(components_dir / "cogvideox"),
    )
    video, audio = tiny_random_pipeline(), tiny_random_v2a_pipeline()
    video.save_pretrained(work / "video")
    audio.save_pretrained(work / "v2a")
    v2a_modular = LuminaV2ABlocks().init_pipeline()
    v2a_modular.update_components(**audio.components)
    v2a_modular.save_pretrained(str(work / "v2a-modular"), overwrite_modular_index=True)
    workflow = LuminaVideoSoundBlocks().init_pipeline()
    workflow.update_components(**video.components, **{f"audio_{name}": c for name, c in audio.components.items()})
    workflow.save_pretrained(str(work / "video-sound"), overwrite_modular_index=True)
    for name, folder in [
        ("converted", converted),
        ("tiny-shapes", tiny_shapes_path()),
        ("video", work / "video"),
        ("v2a", work / "v2a"),
        ("v2a-modular", work / "v2a-modular"),
        ("video-sound", work / "video-sound"),
    ]:
        add_to_hub_cache(cache, f"lumina/{name}", folder)
    shutil.rmtree(work)  # nothing may be read from where the folders were written
    return cache


def run_offline(cache: Path, code: str) -> dict:
    """Runs `code` in a fresh process reading the Hub from `cache` only; returns the JSON it prints last."""
    environment = {
        **os.environ,
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(cache.parent / "hf_home"),
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
    }
    process = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=environment, capture_output=True, text=True, cwd=ROOT
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_repos_load_by_repo_id_once_the_package_is_imported(hub_cache):
    results = run_offline(
        hub_cache,
        """
        import json
        import numpy as np, torch
        import diffusers_lumina_video  # registers the classes with Diffusers
        from diffusers import AutoModel, DiffusionPipeline, ModularPipeline

        results = {}
        for name in ("converted", "tiny-shapes", "video", "v2a"):
            pipe = DiffusionPipeline.from_pretrained(f"lumina/{name}")
            model = AutoModel.from_pretrained(f"lumina/{name}", subfolder="transformer")
            results[name] = [type(pipe).__name__, type(model).__name__]

        # A classic text-to-video repo is a modular one too; both give the same frames.
        classic = DiffusionPipeline.from_pretrained("lumina/tiny-shapes")
        modular = ModularPipeline.from_pretrained("lumina/tiny-shapes")
        modular.load_components()
        call = {"height": 64, "width": 64, "num_frames": 8, "num_inference_steps": 3}
        guidance = {"guidance_scale": 4.0, "guidance_renorm": None, "negative_motion_score": -1.0}
        modular.update_components(guider=diffusers_lumina_video.LuminaGuidance(**guidance))
        expected = classic("a red circle", generator=torch.manual_seed(0), motion_score=-1.0, **guidance, **call)
        frames = modular(prompt="a red circle", generator=torch.manual_seed(0), motion_score=-1.0, output="videos", **call)
        results["tiny-shapes-modular"] = [type(modular).__name__, float(np.abs(frames - expected.frames).max())]

        for name in ("v2a-modular", "v2a"):  # a modular repo, and a classic one loaded as modular
            audio = ModularPipeline.from_pretrained(f"lumina/{name}")
            audio.load_components()
            sound = audio(video=np.zeros((25, 32, 32, 3), np.uint8), fps=12.5, num_inference_steps=2, output="audios")
            results[f"{name}-as-modular"] = [type(audio).__name__, list(sound.shape)]

        workflow = ModularPipeline.from_pretrained("lumina/video-sound")
        workflow.load_components()
        output = workflow(
            prompt="a cat", fps=12.5, height=32, width=32, num_frames=25, num_inference_steps=2,
            audio_num_inference_steps=2, output=["videos", "audios"],
        )
        results["video-sound"] = [type(workflow).__name__, list(output["videos"].shape), list(output["audios"].shape)]
        print(json.dumps(results))
        """,
    )
    assert results["converted"] == ["LuminaVideoPipeline", "LuminaVideoTransformer3DModel"]
    assert results["tiny-shapes"] == ["LuminaVideoPipeline", "LuminaVideoTransformer3DModel"]
    assert results["video"] == ["LuminaVideoPipeline", "LuminaVideoTransformer3DModel"]
    assert results["v2a"] == ["LuminaV2APipeline", "LuminaV2ATransformerModel"]
    assert results["tiny-shapes-modular"][0] == "LuminaVideoModularPipeline"
    assert results["tiny-shapes-modular"][1] < 1e-5
    assert results["v2a-modular-as-modular"] == results["v2a-as-modular"] == ["LuminaV2AModularPipeline", [1, 32000]]
    assert results["video-sound"] == ["LuminaVideoSoundModularPipeline", [1, 25, 32, 32, 3], [1, 32000]]


def test_without_the_import_diffusers_names_the_missing_class(hub_cache):
    """What a user who forgot `import diffusers_lumina_video` sees; the docs and cards name the fix."""
    results = run_offline(
        hub_cache,
        """
        import json
        from diffusers import DiffusionPipeline, ModularPipeline

        results = {}
        for name, loader in (("tiny-shapes", DiffusionPipeline), ("video-sound", ModularPipeline)):
            try:
                loader.from_pretrained(f"lumina/{name}")
            except AttributeError as error:
                results[name] = str(error)
        print(json.dumps(results))
        """,
    )
    assert results == {
        "tiny-shapes": "module diffusers has no attribute LuminaVideoPipeline",
        "video-sound": "module diffusers has no attribute LuminaVideoSoundModularPipeline",
    }
    fix = "pip install diffusers-lumina-video"
    assert (
        fix in (ROOT / "docs" / "modular.md").read_text()
        and "module diffusers has no attribute" in (ROOT / "docs" / "modular.md").read_text()
    )
