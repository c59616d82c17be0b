"""Measures a `tiny-shapes` pipeline against an untrained one and writes the table, plots and a strip of frames.

    python -m diffusers_lumina_video.showcase.run_shapes_benchmark --model PIPELINE --untrained PIPELINE --output DIR

Held-out prompts: new seeds for captions seen in training, and the colour x shape x direction combinations never
trained on (also without their speed word, as "a red circle moving left"), of the clip format the model learnt
(`--clip-format`; v2 has bouncing shapes as well). Each is sampled with the model's own single-scale and coarse-to-fine
settings (its folder's `tiny-shapes` and `tiny-shapes-MultiScale`). Results go to `DIR/results.json`,
`DIR/motion.png`, `DIR/strip.png` and `DIR/preview.gif` (the strip's clips, animated).
"""

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..pipelines.lumina_video.presets import find_sampling_preset, preset_fps
from ..pipelines.lumina_video.schedules import PatchSize, TimeSchedule
from ..utils.atomic import atomic_output_file
from .builtin_models import video_pipeline_folder
from .shapes_benchmark import (
    CHANCE,
    MULTI_SCALE,
    SINGLE_SCALE,
    AdherenceResult,
    animated_preview,
    frame_strip,
    generate_clips,
    measure_adherence,
    motion_sweep,
    score_clips,
    sweep_correlation,
)
from .stages import run_script
from .synthetic_shapes import (
    BACKGROUNDS,
    BOUNCING,
    CLIP_FORMATS,
    TINY_SHAPES_CLIP_FORMAT,
    ShapeSpec,
    render_shape,
    split_specs,
)


logger = logging.getLogger(__name__)

STRIP_PROMPTS = (
    ShapeSpec("blue", "square", "right", "slowly"),
    ShapeSpec("red", "circle", "left", "quickly"),
    ShapeSpec("yellow", "triangle", "down", "slowly"),
    ShapeSpec("green", "circle", "up", "quickly"),
)
BOUNCING_STRIP_PROMPT = ShapeSpec("red", "square", BOUNCING, "slowly")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m diffusers_lumina_video.showcase.run_shapes_benchmark")
    parser.add_argument("--model", required=True, help="The trained pipeline folder, or `tiny-shapes`.")
    parser.add_argument("--untrained", help="The same pipeline before training (a folder), as a baseline.")
    parser.add_argument("--output", type=Path, required=True, help="Folder for results.json and the figures.")
    parser.add_argument(
        "--clip-format",
        choices=list(CLIP_FORMATS),
        default=TINY_SHAPES_CLIP_FORMAT.name,
        help="The clips the model learnt (`CLIP_FORMATS`; default: the shipped model's): their captions are "
        "prompted; v2 adds bouncing ones.",
    )
    parser.add_argument("--seen", type=int, default=48, help="Clips of captions seen in training (new seeds).")
    parser.add_argument(
        "--unseen-seeds", type=int, default=4, help="Clips per held-out caption (14 of them; 20 in format v2)."
    )
    # Sampling settings left out are the model's own (its folder's `default_sampling_preset`).
    parser.add_argument("--steps", type=int, help="Sampling steps.")
    parser.add_argument("--guidance-scale", type=float)
    parser.add_argument("--motion-score", type=float, help="Motion condition of adherence clips (negative: none).")
    parser.add_argument("--shift", type=float, help="Sampling time shift.")
    parser.add_argument(
        "--motion-values",
        type=float,
        nargs="+",
        help="The sweep of `motion_score` (default: the clip format's `motion_sweep`, across its training clips' "
        "measured range: about 4 to 24 from the 5th to the 95th percentile in v1, 3 to 15 in v2).",
    )
    parser.add_argument(
        "--negative-motion-values",
        type=float,
        nargs="+",
        default=[0.0, 6.0, 12.0, 18.0],
        help="The sweep of `negative_motion_score`, with `motion_score` at the largest `--motion-values`.",
    )
    parser.add_argument(
        "--coarse-to-fine",
        type=_patch_schedule,
        help="A coarse-to-fine `patch_size` schedule to measure instead of the model's own `-MultiScale` preset: JSON "
        "pairs of the time it starts (0 = noise) and the patchification, e.g. '[[0, [2, 2, 2]], [0.7, [1, 2, 2]]]'.",
    )
    parser.add_argument("--fps", type=float, help="Frame rate the clips were trained at.")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    return parser


def _patchification(name: str, value) -> PatchSize:
    if not (isinstance(value, list) and len(value) == 3 and all(type(size) is int and size > 0 for size in value)):
        raise ValueError(f"`{name}` takes [t_start, [pF, pH, pW]] pairs of positive integers, got {value!r}.")
    return tuple(value)


def _patch_schedule(text: str) -> list[tuple[float, PatchSize]]:
    """`--coarse-to-fine`, read as a preset's `patch_size` schedule is (the pipeline checks the patchifications
    against its transformer's)."""
    try:
        return list(TimeSchedule.parse("--coarse-to-fine", json.loads(text), _patchification).points)
    except ValueError as error:  # json.JSONDecodeError included
        raise argparse.ArgumentTypeError(str(error)) from None


def _load(path: str, shift: float | None):
    """The pipeline at `path`, sampling with `shift` (None: the one saved with it)."""
    from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler

    pipe = DiffusionPipeline.from_pretrained(path, torch_dtype=torch.float32)
    if shift is not None:
        pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config, shift=shift)
    return pipe


def _plot(measured: dict[str, dict[float, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(measured), figsize=(5 * len(measured), 3.5))
    for axis, (name, values) in zip(np.atleast_1d(axes), measured.items(), strict=True):
        xs = list(values)
        axis.plot(xs, [np.mean(values[x]) for x in xs], marker="o")
        axis.scatter([x for x in xs for _ in values[x]], [m for x in xs for m in values[x]], s=8, alpha=0.4)
        axis.set_xlabel(name)
        axis.set_ylabel("measured motion (flow)")
    figure.tight_layout()
    with atomic_output_file(path) as temporary:
        figure.savefig(temporary, dpi=100)


def _schedules(pipe, coarse_to_fine: list | None = None) -> dict[str, object]:
    """The single-scale and coarse-to-fine `patch_size` of the model's own settings (the shipped model's where its
    folder has none); `coarse_to_fine` replaces the latter."""
    own, default = pipe.config.sampling_presets, pipe.config.default_sampling_preset
    if not own or default is None:
        schedules = {"single_scale": SINGLE_SCALE, "multi_scale": MULTI_SCALE}
    else:
        schedules = {
            "single_scale": find_sampling_preset(default, own)["patch_size"],
            "multi_scale": find_sampling_preset(f"{default}-MultiScale", own)["patch_size"],
        }
    return schedules if coarse_to_fine is None else {**schedules, "multi_scale": coarse_to_fine}


def _reported(result: AdherenceResult, timed: bool = True) -> dict:
    """What `results.json` keeps of an adherence result (its scores, and its times if `timed`)."""
    dropped = {"clips"} if timed else {"clips", "seconds", "transformer_seconds"}
    return {name: value for name, value in asdict(result).items() if name not in dropped}


def run(args: argparse.Namespace) -> dict:
    args.model = str(video_pipeline_folder(args.model, "--model"))
    if args.untrained:
        args.untrained = str(video_pipeline_folder(args.untrained, "--untrained"))
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    clip_format = CLIP_FORMATS[args.clip_format]
    args.motion_values = motion_values = args.motion_values or list(clip_format.motion_sweep)
    bouncing = BOUNCING in clip_format.directions
    train_specs, held_out = split_specs(clip_format.directions)
    seen = [train_specs[i] for i in rng.choice(len(train_specs), size=args.seen, replace=False)]
    unseen = [spec for spec in held_out for _ in range(args.unseen_seeds)]
    seeds = [args.seed + i for i in range(max(len(seen), len(unseen)))]
    pipe = _load(args.model, args.shift)
    given = {
        "num_inference_steps": args.steps,
        "guidance_scale": args.guidance_scale,
        "motion_score": args.motion_score,
    }
    # The benchmark compares its own patch schedules.
    call = {k: v for k, v in pipe.sampling_defaults.items() if k != "patch_size"}
    call.update({k: v for k, v in given.items() if v is not None})
    if args.fps is None:
        args.fps = preset_fps(pipe.config.default_sampling_preset, pipe.config.sampling_presets)
    results: dict = {"settings": {k: v for k, v in vars(args).items() if k != "output"} | {"call": call}}
    results["settings"]["output"] = str(args.output)
    results["chance"] = {**CHANCE, "direction": 1 / len(clip_format.directions)}
    schedules = _schedules(pipe, args.coarse_to_fine)
    single_scale = schedules["single_scale"]
    results["settings"]["patch_size"] = schedules

    def measured(pipe, specs, patch, without_speed=False) -> dict:
        result = measure_adherence(pipe, specs, seeds[: len(specs)], without_speed, bouncing, **call, patch_size=patch)
        return _reported(result)

    adherence = {}
    for name, specs in (("seen", seen), ("unseen", unseen)):
        for scale_name, patch in schedules.items():
            adherence[f"{name}/{scale_name}"] = measured(pipe, specs, patch)
            logger.info(f"{name} {scale_name}: {adherence[f'{name}/{scale_name}']}")
    # The held-out combinations prompted as a user may type them, without the speed word.
    adherence["unseen_without_speed/single_scale"] = measured(pipe, unseen, single_scale, without_speed=True)
    if args.untrained:
        baseline = _load(args.untrained, args.shift)
        for name, specs in (("seen", seen), ("unseen", unseen)):
            adherence[f"{name}/untrained"] = measured(baseline, specs, single_scale)
    results["adherence"] = adherence
    # The generator's own clips of the seen captions and seeds (the frames a model draws): what a perfect model scores.
    rendered = [
        render_shape(spec, seed, background=BACKGROUNDS[index % 2], speed_jitter=0.25, clip_format=clip_format)
        for index, (spec, seed) in enumerate(zip(seen, seeds, strict=False))
    ]
    reference = score_clips(seen, [clip.frames[1:] / 255.0 for clip in rendered], bouncing)
    results["generator"] = _reported(reference, timed=False)
    results["multi_scale_time_ratio"] = {
        f"{name}/{part}": adherence[f"{name}/multi_scale"][part] / adherence[f"{name}/single_scale"][part]
        for name in ("seen", "unseen")
        for part in ("seconds", "transformer_seconds")
    }

    sweep_specs = [ShapeSpec(c, "square", d, "quickly") for c, d in (("red", "right"), ("blue", "down"))]
    sweep_specs = [spec for spec in sweep_specs for _ in range(2)]
    sweep_seeds = seeds[: len(sweep_specs)]
    positive = motion_sweep(
        pipe, sweep_specs, sweep_seeds, "motion_score", motion_values, args.fps, **call, patch_size=single_scale
    )
    negative_call = {**call, "motion_score": max(motion_values)}
    negative = motion_sweep(
        pipe,
        sweep_specs,
        sweep_seeds,
        "negative_motion_score",
        args.negative_motion_values,
        args.fps,
        **negative_call,
        patch_size=single_scale,
    )
    results["motion"] = {
        "motion_score": {"spearman": sweep_correlation(positive), "measured": positive},
        "negative_motion_score": {"spearman": sweep_correlation(negative), "measured": negative},
    }
    args.output.mkdir(parents=True, exist_ok=True)
    _plot({"motion_score": positive, "negative_motion_score": negative}, args.output / "motion.png")

    strip_prompts = (*STRIP_PROMPTS, BOUNCING_STRIP_PROMPT) if bouncing else STRIP_PROMPTS
    clips = generate_clips(pipe, strip_prompts, [args.seed] * len(strip_prompts), **call, patch_size=single_scale)
    with atomic_output_file(args.output / "strip.png") as temporary:
        frame_strip(clips, [spec.caption for spec in strip_prompts]).save(temporary)
    with atomic_output_file(args.output / "preview.gif") as temporary:
        animated_preview(clips, temporary, args.fps)
    with atomic_output_file(args.output / "results.json") as temporary:
        temporary.write_text(json.dumps(results, indent=1))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    return run_script(build_parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
