"""Proof that Lumina-V2A training learns sound that follows the picture, on one CPU core in 10 to 20 minutes.

    python examples/v2a_flash_proof.py --output_dir outputs/v2a-flash-proof

1. Writes synthetic clips (a coloured square flashing at random moments, a tone per flash whose pitch is the
   colour's) as mp4 files with a manifest: training seeds, and held-out seeds whose flash timings no training clip has.
2. Trains a small audio VAE (AudioLDM's layout) on the mel spectrograms of the training clips, so that generated
   latents decode to a spectrogram that means something.
3. Writes tiny random CLIP and Synchformer models (their output layers calibrated on the training clips, so that
   their features vary at unit scale), and assembles an untrained Lumina-V2A pipeline from them and the VAE with
   `assemble_v2a_pipeline` (`assemble_tiny_v2a_pipeline`), as from the released models.
4. Trains the V2A transformer with the package's trainer (full training, EMA).
5. Measures, on the held-out clips, the onsets and pitch of the generated (decoded mel) sound for the untrained model,
   the trained model, and the trained model given each video delayed by 0.48 and 0.52 s (0.5 s falls between two
   frames); writes `results.md`, `results.json`
   and `onsets.png` to `--output_dir`.
"""

import argparse
import importlib.util
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline

from diffusers_lumina_video.evaluation.v2a_sync import evaluate_flash_sync, plot_flash_onsets, summarize
from diffusers_lumina_video.processors import AudioLDMMelFeatureExtractor
from diffusers_lumina_video.showcase.audio_vae import build_audio_vae, train_audio_vae, waveforms_to_mels
from diffusers_lumina_video.showcase.synthetic_flashes import FLASH_COLOURS, read_flash_manifest, write_flash_dataset
from diffusers_lumina_video.showcase.tiny_v2a_sources import assemble_tiny_v2a_pipeline, write_tiny_v2a_sources
from diffusers_lumina_video.training import TrainingConfig, prepare_data, train
from diffusers_lumina_video.utils.media_io import read_audio, read_video


logger = logging.getLogger("v2a_flash_proof")
TONES = {name: frequency for name, (_, frequency) in FLASH_COLOURS.items()}
# A 0.5 s delay is 12.5 frames at 25 fps: the videos are delayed by the two whole-frame delays either side of it.
SHIFTS = (0.48, 0.52)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="outputs/v2a-flash-proof", help="Where everything is written.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of every random draw.")
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads for torch (at most 2; one is fastest on a busy machine)."
    )
    data = parser.add_argument_group("data")
    data.add_argument("--num_train_clips", type=int, default=96)
    data.add_argument("--num_eval_clips", type=int, default=16)
    data.add_argument("--clip_duration", type=float, default=3.0, help="Seconds per clip.")
    data.add_argument("--num_flashes", type=int, default=3, help="Flashes per clip.")
    vae = parser.add_argument_group("audio VAE")
    vae.add_argument("--vae_steps", type=int, default=150)
    vae.add_argument("--vae_channels", type=int, nargs=3, default=[16, 32, 32])
    model = parser.add_argument_group("V2A transformer")
    model.add_argument("--hidden_size", type=int, default=64)
    model.add_argument("--num_layers", type=int, default=2)
    model.add_argument("--frequency_patch", type=int, default=16, help="Latent bins per token (1, 2, 4, 8 or 16).")
    train = parser.add_argument_group("training")
    train.add_argument("--train_steps", type=int, default=6000)
    train.add_argument("--batch_size", type=int, default=16)
    train.add_argument("--learning_rate", type=float, default=1e-3)
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument("--num_inference_steps", type=int, default=25)
    evaluation.add_argument("--guidance_scale", type=float, default=3.0)
    args = parser.parse_args(argv)
    for name in ("num_train_clips", "num_eval_clips", "vae_steps", "train_steps", "batch_size", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}.")
    if args.threads > 2:
        parser.error(f"--threads must be 1 or 2, got {args.threads}.")
    if args.clip_duration < 1.0:
        parser.error(
            f"--clip_duration must be at least 1 s (Synchformer and the 0.5 s shift), got {args.clip_duration}."
        )
    if 16 % args.frequency_patch:
        parser.error(f"--frequency_patch must divide the 16 latent bins, got {args.frequency_patch}.")
    return args


def train_transformer(
    args: argparse.Namespace, pipeline_path: Path, manifest: Path, validation: list, output_dir: Path
) -> Path:
    """Full training of the V2A transformer with the package's trainer (as `lumina-video train-v2a` runs it), with
    the sound of the `validation` clips rendered at the end; returns the trained pipeline folder."""
    config = TrainingConfig(
        model_family="v2a",
        training_mode="full",
        pretrained_model_name_or_path=str(pipeline_path),
        dataset=str(manifest),
        clip_duration=args.clip_duration,
        output_dir=str(output_dir / "training"),
        train_batch_size=args.batch_size,
        max_train_steps=args.train_steps,
        learning_rate=args.learning_rate,
        lr_scheduler="constant_with_warmup",
        lr_warmup_steps=100,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        vd_weight=0.0,
        seed=args.seed,
        checkpointing_steps=args.train_steps,
        checkpoints_total_limit=1,
        validation_steps=0,
        validation_videos=[str(record.path) for record in validation],
        validation_prompts=[record.caption for record in validation],
        validation_num_inference_steps=args.num_inference_steps,
        validation_guidance_scale=args.guidance_scale,
        report_to="none",
    )
    prepare_data(config)
    return train(config)


def results_table(summaries: dict[str, dict], shifts: dict[str, float]) -> str:
    """The measured table; "onsets moved by" is the best-aligning shift of a delayed video's sound minus that of
    the same model's sound for the video as is: how far the sound followed the picture."""

    def number(value: float, text: str) -> str:
        return "n/a" if np.isnan(value) else text.format(value)

    rows = [
        "| model | video | onset F1 (±40 ms) | mean abs. offset | best-aligning shift | onsets moved by "
        "| F1 vs unshifted flashes | colour accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, summary in summaries.items():
        model = name.split(" (")[0]
        video = f"delayed {shifts[name]:g} s" if shifts[name] else "as is"
        moved = summary["best_shift"] - summaries[model]["best_shift"] if shifts[name] else float("nan")
        rows.append(
            f"| {model} | {video} | {summary['f1']:.2f} "
            f"| {number(summary['mean_absolute_offset'] * 1000, '{:.0f} ms')} "
            f"| {number(summary['best_shift'], '{:+.3f} s')} | {number(moved, '{:+.3f} s')} "
            f"| {summary['f1_at_zero_shift']:.2f} | {summary['colour_accuracy']:.0%} |"
        )
    return "\n".join(rows)


def check_extras() -> None:
    """The plot at the very end needs matplotlib (the `[train]` extra): checked before minutes of training."""
    if importlib.util.find_spec("matplotlib") is None:
        raise SystemExit('This example needs the [train] extra (matplotlib, for its plot): pip install -e ".[train]"')


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_extras()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    timings = {}

    def lap(stage: str) -> None:
        timings[stage] = round(time.monotonic() - started - sum(timings.values()), 1)
        logger.info(f"{stage}: {timings[stage]} s")

    # 1. Clips
    clip_settings = {"duration": args.clip_duration, "num_flashes": args.num_flashes}
    train_manifest = write_flash_dataset(output_dir / "data" / "train", args.num_train_clips, **clip_settings)
    eval_manifest = write_flash_dataset(
        output_dir / "data" / "held_out", args.num_eval_clips, held_out=True, **clip_settings
    )
    eval_records = read_flash_manifest(eval_manifest)
    lap("clips")

    # 2. Audio VAE on the training clips' sound, read back from the files as training reads it
    extractor = AudioLDMMelFeatureExtractor()
    train_records = read_flash_manifest(train_manifest)
    waveforms = [read_audio(record.path) for record in train_records]
    vae = build_audio_vae(args.vae_channels, args.seed)
    vae_training = train_audio_vae(
        vae, waveforms_to_mels(waveforms, extractor, extractor.sampling_rate), args.vae_steps, seed=args.seed
    )
    logger.info(f"Audio VAE: L1 {vae_training.losses[0]:.3f} -> {vae_training.losses[-1]:.3f}")
    lap("audio VAE")

    # 3. An untrained pipeline, assembled as from released models
    sources = write_tiny_v2a_sources(
        output_dir / "sources",
        vae,
        seed=args.seed,
        calibration_captions=[record.caption for record in train_records],
        calibration_videos=[read_video(record.path) for record in train_records],
    )
    untrained_path = assemble_tiny_v2a_pipeline(
        output_dir / "untrained",
        sources,
        args.clip_duration,
        args.hidden_size,
        args.num_layers,
        args.frequency_patch,
        seed=args.seed,
    )
    lap("assembly")

    # 4. Training
    trained_path = train_transformer(args, untrained_path, train_manifest, eval_records[:2], output_dir)
    lap("training")

    # 5. Evaluation
    evaluation = {"num_inference_steps": args.num_inference_steps, "guidance_scale": args.guidance_scale}
    conditions = {}
    for name, path, shift in (
        ("untrained", untrained_path, 0.0),
        ("trained", trained_path, 0.0),
        *((f"trained (video delayed {shift:g} s)", trained_path, shift) for shift in SHIFTS),
    ):
        pipeline = DiffusionPipeline.from_pretrained(path)
        pipeline.set_progress_bar_config(disable=True)
        conditions[name] = evaluate_flash_sync(
            pipeline, eval_records, TONES, shift=shift, seed=args.seed, **evaluation
        )
    summaries = {name: asdict(summarize(clips, args.clip_duration)) for name, clips in conditions.items()}
    lap("evaluation")

    report = {"settings": vars(args), "timings_s": timings, "audio_vae_l1": vae_training.losses[-1], **summaries}
    (output_dir / "results.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    table = results_table(summaries, {name: clips[0].shift for name, clips in conditions.items()})
    (output_dir / "results.md").write_text(
        f"{table}\n\n{args.num_eval_clips} held-out clips x {args.num_flashes} flashes, {args.clip_duration} s each; "
        f"chance colour accuracy 25%. Stage times (s): {timings}.\n"
    )
    print(table)
    plot_flash_onsets(conditions, output_dir / "onsets.png")  # last: the numbers are written whatever happens here
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
