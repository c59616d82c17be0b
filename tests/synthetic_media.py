"""Synthetic training data for the tests: moving textures written as mp4 with imageio, PNG images, a manifest, and
a saved tiny random pipeline."""

import csv
import json
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image

from diffusers_lumina_video.showcase.builtin_models import tiny_random_pipeline


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth multi-scale color noise: enough structure for optical flow and for the VAE."""
    rng = np.random.default_rng(seed)
    layers = []
    for scale in (4, 8, 16):
        small = (rng.random((height // scale + 2, width // scale + 2, 3)) * 255).astype(np.uint8)
        layers.append(np.asarray(Image.fromarray(small).resize((width, height), Image.BICUBIC), dtype=np.float32))
    return np.clip(sum(layers) / len(layers), 0, 255).astype(np.uint8)


def moving_frames(
    num_frames: int, height: int, width: int, velocity: tuple[int, int], seed: int, margin: int = 48
) -> list[np.ndarray]:
    """A window sliding over a larger texture by `velocity` = (dy, dx) pixels per frame: the content moves by
    (-dy, -dx)."""
    canvas = texture(height + 2 * margin, width + 2 * margin, seed)
    dy, dx = velocity
    return [
        canvas[margin + k * dy : margin + k * dy + height, margin + k * dx : margin + k * dx + width]
        for k in range(num_frames)
    ]


def write_clip(path: Path, num_frames: int = 9, size: tuple[int, int] = (64, 64), fps: int = 8, **motion) -> Path:
    frames = moving_frames(num_frames, *size, velocity=motion.get("velocity", (0, 2)), seed=motion.get("seed", 0))
    imageio.mimwrite(path, frames, fps=fps, format="FFMPEG", codec="libx264", quality=9, macro_block_size=16)
    return path


def write_image(path: Path, size: tuple[int, int] = (64, 64), seed: int = 0) -> Path:
    Image.fromarray(texture(*size, seed)).save(path)
    return path


def write_dataset(root: Path, manifest: str = "jsonl") -> Path:
    """3 square clips, 2 wide clips (another bucket) and 2 images, with captions; a manifest (`csv`/`jsonl`) or
    same-name .txt captions (`folder`). Returns the manifest or the folder."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(5):
        size = (64, 64) if i < 3 else (48, 160)
        write_clip(root / f"clip{i}.mp4", size=size, velocity=(i % 2, 1 + i % 3), seed=i)
        rows.append({"path": f"clip{i}.mp4", "caption": f"a video of w{i} w{i + 10}", "motion_score": ""})
    for i in range(2):
        write_image(root / f"image{i}.png", seed=100 + i)
        rows.append({"path": f"image{i}.png", "caption": f"w{20 + i} w3", "motion_score": ""})
    rows[0]["motion_score"] = 4.5
    if manifest == "folder":
        for row in rows:
            (root / row["path"]).with_suffix(".txt").write_text(row["caption"])
        return root
    if manifest == "csv":
        with (root / "data.csv").open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return root / "data.csv"
    (root / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root / "data.jsonl"


def save_tiny_pipeline(folder: Path) -> Path:
    """A saved tiny random pipeline, loaded from disk by the trainer as a real one would be."""
    tiny_random_pipeline(seed=0).save_pretrained(folder)
    return folder
