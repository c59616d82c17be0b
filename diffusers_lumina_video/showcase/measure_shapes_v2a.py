"""Does a V2A model sound the bounces of held-out sounding shape clips? Measured on the waveform of the written mp4.

For each clip of a held-out sounding dataset (`write_sounding_dataset`, frames through the video model's VAE) the V2A
pipeline generates the sound, the package's writer muxes it with the frames into an mp4, and `hear_video` reads its
onsets and pitches back. `score_sound` pools the clips against the bounce moments read off the frames
(`read_bounce_times`): onset F1 within 60 ms (and, to tell a late or early beep from a missing one, within a frame),
the share of onsets that sound the colour's pitch, onsets per clip of a shape that does not bounce. The same videos
delayed by 0.5 s (4 frames at 8 fps) say whether the sound follows the picture: their onsets should move by 0.5 s
(`onsets_moved_by`).

    python -m diffusers_lumina_video.showcase.measure_shapes_v2a --manifest RUN/work/data/held_out/manifest.csv \
        --pipeline trained=RUN/pipeline --pipeline untrained=RUN/work/untrained --output-dir RUN/measure

With `--video-model` instead of `--manifest`, the clips are generated: the held-out captions (colour x shape x motion
combinations no model trained on) go through that video model (`tiny-shapes`, say) with new seeds, and the bounce
moments are read off the generated frames (`sounding_shapes.write_generated_clips`), which is what a user of both models hears.
"""

import argparse
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..evaluation.v2a_sync import generate_sound, shift_frames
from ..evaluation.waveform_sync import HeardSound, hear_video, onsets_moved_by, score_sound
from ..utils.atomic import atomic_output_file
from ..utils.media_io import export_to_video_with_audio, read_video
from .builtin_models import TINY_SHAPES_V2A_ID, check_builtin_family, model_location
from .sounding_shapes import (
    COLOUR_TONES,
    SoundingClipRecord,
    read_bounce_times,
    read_sounding_manifest,
    write_generated_clips,
)


logger = logging.getLogger(__name__)

# Seconds the videos are delayed by in the delay check: a whole number of frames at the clips' 8 fps.
DELAY = 0.5


@torch.no_grad()
def sound_clips(
    pipeline,
    records: Sequence[SoundingClipRecord],
    output_dir: Path,
    delay: float = 0.0,
    num_inference_steps: int = 25,
    guidance_scale: float = 3.0,
    seed: int = 0,
    batch_size: int = 8,
) -> tuple[list[HeardSound], float]:
    """Generates the sound of each clip (its video delayed by `delay` seconds), writes `output_dir/<id>.mp4` with the
    package's writer and hears it back; returns what was heard and the seconds of generation per clip. Clip `i` uses
    noise seed `seed + i`, whatever the batching."""
    output_dir.mkdir(parents=True, exist_ok=True)
    heard, seconds = [], 0.0
    progress = tqdm(total=len(records), desc=f"Sounding {output_dir.name}", unit="clip")
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        videos = [read_video(record.path) for record in batch]
        fps = videos[0].fps
        frames = [shift_frames(video.frames, fps, delay) for video in videos]
        began = time.perf_counter()
        captions = [record.caption for record in batch]
        generation = {"num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale}
        audios = generate_sound(pipeline, frames, fps, captions, seed + start, **generation)
        seconds += time.perf_counter() - began
        for record, clip_frames, audio in zip(batch, frames, audios, strict=True):
            path = output_dir / f"{record.clip_id}.mp4"
            export_to_video_with_audio(clip_frames, audio, pipeline.vocoder.config.sampling_rate, path, fps=fps)
            heard.append(hear_video(path, COLOUR_TONES))
        progress.update(len(batch))
    progress.close()
    return heard, seconds / len(records)


def bounce_truth(records: Sequence[SoundingClipRecord]) -> tuple[list[tuple[float, ...]], list[str | None]]:
    """The bounce moments read off each clip's written frames, and the colour it should sound (None: no bounce)."""
    times = []
    for record in records:
        video = read_video(record.path)
        times.append(read_bounce_times(video.frames, video.fps))
    return times, [record.spec.colour if moments else None for record, moments in zip(records, times, strict=True)]


def score_heard(
    times: Sequence[Sequence[float]], names: Sequence[str | None], heard: Sequence[HeardSound], fps: float
) -> dict:
    """`score_sound`'s scores (onsets within its ±60 ms), and the onset F1, precision and recall within one frame
    (±1/fps). A turn's moment is read between frames, and a generated turn is gradual, so an onset may sit a frame
    from the moment: heard, but early or late, which the first F1 counts as missed and the second as found."""
    score = asdict(score_sound(times, names, heard))
    within_a_frame = score_sound(times, names, heard, tolerance=1 / fps)
    score["within_a_frame"] = {
        "onset_f1": within_a_frame.onset_f1,
        "precision": within_a_frame.precision,
        "recall": within_a_frame.recall,
    }
    return score


def measure_pipelines(
    pipelines: dict[str, str | os.PathLike],
    manifest: str | os.PathLike,
    output_dir: str | os.PathLike,
    delay: float = DELAY,
    **generation,
) -> dict[str, dict]:
    """Each pipeline (name -> folder) on the clips of `manifest`, as is and delayed by `delay` seconds: the scores
    of `score_sound`, how far the onsets moved with the delay, and the seconds to sound one clip. The mp4 files go
    to `output_dir/<name>/` and `output_dir/<name>-delayed/`."""
    from diffusers import DiffusionPipeline

    records = read_sounding_manifest(manifest)
    times, names = bounce_truth(records)
    video = read_video(records[0].path)
    duration = len(video.frames) / video.fps
    output_dir = Path(output_dir)
    results = {}
    for name, path in pipelines.items():
        pipeline = DiffusionPipeline.from_pretrained(path, torch_dtype=torch.float32)
        pipeline.set_progress_bar_config(disable=True)
        heard, seconds = sound_clips(pipeline, records, output_dir / name, **generation)
        delayed, _ = sound_clips(pipeline, records, output_dir / f"{name}-delayed", delay=delay, **generation)
        score = score_heard(times, names, heard, video.fps)
        score["onsets_moved_by"] = onsets_moved_by([h.onsets for h in heard], [h.onsets for h in delayed], delay)
        # The delayed videos' bounces, those still inside the clip, against their sound.
        moved = [tuple(t + delay for t in moments if t + delay < duration) for moments in times]
        colours = [record.spec.colour if moments else None for record, moments in zip(records, moved, strict=True)]
        score["delayed_onset_f1"] = score_sound(moved, colours, delayed).onset_f1
        score["seconds_per_clip"] = seconds
        results[name] = score
    return results


def sound_table(results: dict[str, dict], delay: float = DELAY) -> str:
    """The measured table, one row per pipeline (n/a within a frame for results measured before that score)."""

    def number(value: float, text: str) -> str:
        return "n/a" if value is None or np.isnan(value) else text.format(value)

    rows = [
        "| V2A model | onset F1 (±60 ms) | precision | recall | onset F1 within a frame (P / R) | mean abs. offset "
        f"| pitch accuracy | onsets per no-bounce clip | video delayed {delay:g} s: onsets moved by | its onset F1 "
        "| s per clip |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, score in results.items():
        frame = score.get("within_a_frame")
        within_a_frame = (
            "n/a" if frame is None else f"{frame['onset_f1']:.2f} ({frame['precision']:.2f} / {frame['recall']:.2f})"
        )
        rows.append(
            f"| {name} | {score['onset_f1']:.2f} | {score['precision']:.2f} | {score['recall']:.2f} | {within_a_frame} "
            f"| {number(score['mean_absolute_offset'] * 1000, '{:.0f} ms')} "
            f"| {number(score['pitch_accuracy'], '{:.0%}')} | {number(score['onsets_per_silent_clip'], '{:.2f}')} "
            f"| {number(score['onsets_moved_by'], '{:+.3f} s')} | {score['delayed_onset_f1']:.2f} "
            f"| {score['seconds_per_clip']:.2f} |"
        )
    return "\n".join(rows)


def write_results(results: dict, table: str, output_dir: Path) -> None:
    """`results.json` and `results.md` in `output_dir`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_output_file(output_dir / "results.json") as temporary:
        temporary.write_text(json.dumps(results, indent=2, default=float) + "\n")
    with atomic_output_file(output_dir / "results.md") as temporary:
        temporary.write_text(table + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m diffusers_lumina_video.showcase.measure_shapes_v2a", description=__doc__.split("\n\n")[0]
    )
    clips = parser.add_mutually_exclusive_group(required=True)
    clips.add_argument("--manifest", type=Path, help="A held-out sounding dataset's manifest.csv.")
    clips.add_argument(
        "--video-model",
        help="Generate the clips instead: the held-out captions through this video model (`tiny-shapes` or a "
        "pipeline folder).",
    )
    parser.add_argument(
        "--clips-per-spec", type=int, default=2, help="With --video-model: videos per caption (20 held-out captions)."
    )
    parser.add_argument(
        "--captions",
        choices=["held-out", "seen"],
        default="held-out",
        help="With --video-model: the held-out colour x shape x motion captions, or the 100 the models trained on "
        "(with seeds their training did not use: the generated training videos' start at 100000).",
    )
    parser.add_argument(
        "--pipeline",
        action="append",
        required=True,
        help="NAME=FOLDER of a V2A pipeline, or NAME=tiny-shapes-v2a (repeat for several).",
    )
    parser.add_argument("--output-dir", type=Path, required=True, help="Where the mp4 files and results go.")
    parser.add_argument("--num-inference-steps", type=int, default=25)
    parser.add_argument("--guidance-scale", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0, help="The V2A noise seed, and the first video's seed.")
    args = parser.parse_args(argv)
    if args.manifest is not None and not args.manifest.is_file():
        parser.error(f"--manifest {args.manifest} does not exist.")
    video_model = None
    if args.video_model is not None:
        from .builtin_models import video_pipeline_folder

        try:
            video_model = video_pipeline_folder(args.video_model, "--video-model")
        except ValueError as error:
            parser.error(str(error))
    if args.clips_per_spec < 1:
        parser.error(f"--clips-per-spec must be >= 1, got {args.clips_per_spec}.")
    pipelines = {}
    for value in args.pipeline:
        name, _, model = value.partition("=")
        try:
            check_builtin_family(model, "v2a", "--pipeline")
        except ValueError as error:
            parser.error(str(error))
        folder = model_location(model)
        if not name or not (Path(folder) / "model_index.json").is_file():
            parser.error(
                f"--pipeline must be NAME=FOLDER of a pipeline folder (with model_index.json) or "
                f"NAME={TINY_SHAPES_V2A_ID}, got {value!r}."
            )
        pipelines[name] = folder
    if args.num_inference_steps < 1:
        parser.error(f"--num-inference-steps must be >= 1, got {args.num_inference_steps}.")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    manifest = args.manifest
    if video_model is not None:
        from diffusers import DiffusionPipeline

        from .synthetic_shapes import TINY_SHAPES_CLIP_FORMAT, split_specs

        seen, held_out = split_specs(TINY_SHAPES_CLIP_FORMAT.directions)
        video_pipeline = DiffusionPipeline.from_pretrained(video_model, torch_dtype=torch.float32)
        video_pipeline.set_progress_bar_config(disable=True)
        specs = seen if args.captions == "seen" else held_out
        manifest = write_generated_clips(
            video_pipeline, specs, args.clips_per_spec, args.output_dir / "generated", seed=args.seed
        )
        del video_pipeline
    generation = {"num_inference_steps": args.num_inference_steps, "guidance_scale": args.guidance_scale}
    results = measure_pipelines(pipelines, manifest, args.output_dir, seed=args.seed, **generation)
    table = sound_table(results)
    write_results(results, table, args.output_dir)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
