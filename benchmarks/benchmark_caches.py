"""Diffusers' caches through the pipeline: speed-up against the uncached run and the output's distance to it, and,
with `--model`, prompt following with and without each cache.

- FirstBlockCache and TaylorSeer on the released presets (guidance switching off, patchification switches); the
  pipeline restarts each cache where the kind of transformer call changes.
- MagCache on a single-kind run (its ratios count the steps of one kind of call): the `f16F64R512` schedule with
  its guidance and negative motion held constant. Its calibration run (`calibrate=True`, nothing skipped) comes
  first; the ratios it prints are then used.

Each row is timed in turn with the others, `--repeats` rounds, and the median is reported (a shared machine's load
hits every row alike). Distance: `||cached - uncached|| / ||uncached||` of the output (latents, or frames with
`--model`). Without `--model`, a mid-size random transformer runs on precomputed caption features (speed and
distance only). With `--model PATH` (a pipeline trained on the shape clips, e.g. `tiny-shapes`), the prompts are
shape captions ("a red circle moving left, slowly"), the runs use `tiny-shapes`' sampling settings
(read from its folder: time shift 1, its guidance scale, no motion condition) in single-scale and multi-scale form
instead of the released presets, and each decoded clip's colour, shape and direction are read back
(`showcase/shape_attributes.py`): accuracy is the share of those attributes that match the prompt.

    python benchmarks/benchmark_caches.py
    python benchmarks/benchmark_caches.py --model path/to/tiny-shapes --height 64 --width 64 --num_frames 8 \
        --steps 20 --num_prompts 48
"""

import argparse
import ast
import contextlib
import io
import json
import statistics
import time

import numpy as np
import torch
from benchmark_sampling_cost import MID_MODEL
from diffusers import FirstBlockCacheConfig, FlowMatchEulerDiscreteScheduler, MagCacheConfig, TaylorSeerCacheConfig
from tqdm import tqdm

from diffusers_lumina_video import LuminaVideoPipeline, LuminaVideoTransformer3DModel
from diffusers_lumina_video.pipelines.lumina_video.presets import find_sampling_preset
from diffusers_lumina_video.showcase.builtin_models import TINY_SHAPES_ID, tiny_shapes_path
from diffusers_lumina_video.showcase.shape_attributes import read_clip_attributes
from diffusers_lumina_video.showcase.shapes_benchmark import ATTRIBUTES, MULTI_SCALE, SINGLE_SCALE
from diffusers_lumina_video.showcase.synthetic_shapes import ShapeSpec


PRESETS = ["f24F96R960", "f24F96R960-MultiScale", "f16F64R512", "f16F64R512-MultiScale"]
MAG_CACHE_RUN = ("f16F64R512", {"guidance_scale": 13.0, "negative_motion_score": 2.0})
# A shape model's own settings (what `tiny-shapes` samples with), and the multi-scale schedule of its benchmark.
_SHAPES_INDEX = json.loads((tiny_shapes_path() / "model_index.json").read_text())
_SHAPES_OWN = find_sampling_preset(TINY_SHAPES_ID, _SHAPES_INDEX["sampling_presets"])
SHAPES_SHIFT = _SHAPES_OWN["shift"]
SHAPES_SETTINGS = {
    name: _SHAPES_OWN[name] for name in ("guidance_scale", "guidance_renorm", "motion_score", "negative_motion_score")
}
SHAPES_RUNS = {
    "shapes single-scale": {**SHAPES_SETTINGS, "patch_size": SINGLE_SCALE},
    "shapes multi-scale": {**SHAPES_SETTINGS, "patch_size": MULTI_SCALE},
}
SHAPES_MAG_CACHE_RUN = ("shapes single-scale", {})


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a LuminaVideoPipeline folder; default: a mid-size random transformer")
    parser.add_argument("--presets", nargs="+", choices=PRESETS, default=PRESETS)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--num_frames", type=int, default=9)
    parser.add_argument("--num_prompts", type=int, default=8, help="shape captions per run (with --model)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fbc_threshold", type=float, default=0.2, help="FirstBlockCacheConfig(threshold=...)")
    parser.add_argument("--taylorseer_interval", type=int, default=3, help="TaylorSeerCacheConfig(cache_interval=...)")
    parser.add_argument("--taylorseer_warmup", type=int, default=3, help="... disable_cache_before_step=...")
    parser.add_argument("--mag_threshold", type=float, default=0.02, help="MagCacheConfig(threshold=...)")
    args = parser.parse_args()
    for name in ("steps", "height", "width", "num_frames", "num_prompts", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}.")
    return args


class Workload:
    """One kind of generation (model, prompts, sizes), run with any cache config."""

    def __init__(self, args: argparse.Namespace):
        if args.model:
            self.pipe = LuminaVideoPipeline.from_pretrained(args.model)
            specs = ShapeSpec.all()
            self.specs = [specs[i] for i in np.linspace(0, len(specs) - 1, args.num_prompts).round().astype(int)]
            self.inputs = {"prompt": [spec.caption for spec in self.specs], "output_type": "np"}
        else:
            torch.manual_seed(0)
            transformer = LuminaVideoTransformer3DModel(**MID_MODEL).eval()
            self.pipe = LuminaVideoPipeline(transformer, FlowMatchEulerDiscreteScheduler())
            self.specs = None
            caption = torch.randn(2, 64, MID_MODEL["cap_feat_dim"], generator=torch.Generator().manual_seed(1))
            mask = torch.ones(2, 64, dtype=torch.long)
            mask[1, 32:] = 0
            self.inputs = {
                "prompt_embeds": caption[:1],
                "prompt_attention_mask": mask[:1],
                "negative_prompt_embeds": caption[1:],
                "negative_prompt_attention_mask": mask[1:],
                "output_type": "latent",
            }
        self.pipe.set_progress_bar_config(disable=True)
        self.sizes = {"height": args.height, "width": args.width, "num_frames": args.num_frames}
        self.steps = args.steps

    def run(self, preset: str, overrides: dict, cache) -> torch.Tensor:
        """The output of one generation with the preset's schedule (and its scheduler shift) at this size; a shape
        model's runs keep `tiny-shapes`' settings and time shift."""
        if preset in SHAPES_RUNS:
            self.pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
                self.pipe.scheduler.config, shift=SHAPES_SHIFT
            )
            settings = SHAPES_RUNS[preset]
        else:
            settings = self.pipe.use_sampling_preset(preset)
        call = {**settings, **self.sizes, **overrides, "num_inference_steps": self.steps}
        transformer = self.pipe.transformer
        if transformer.is_cache_enabled:
            transformer.disable_cache()
        if cache is not None:
            transformer.enable_cache(cache)
        output = self.pipe(generator=torch.Generator().manual_seed(0), **self.inputs, **call).frames
        return torch.as_tensor(np.asarray(output)) if not isinstance(output, torch.Tensor) else output

    def accuracy(self, frames: torch.Tensor) -> float:
        """Share of (colour, shape, direction) read back from the clips that match their prompts."""
        hits = []
        for spec, clip in zip(self.specs, frames.numpy(), strict=True):
            read = read_clip_attributes(clip)
            hits.extend(getattr(read, name) == getattr(spec, name) for name in ATTRIBUTES)
        return float(np.mean(hits))


def mag_cache_ratios(workload: Workload, steps: int, run: tuple[str, dict]) -> list[float]:
    """MagCache's calibration run: nothing is skipped; the per-step ratios it prints are read back."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        workload.run(*run, MagCacheConfig(calibrate=True, num_inference_steps=steps))
    return ast.literal_eval(printed.getvalue().split("mag_ratios=...):")[1].strip().splitlines()[0])


def main() -> None:
    args = parse_args()
    workload = Workload(args)
    # (label, cache name, preset, call overrides, cache config or None)
    rows = []
    runs, mag_cache_run = (list(SHAPES_RUNS), SHAPES_MAG_CACHE_RUN) if args.model else (args.presets, MAG_CACHE_RUN)
    for preset in runs:
        taylor = TaylorSeerCacheConfig(
            cache_interval=args.taylorseer_interval, disable_cache_before_step=args.taylorseer_warmup
        )
        rows.append((preset, "none", preset, {}, None))
        rows.append((preset, "FirstBlockCache", preset, {}, FirstBlockCacheConfig(threshold=args.fbc_threshold)))
        rows.append((preset, "TaylorSeer", preset, {}, taylor))
    calibration_start = time.perf_counter()
    ratios = mag_cache_ratios(workload, args.steps, mag_cache_run)
    calibration_seconds = time.perf_counter() - calibration_start
    mag = MagCacheConfig(mag_ratios=ratios, num_inference_steps=args.steps, threshold=args.mag_threshold)
    mag_label = f"{mag_cache_run[0]} (constant guidance)"
    rows.append((mag_label, "none", *mag_cache_run, None))
    rows.append((mag_label, "MagCache", *mag_cache_run, mag))

    outputs, times = {}, {i: [] for i in range(len(rows))}
    for _ in tqdm(range(args.repeats), desc="rounds"):
        for i, (_, _, preset, overrides, cache) in enumerate(rows):
            start = time.perf_counter()
            output = workload.run(preset, overrides, cache)
            times[i].append(time.perf_counter() - start)
            outputs.setdefault(i, output)

    model = args.model or "mid-size random transformer"
    print(
        f"\n{model}, {args.steps} steps, {args.num_frames}x{args.height}x{args.width}, median of {args.repeats} rounds"
    )
    print(
        f"settings: FirstBlockCacheConfig(threshold={args.fbc_threshold}), TaylorSeerCacheConfig(cache_interval="
        f"{args.taylorseer_interval}, disable_cache_before_step={args.taylorseer_warmup}), MagCacheConfig(threshold="
        f"{args.mag_threshold}, mag_ratios from a {calibration_seconds:.1f} s calibration run)"
    )
    header = f"{'run':34s} {'cache':16s} {'s/run':>7} {'speed-up':>9} {'distance':>9}"
    print(header + (f" {'accuracy':>9} {'change':>7}" if args.model else ""))
    reference = {}
    for i, (label, cache_name, *_) in enumerate(rows):
        seconds = statistics.median(times[i])
        if cache_name == "none":
            reference[label] = (seconds, outputs[i])
        base_seconds, base_output = reference[label]
        distance = ((outputs[i].float() - base_output.float()).norm() / base_output.float().norm()).item()
        line = f"{label:34s} {cache_name:16s} {seconds:7.2f} {base_seconds / seconds:8.2f}x {distance:9.4f}"
        if args.model:
            accuracy, base_accuracy = workload.accuracy(outputs[i]), workload.accuracy(base_output)
            line += f" {accuracy:9.1%} {100 * (accuracy - base_accuracy):+7.1f}"
        print(line)


if __name__ == "__main__":
    main()
