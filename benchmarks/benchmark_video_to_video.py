"""Video-to-video on the built-in `tiny-shapes`: how much of the input clip each `strength` keeps (the shape's track and
colour) and how much it follows a prompt that changes the colour; what a strength-0.5 call costs against
text-to-video; and what a strength means on the released presets' schedules (where guidance and patchification are
read on the same time axis).

Two kinds of input clip, one shape moving one way, at the model's size and frame count (`TINY_SHAPES_DEFAULTS`):
- clips `tiny-shapes` generated from shape captions, kept where the colour, shape and direction read back match the
  caption (`--clips` of them): what the VAE's decoder makes.
- the shape generator's clips (`showcase/synthetic_shapes.py`, plain background), never through the VAE: only the
  VAE's round trip and the two target strengths are run on them.

Each clip is prompted with the caption of the same shape, direction and speed in another colour. Everything is read
back from the frames (`showcase/shape_attributes.py`): the colour, and the shape's centroid in each frame; the track
is kept where every frame's centroid is within `--track-px` of the input's. `tiny-shapes`' own settings throughout
(`TINY_SHAPES_DEFAULTS`: 20 steps, guidance 4, time shift 1, no motion condition), and, for three strengths, the same
without guidance (what a released preset's guidance switching off before a late start leaves).

    python benchmarks/benchmark_video_to_video.py --output v2v-results

Writes `results.json` and `strength.png` (the curves) to `--output`, and prints the tables.
"""

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from diffusers_lumina_video import SAMPLING_PRESETS, LuminaVideoPipeline, LuminaVideoVideoToVideoPipeline
from diffusers_lumina_video.pipelines.lumina_video.pipeline_lumina_video_video2video import first_step
from diffusers_lumina_video.pipelines.lumina_video.schedules import SamplingSchedule, lumina_sigmas
from diffusers_lumina_video.showcase.builtin_models import TINY_SHAPES_DEFAULTS, tiny_shapes_path
from diffusers_lumina_video.showcase.shape_attributes import read_clip_attributes, read_track
from diffusers_lumina_video.showcase.shapes_benchmark import MULTI_SCALE, SINGLE_SCALE
from diffusers_lumina_video.showcase.synthetic_shapes import (
    DIRECTIONS,
    SHAPE_COLOURS,
    SHAPES,
    SPEEDS,
    TINY_SHAPES_CLIP_FORMAT,
    ShapeSpec,
    render_shape_clip,
)
from diffusers_lumina_video.utils.atomic import atomic_output_file


STRENGTHS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
TARGETS = {0.3: "keeps", 0.9: "follows"}  # strength -> the measure whose share is to reach 90%
TIMED_ROUNDS = 5
UNGUIDED_STRENGTHS = (0.5, 0.7, 0.9)
SETTINGS = {k: v for k, v in TINY_SHAPES_DEFAULTS.items() if k not in ("height", "width", "num_frames")}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True, help="folder for results.json and strength.png")
    parser.add_argument("--clips", type=int, default=24, help="input clips of each kind")
    parser.add_argument("--track-px", type=float, default=3.0, help="largest centroid distance of a kept track")
    parser.add_argument("--batch-size", type=int, default=8)
    return parser.parse_args()


def shape_specs(count: int) -> list[tuple[ShapeSpec, str]]:
    """(what a clip shows, the new colour) for `count` clips: every shape, direction and speed in turn, the colours
    cycled, and the new colour a different one each time."""
    colours = list(SHAPE_COLOURS)
    combos = [(s, d, v) for s in SHAPES for d in DIRECTIONS for v in SPEEDS]
    specs = []
    for index in range(count):
        shape, direction, speed = combos[index % len(combos)]
        new_colour = colours[(index + 1 + index // len(colours) % 3) % len(colours)]
        specs.append((ShapeSpec(colours[index % len(colours)], shape, direction, speed), new_colour))
    return specs


def generator_clips(count: int) -> list[tuple[np.ndarray, ShapeSpec, str]]:
    size, frames = TINY_SHAPES_DEFAULTS["height"], TINY_SHAPES_DEFAULTS["num_frames"]
    return [
        (
            render_shape_clip(spec, seed=index, size=size, num_frames=frames, clip_format=TINY_SHAPES_CLIP_FORMAT),
            spec,
            new_colour,
        )
        for index, (spec, new_colour) in enumerate(shape_specs(count))
    ]


def generated_clips(pipe, count: int, batch_size: int) -> tuple[list[tuple[np.ndarray, ShapeSpec, str]], int]:
    """`count` clips `tiny-shapes` generated that read back as their caption says, and how many were generated."""
    t2v = LuminaVideoPipeline.from_pipe(pipe)
    t2v.set_progress_bar_config(disable=True)
    sizes = {k: TINY_SHAPES_DEFAULTS[k] for k in ("height", "width", "num_frames")}
    candidates = shape_specs(4 * count)
    clips, tried = [], 0
    while len(clips) < count and tried < len(candidates):
        chunk = candidates[tried : tried + batch_size]
        output = t2v(
            prompt=[spec.caption for spec, _ in chunk],
            generator=[torch.Generator().manual_seed(10_000 + tried + i) for i in range(len(chunk))],
            **sizes,
            **SETTINGS,
        ).frames
        tried += len(chunk)
        for frames, (spec, new_colour) in zip(output, chunk, strict=True):
            read = read_clip_attributes(frames)
            if (read.colour, read.shape, read.direction) == (spec.colour, spec.shape, spec.direction):
                clips.append(((frames * 255).round().astype(np.uint8), spec, new_colour))
    return clips[:count], tried


def score(output: np.ndarray, clip: np.ndarray, round_trip: np.ndarray, spec: ShapeSpec, new_colour: str, px: float):
    """Whether `output` keeps the track (of the input; of the input's VAE round trip) and colour of the input, and
    whether its colour is the prompt's."""
    colour = read_clip_attributes(output).colour
    track = read_track(output)
    distance = np.linalg.norm(track - read_track(clip), axis=1)
    keeps_track = bool(np.all(distance <= px))  # a frame without a shape (NaN) fails
    return {
        "keeps_track": keeps_track,
        "keeps_round_trip_track": bool(np.all(np.linalg.norm(track - read_track(round_trip), axis=1) <= px)),
        "keeps_colour": colour == spec.colour,
        "keeps": keeps_track and colour == spec.colour,
        "follows": colour == new_colour,
        "max_distance": float(np.nanmax(distance)) if np.isfinite(distance).any() else None,
        "speed": spec.speed,
    }


def run_strength(
    pipe, clips, round_trips, strength: float, batch_size: int, px: float, guidance_scale: float | None = None
) -> list[dict]:
    settings = SETTINGS if guidance_scale is None else {**SETTINGS, "guidance_scale": guidance_scale}
    scores = []
    for start in range(0, len(clips), batch_size):
        chunk = clips[start : start + batch_size]
        prompts = [ShapeSpec(new, s.shape, s.direction, s.speed).caption for _, s, new in chunk]
        output = pipe(
            video=[clip for clip, _, _ in chunk],
            prompt=prompts,
            strength=strength,
            generator=[torch.Generator().manual_seed(start + i) for i in range(len(chunk))],
            **settings,
        ).frames
        references = round_trips[start : start + batch_size]
        scores += [score(o, c, r, s, new, px) for o, r, (c, s, new) in zip(output, references, chunk, strict=True)]
    return scores


def vae_round_trip(pipe, clips) -> list[np.ndarray]:
    """Each input through the VAE alone, as a video-to-video call encodes it and decodes its result: the most of the
    input any strength can keep."""
    outputs = []
    schedule = SamplingSchedule.parse(1.0, -1.0, -1.0, SINGLE_SCALE, pipe.transformer.config.patch_sizes)
    for clip, _, _ in clips:
        pixels, *_ = pipe.prepare_video(clip, None, None, None, schedule, batch_size=1)
        with torch.no_grad():
            latents = pipe.encode_video(pixels, torch.device("cpu"))
            frames = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
        outputs.append(pipe.video_processor.postprocess_video(frames, output_type="np")[0])
    return outputs


def shares(scores: Sequence[dict]) -> dict:
    keys = ("keeps_track", "keeps_round_trip_track", "keeps_colour", "keeps", "follows")
    distances = [s["max_distance"] for s in scores if s["max_distance"] is not None]
    return {
        **{key: float(np.mean([s[key] for s in scores])) for key in keys},
        "median_max_distance": float(np.median(distances)),
        "keeps_track_by_speed": {
            speed: float(np.mean([s["keeps_track"] for s in scores if s["speed"] == speed])) for speed in SPEEDS
        },
    }


def time_calls(v2v: LuminaVideoVideoToVideoPipeline, clip: np.ndarray) -> dict:
    """Seconds of one call of text-to-video and of video-to-video at strength 0.5, single- and multi-scale, same
    prompt and settings, over `TIMED_ROUNDS` rounds after a warm-up, the kinds of call taking turns: the fastest
    (the least disturbed by other work on the machine) and the median."""
    t2v = LuminaVideoPipeline.from_pipe(v2v)
    t2v.set_progress_bar_config(disable=True)
    sizes = {k: TINY_SHAPES_DEFAULTS[k] for k in ("height", "width", "num_frames")}
    prompt = "a blue circle moving right, slowly"
    calls = {
        "text-to-video": lambda patch: t2v(prompt=prompt, patch_size=patch, **sizes, **SETTINGS),
        "video-to-video, strength 0.5": lambda patch: v2v(
            video=clip, prompt=prompt, strength=0.5, patch_size=patch, **SETTINGS
        ),
    }
    runs = {}
    for round_index in range(TIMED_ROUNDS + 1):
        for scale, patch in (("single-scale", SINGLE_SCALE), ("multi-scale", MULTI_SCALE)):
            for name, call in calls.items():
                start = time.perf_counter()
                call(patch)
                if round_index:  # the first round warms up
                    runs.setdefault(f"{name}, {scale}", []).append(time.perf_counter() - start)
    return {name: {"fastest": min(values), "median": statistics.median(values)} for name, values in runs.items()}


def preset_starts() -> list[dict]:
    """For each released preset and strength: the Lumina time the run starts at, the steps that run, how many of
    them are guided, and the patchifications they use (read from the schedules alone, no model)."""
    rows = []
    for name, preset in SAMPLING_PRESETS.items():
        steps = preset["num_inference_steps"]
        scheduler = FlowMatchEulerDiscreteScheduler(shift=preset["shift"])
        scheduler.set_timesteps(sigmas=lumina_sigmas(steps))
        times = 1.0 - scheduler.sigmas[:-1].numpy()
        schedule = SamplingSchedule.parse(
            preset["guidance_scale"],
            preset["motion_score"],
            preset["negative_motion_score"],
            preset["patch_size"],
            [(1, 2, 2), (2, 2, 2), (2, 4, 4)],
        )
        for strength in STRENGTHS:
            run = [schedule.at(float(t)) for t in times[first_step(steps, strength) :]]
            rows.append(
                {
                    "preset": name,
                    "strength": strength,
                    "start_time": float(times[first_step(steps, strength)]),
                    "steps": len(run),
                    "guided_steps": sum(step.guidance_scale > 1.0 for step in run),
                    "patch_sizes": sorted({step.patch_size for step in run}, reverse=True),
                }
            )
    return rows


def plot(curves: dict[float, dict], round_trip: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strengths = sorted(curves)
    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    for key, label, style in (
        ("follows", "follows the prompt (new colour)", "-"),
        ("keeps_colour", "keeps the input's colour", "-"),
        ("keeps_track", "keeps the input's track (3 px)", "-"),
        ("keeps_round_trip_track", "keeps the track of the input's VAE round trip", "--"),
    ):
        axes.plot(strengths, [curves[s][key] for s in strengths], style, marker="o", label=label)
    axes.axhline(round_trip["keeps_track"], color="grey", linestyle=":", label="input's track kept by the VAE alone")
    axes.set_xlabel("strength")
    axes.set_ylabel("share of clips")
    axes.set_ylim(-0.03, 1.03)
    axes.set_title("tiny-shapes video-to-video (generated clips)")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small")
    figure.tight_layout()
    with atomic_output_file(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)


def main() -> None:
    began = time.perf_counter()
    args = parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    pipe = LuminaVideoVideoToVideoPipeline.from_pretrained(tiny_shapes_path())
    pipe.set_progress_bar_config(disable=True)
    generated, tried = generated_clips(pipe, args.clips, args.batch_size)
    print(f"{len(generated)} of {tried} generated clips read back as their caption says", flush=True)
    inputs = {"generated": generated, "generator": generator_clips(args.clips)}

    round_trips = {kind: vae_round_trip(pipe, clips) for kind, clips in inputs.items()}
    round_trip_shares = {
        kind: shares(
            [score(r, c, r, s, n, args.track_px) for r, (c, s, n) in zip(round_trips[kind], clips, strict=True)]
        )
        for kind, clips in inputs.items()
    }
    curves = {kind: {} for kind in inputs}
    for kind, strengths in (("generated", STRENGTHS), ("generator", sorted(TARGETS))):
        for strength in strengths:
            scores = run_strength(pipe, inputs[kind], round_trips[kind], strength, args.batch_size, args.track_px)
            curves[kind][strength] = shares(scores)
            print(f"{kind} clips, strength {strength}: {curves[kind][strength]}", flush=True)
    # What a preset's guidance switching off before the start means for following the new prompt.
    unguided = {
        strength: shares(
            run_strength(
                pipe, generated, round_trips["generated"], strength, args.batch_size, args.track_px, guidance_scale=1.0
            )
        )
        for strength in UNGUIDED_STRENGTHS
    }
    seconds = time_calls(pipe, generated[0][0])
    presets = preset_starts()

    targets = {
        kind: {str(s): {"measure": m, "share": curves[kind][s][m]} for s, m in TARGETS.items()} for kind in inputs
    }
    results = {
        "clips": {kind: len(clips) for kind, clips in inputs.items()},
        "generated_clips_tried": tried,
        "track_px": args.track_px,
        "settings": SETTINGS,
        "vae_round_trip": round_trip_shares,
        "strength": {kind: {str(s): v for s, v in curve.items()} for kind, curve in curves.items()},
        "strength_without_guidance": {str(s): v for s, v in unguided.items()},
        "targets": targets,
        "seconds": seconds,
        "presets": presets,
        "minutes": (time.perf_counter() - began) / 60,
    }
    with atomic_output_file(args.output / "results.json") as temporary:
        temporary.write_text(json.dumps(results, indent=2))
    plot(curves["generated"], round_trip_shares["generated"], args.output / "strength.png")

    print(
        "\n| input clips | strength | keeps track | keeps colour | both | follows the prompt | median largest distance "
        "(px) | keeps the round trip's track | keeps track, slow / quick clips |\n|---|---|---|---|---|---|---|---|---|"
    )
    for kind in inputs:
        print(_row(kind, "VAE round trip", round_trip_shares[kind]))
        for strength, share in curves[kind].items():
            print(_row(kind, str(strength), share))
    for strength, share in unguided.items():
        print(_row("generated, guidance off", str(strength), share))
    size = TINY_SHAPES_DEFAULTS
    print(
        f"\n| call ({size['height']}x{size['width']}, {size['num_frames']} frames, {size['num_inference_steps']}-step "
        f"grid, guidance {size['guidance_scale']:g}) | fastest (s) | median (s) |\n|---|---|---|"
    )
    for name, value in seconds.items():
        print(f"| {name} | {value['fastest']:.2f} | {value['median']:.2f} |")
    print("\n| preset | strength | starts at t | steps | guided steps | patchifications |\n|---|---|---|---|---|---|")
    for row in presets:
        patches = ", ".join("x".join(map(str, p)) for p in row["patch_sizes"])
        print(
            f"| {row['preset']} | {row['strength']} | {row['start_time']:.3f} | {row['steps']} | "
            f"{row['guided_steps']} | {patches} |"
        )
    print(f"\n{results['minutes']:.1f} minutes")


def _row(kind: str, name: str, share: dict) -> str:
    return (
        f"| {kind} | {name} | {share['keeps_track']:.0%} | {share['keeps_colour']:.0%} | {share['keeps']:.0%} | "
        f"{share['follows']:.0%} | {share['median_max_distance']:.2f} | {share['keeps_round_trip_track']:.0%} | "
        f"{share['keeps_track_by_speed']['slowly']:.0%} / {share['keeps_track_by_speed']['quickly']:.0%} |"
    )


if __name__ == "__main__":
    main()
