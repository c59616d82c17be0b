"""Trains a tiny Lumina-V2A for the sounding shape clips on a CPU: the sound model of the built-in video model.

    python -m diffusers_lumina_video.showcase.train_tiny_shapes_v2a --output-dir tiny-shapes-v2a-run

makes the shipped `tiny-shapes-v2a` (its defaults are that model's settings).

Stages write into `OUTPUT_DIR/work/` and are reused when run again with the same settings (`showcase.stages`; the
trainer resumes from its last checkpoint):

1. `data`: sounding shape clips (`showcase.sounding_shapes`) of the training captions and, for measuring, of the
   held-out ones, their frames passed through the video model's VAE (`--video-vae`) so that the model learns from
   what it will hear at use, each beep where the frames it goes with bounce; with `--generated-clips-per-spec`, also
   videos the video model (`--video-model`) generates from the training captions, sounded where their frames bounce
   (a generated bounce looks unlike the generator's: a slower turn, often away from the wall);
2. `audio_vae`: an AudioLDM-layout mel VAE trained on the training clips' sound;
3. `vocoder`: a `SpeechT5HifiGan` fitted to the four tones (`showcase.audio_vocoder`), so that the written mp4 carries
   the beeps, measured on the held-out clips' true mel spectrograms (alone and through the audio VAE);
4. `sync_encoder`: the Synchformer stand-in pre-trained on the training clips to tell when their beeps start
   (`showcase.sync_pretraining`: a random one barely sees a small shape's bounce), measured on the held-out clips;
5. `untrained`: tiny CLIP sources and that Synchformer, calibrated on the training clips, assembled with the audio VAE
   and the vocoder by `assemble_v2a_pipeline`, as a full-size model is;
6. `transformer`: full training of the V2A transformer with the package's trainer;
7. `export`: the trained pipeline in half precision (safetensors) in `OUTPUT_DIR/pipeline`;
8. `measure`: the untrained and the trained pipeline on the held-out clips, heard in the mp4 files they make
   (`showcase.measure_shapes_v2a`); the tables go to `OUTPUT_DIR/results.json` and `results.md`.
"""

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..pipelines.lumina_v2a.audio_codec import HOP_LENGTH, SAMPLE_RATE
from ..utils.atomic import atomic_output_file
from .builtin_models import TINY_SHAPES_ID, tiny_shapes_path, video_pipeline_folder
from .sounding_shapes import COLOUR_TONES, MANIFEST_COLUMNS, read_sounding_manifest
from .stages import Stage, can_resume, check_run_flags, export_half_precision, run_script, run_stages
from .synthetic_shapes import BOUNCING, CLIP_FORMAT_V2


logger = logging.getLogger(__name__)

STAGES = ("data", "audio_vae", "vocoder", "sync_encoder", "untrained", "transformer", "export", "measure")
# Seconds of every clip: the frames the video model draws (16 at 8 fps).
CLIP_DURATION = (CLIP_FORMAT_V2.num_frames - 1) / CLIP_FORMAT_V2.fps
# The audio VAE's learning rate, and the extra weight of loud mel bins in its loss (`train_audio_vae`).
AUDIO_VAE_LEARNING_RATE = 2e-3
AUDIO_VAE_LOUD_WEIGHT = 10.0
# Mel frames (10 ms each) of the windows the audio VAE trains on, and the windows around each bounce.
AUDIO_VAE_WINDOW = 48
WINDOWS_PER_BOUNCE = 4
# Clips per step of the Synchformer stand-in's pre-training.
SYNC_BATCH_SIZE = 16
# The held-out clips are drawn from another seed than the training ones.
HELD_OUT_SEED_OFFSET = 1
# Where the seeds of the generated training videos start (after `--seed`'s offset), away from the few seeds a
# measurement on generated videos starts at.
GENERATED_SEEDS = 100_000
# The manifest of the generated training videos alone (the training manifest lists them after the generator's clips).
GENERATED_MANIFEST = "generated.csv"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m diffusers_lumina_video.showcase.train_tiny_shapes_v2a", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--output-dir", type=Path, required=True, help="Work folder and result (OUTPUT_DIR/pipeline).")
    parser.add_argument(
        "--video-vae",
        type=Path,
        default=tiny_shapes_path(),
        help="The video model's VAE (an AutoencoderKLCogVideoX folder, or a pipeline folder with vae/) that the "
        "clips' frames pass through (default: the shipped `tiny-shapes`' own, whose videos the model sounds).",
    )
    parser.add_argument(
        "--video-model",
        default=TINY_SHAPES_ID,
        help="The video model whose generated videos join the training clips (`tiny-shapes` or a pipeline folder; "
        "with `--generated-clips-per-spec`).",
    )
    parser.add_argument(
        "--generated-clips-per-spec",
        type=int,
        default=0,
        help="Videos `--video-model` generates of each training caption (bouncing ones `--bouncing-repeats` times as "
        "often), sounded where their frames bounce, beside the generator's clips (0: none).",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the clips, every initialisation and the noise.")
    parser.add_argument("--clips-per-spec", type=int, default=4, help="Training clips per caption (100 captions).")
    parser.add_argument(
        "--bouncing-repeats",
        type=int,
        default=4,
        help="Training clips of each bouncing caption, in multiples of `--clips-per-spec` (the only clips that sound).",
    )
    parser.add_argument(
        "--eval-clips-per-spec", type=int, default=2, help="Held-out clips per held-out caption (20 captions)."
    )
    parser.add_argument("--audio-vae-steps", type=int, default=600, help="Optimizer steps of the audio VAE.")
    parser.add_argument("--audio-vae-channels", type=int, nargs=3, default=[16, 32, 32], help="Its block widths.")
    parser.add_argument(
        "--vocoder-quiet-quantile",
        type=float,
        default=1.0,
        help="Where each tone's loudness starts in the vocoder: above this share of the mel levels of frames without "
        "the tone (`fit_tone_vocoder`'s `quiet_quantile`; 1, above all of them, keeps silent what the audio VAE leaks "
        "beside a beep).",
    )
    parser.add_argument(
        "--sync-encoder-steps", type=int, default=8000, help="Optimizer steps of the Synchformer stand-in."
    )
    parser.add_argument("--hidden-size", type=int, default=128, help="V2A transformer width (a multiple of 16).")
    parser.add_argument("--num-layers", type=int, default=2, help="V2A transformer blocks.")
    parser.add_argument("--frequency-patch", type=int, default=8, help="Latent mel bins per token (1, 2, 4, 8 or 16).")
    parser.add_argument("--train-steps", type=int, default=10000, help="Optimizer steps of the V2A transformer.")
    parser.add_argument("--batch-size", type=int, default=16, help="Clips per step of the V2A transformer.")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Peak learning rate of the transformer.")
    parser.add_argument("--num-inference-steps", type=int, default=25, help="Sampling steps when measuring.")
    parser.add_argument("--guidance-scale", type=float, default=3.0, help="Guidance scale when measuring.")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads torch uses (1 or 2).")
    parser.add_argument("--stop-after", choices=STAGES, default="measure", help="Stop after this stage.")
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Every setting checked before any work starts."""
    positive = (
        "clips_per_spec",
        "bouncing_repeats",
        "eval_clips_per_spec",
        "audio_vae_steps",
        "sync_encoder_steps",
        "num_layers",
        "train_steps",
        "batch_size",
    )
    check_run_flags(args, (*positive, "num_inference_steps"), rates=("learning_rate",))
    if not args.guidance_scale >= 1:
        raise ValueError(f"`--guidance-scale` must be >= 1 (1: no guidance), got {args.guidance_scale}.")
    if args.hidden_size < 16 or args.hidden_size % 16:
        raise ValueError(f"`--hidden-size` must be a positive multiple of 16 (4 heads), got {args.hidden_size}.")
    if args.frequency_patch not in (1, 2, 4, 8, 16):
        raise ValueError(
            f"`--frequency-patch` must divide the 16 latent mel bins (1, 2, 4, 8 or 16), got {args.frequency_patch}."
        )
    token_values = 8 * args.frequency_patch  # 8 latent channels x the bins of a token
    if args.hidden_size < token_values:
        raise ValueError(
            f"`--hidden-size` must be at least the {token_values} values a token carries (8 latent channels x "
            f"`--frequency-patch` {args.frequency_patch}), got {args.hidden_size}: a narrower transformer cannot "
            "carry its input's noise through to the velocity it predicts, and its sound stays buried in noise."
        )
    if any(width < 4 or width % 4 for width in args.audio_vae_channels):
        raise ValueError(
            f"`--audio-vae-channels` must be multiples of 4 (its 4 norm groups), got {args.audio_vae_channels}."
        )
    if not 0.0 < args.vocoder_quiet_quantile <= 1.0:
        raise ValueError(f"`--vocoder-quiet-quantile` must be in (0, 1], got {args.vocoder_quiet_quantile}.")
    if args.generated_clips_per_spec < 0:
        raise ValueError(f"`--generated-clips-per-spec` must be >= 0, got {args.generated_clips_per_spec}.")
    args.video_vae = _video_vae_folder(args.video_vae)
    args.video_model = video_pipeline_folder(str(args.video_model), "--video-model").resolve()


def _video_vae_folder(path: Path) -> Path:
    """The `AutoencoderKLCogVideoX` folder `path` is, or holds as `vae/`."""
    for folder in (path, path / "vae"):
        config = folder / "config.json"
        if config.is_file() and json.loads(config.read_text()).get("_class_name") == "AutoencoderKLCogVideoX":
            return folder.resolve()
    raise ValueError(
        f"`--video-vae` {path} is neither an AutoencoderKLCogVideoX folder nor a pipeline folder with one in vae/."
    )


def _stage_settings(args: argparse.Namespace) -> dict[str, dict]:
    """What each stage's result depends on (its own settings and those of the stages before it)."""
    data = {
        "seed": args.seed,
        "video_vae": str(args.video_vae),
        "clips_per_spec": args.clips_per_spec,
        "eval_clips_per_spec": args.eval_clips_per_spec,
    }
    if args.bouncing_repeats != 1:
        data["bouncing_repeats"] = args.bouncing_repeats
    if args.generated_clips_per_spec:
        data["generated_clips_per_spec"] = args.generated_clips_per_spec
        data["video_model"] = str(args.video_model)
    audio_vae = {
        **data,
        "audio_vae_steps": args.audio_vae_steps,
        "audio_vae_channels": list(args.audio_vae_channels),
        "audio_vae_learning_rate": AUDIO_VAE_LEARNING_RATE,
        "audio_vae_loud_weight": AUDIO_VAE_LOUD_WEIGHT,
        "audio_vae_windows": [AUDIO_VAE_WINDOW, WINDOWS_PER_BOUNCE],
        "audio_vae_latents": "standardised per channel",
    }
    vocoder = {**audio_vae, "vocoder": "tones, fitted on true, audio VAE or both mels"}
    if args.vocoder_quiet_quantile < 1.0:
        vocoder["vocoder_quiet_quantile"] = args.vocoder_quiet_quantile
    sync_encoder = {**data, "sync_encoder_steps": args.sync_encoder_steps, "sync_encoder_batch_size": SYNC_BATCH_SIZE}
    untrained = {
        **vocoder,
        **sync_encoder,
        "hidden_size": args.hidden_size,
        "num_layers": args.num_layers,
        "frequency_patch": args.frequency_patch,
    }
    transformer = {
        **untrained,
        "train_steps": args.train_steps,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
    }
    measure = {
        **transformer,
        "num_inference_steps": args.num_inference_steps,
        "guidance_scale": args.guidance_scale,
    }
    return {
        "data": data,
        "audio_vae": audio_vae,
        "vocoder": vocoder,
        "sync_encoder": sync_encoder,
        "untrained": untrained,
        "transformer": transformer,
        "export": transformer,
        "measure": measure,
    }


def _write_data(folder: Path, args: argparse.Namespace) -> dict:
    from diffusers import AutoencoderKLCogVideoX

    from .sounding_shapes import read_sounding_rows, write_sounding_dataset
    from .synthetic_flashes import write_csv_manifest
    from .synthetic_shapes import repeat_bouncing, split_specs

    vae = AutoencoderKLCogVideoX.from_pretrained(args.video_vae, torch_dtype=torch.float32).eval()
    training, held_out = split_specs(CLIP_FORMAT_V2.directions)
    training = repeat_bouncing(training, args.bouncing_repeats)
    manifest = write_sounding_dataset(folder / "train", training, args.clips_per_spec, args.seed, vae=vae)
    write_sounding_dataset(
        folder / "held_out", held_out, args.eval_clips_per_spec, args.seed + HELD_OUT_SEED_OFFSET, vae=vae
    )
    report = {"train_clips": len(training) * args.clips_per_spec}
    if args.generated_clips_per_spec:
        generated = _write_generated(folder / "train", training, args)
        rows = [*read_sounding_rows(manifest), *read_sounding_rows(generated)]
        write_csv_manifest(manifest, MANIFEST_COLUMNS, [[row[column] for column in MANIFEST_COLUMNS] for row in rows])
        records = read_sounding_manifest(generated)
        report["generated_clips"] = len(records)
        report["generated_bouncing_clips_that_bounce"] = sum(
            bool(record.bounce_times) for record in records if record.spec.direction == BOUNCING
        )
        report["generated_clips_that_bounce"] = sum(bool(record.bounce_times) for record in records)
    return {**report, "held_out_clips": len(held_out) * args.eval_clips_per_spec}


def _write_generated(folder: Path, specs, args: argparse.Namespace) -> Path:
    """Videos `--video-model` generates of `specs`' captions, sounded where they bounce, in `folder/video/` with
    their own manifest (`GENERATED_MANIFEST`) beside the generator clips' one."""
    from diffusers import DiffusionPipeline

    from .sounding_shapes import write_generated_clips

    video_pipeline = DiffusionPipeline.from_pretrained(args.video_model, torch_dtype=torch.float32)
    video_pipeline.set_progress_bar_config(disable=True)
    return write_generated_clips(
        video_pipeline,
        specs,
        args.generated_clips_per_spec,
        folder,
        seed=args.seed * 1_000_003 + GENERATED_SEEDS,
        sound=True,
        manifest_name=GENERATED_MANIFEST,
    )


def _sounds(manifest: Path) -> tuple[np.ndarray, torch.Tensor]:
    """The sound of each clip of `manifest`, read back from its mp4 as training reads it, `[N, samples]` (cut or
    padded to the clip's length), and its log-mel spectrogram `[N, T, 64]`."""
    from ..processors import AudioLDMMelFeatureExtractor
    from ..utils.media_io import read_audio
    from .audio_vae import waveforms_to_mels

    samples = round(CLIP_DURATION * SAMPLE_RATE)
    waveforms = [read_audio(record.path, SAMPLE_RATE)[:samples] for record in read_sounding_manifest(manifest)]
    waveforms = np.stack([np.pad(waveform, (0, samples - len(waveform))) for waveform in waveforms])
    extractor = AudioLDMMelFeatureExtractor()
    return waveforms, waveforms_to_mels(list(waveforms), extractor, SAMPLE_RATE)[:, 0]


def _audio_vae_windows(mels: torch.Tensor, records, seed: int) -> torch.Tensor:
    """Windows of `AUDIO_VAE_WINDOW` mel frames `[M, 1, W, 64]` the audio VAE trains on: one at random from every
    clip, and `WINDOWS_PER_BOUNCE` more around each bounce, the beep at a random place inside (a beep is a tenth of
    a second in a clip of hiss, which a VAE trained on whole clips learns to average away)."""
    generator = torch.Generator().manual_seed(seed)
    frames = mels.shape[1]
    windows = []
    for mel, record in zip(mels, records, strict=True):
        starts = [int(torch.randint(frames - AUDIO_VAE_WINDOW + 1, (1,), generator=generator))]
        for moment in record.bounce_times:
            for _ in range(WINDOWS_PER_BOUNCE):
                before = int(torch.randint(4, AUDIO_VAE_WINDOW - 20, (1,), generator=generator))
                starts.append(
                    min(max(round(moment * SAMPLE_RATE / HOP_LENGTH) - before, 0), frames - AUDIO_VAE_WINDOW)
                )
        windows += [mel[start : start + AUDIO_VAE_WINDOW] for start in starts]
    return torch.stack(windows)[:, None]


def _train_audio_vae(folder: Path, work: Path, args: argparse.Namespace) -> dict:
    """Trains and saves the audio VAE on windows of the training clips' mel spectrograms (`_audio_vae_windows`),
    loud bins weighted (`AUDIO_VAE_LOUD_WEIGHT`), the posterior mode decoded."""
    from .audio_vae import build_audio_vae, train_audio_vae

    manifest = work / "data" / "train" / "manifest.csv"
    _, mels = _sounds(manifest)
    windows = _audio_vae_windows(mels, read_sounding_manifest(manifest), args.seed)
    vae = build_audio_vae(args.audio_vae_channels, args.seed)
    training = train_audio_vae(
        vae,
        windows,
        args.audio_vae_steps,
        batch_size=16,
        learning_rate=AUDIO_VAE_LEARNING_RATE,
        seed=args.seed,
        loud_weight=AUDIO_VAE_LOUD_WEIGHT,
        sample_posterior=False,
    )
    vae.save_pretrained(folder)
    return {
        "l1_first": training.losses[0],
        "l1_last": training.losses[-1],
        "latent_mean": training.latent_mean,
        "latent_std": training.latent_std,
    }


@torch.no_grad()
def _through_vae(vae, mels: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Log-mel spectrograms `[N, T, 64]` as `vae` gives them back (posterior mode, decoded): what the vocoder gets
    from the latents a V2A model generates."""
    return torch.cat(
        [vae.decode(vae.encode(chunk[:, None]).latent_dist.mode()).sample[:, 0] for chunk in mels.split(batch_size)]
    )


def _heard_scores(records, sounds: dict[str, np.ndarray], samples: int) -> dict[str, dict]:
    """`score_sound` of each named set of waveforms (one per record, cut to `samples`) against the records' bounces."""
    from ..evaluation.waveform_sync import hear_waveform, score_sound

    times = [record.bounce_times for record in records]
    names = [record.spec.colour if record.bounce_times else None for record in records]
    scores = {}
    for name, sound in sounds.items():
        heard = [hear_waveform(wave[:samples], SAMPLE_RATE, COLOUR_TONES) for wave in sound]
        scores[name] = asdict(score_sound(times, names, heard))
    return scores


def _fit_vocoder(folder: Path, work: Path, quiet_quantile: float) -> dict:
    """Fits the vocoder on the training clips' true mel spectrograms, on their audio VAE reconstructions (what it
    hears at use), and on both (each tone's first knot at `quiet_quantile` of the levels without it), keeps the one
    whose sound of the reconstructions has the highest onset F1 on the training clips, and saves it; reports how the
    held-out clips sound from their true mel spectrograms through it, alone and through the audio VAE first, against
    their original sound."""
    from diffusers import AutoencoderKL

    from .audio_vocoder import fit_tone_vocoder

    vae = AutoencoderKL.from_pretrained(work / "audio_vae").eval()
    train = work / "data" / "train" / "manifest.csv"
    waveforms, mels = _sounds(train)
    padded = np.pad(waveforms, ((0, 0), (0, max(0, mels.shape[1] * HOP_LENGTH - waveforms.shape[1]))))
    reconstructed = _through_vae(vae, mels)
    tones = list(COLOUR_TONES.values())
    fitting_sets = {
        "true mels": (mels, padded),
        "true and audio VAE mels": (torch.cat([mels, reconstructed]), np.concatenate([padded, padded])),
        "audio VAE mels": (reconstructed, padded),
    }
    candidates = {
        name: fit_tone_vocoder(*fitting_set, tones, quiet_quantile=quiet_quantile)
        for name, fitting_set in fitting_sets.items()
    }
    with torch.no_grad():
        sounds = {name: vocoder(reconstructed).numpy() for name, vocoder in candidates.items()}
    choice = _heard_scores(read_sounding_manifest(train), sounds, waveforms.shape[1])
    fitted_on = max(choice, key=lambda name: choice[name]["onset_f1"])
    vocoder = candidates[fitted_on]
    vocoder.save_pretrained(folder)

    held_out = work / "data" / "held_out" / "manifest.csv"
    waveforms, mels = _sounds(held_out)
    with torch.no_grad():
        sounds = {
            "original sound": waveforms,
            "vocoder (true mel)": vocoder(mels).numpy(),
            "audio VAE + vocoder": vocoder(_through_vae(vae, mels)).numpy(),
        }
    report = _heard_scores(read_sounding_manifest(held_out), sounds, waveforms.shape[1])
    return {"fitted_on": fitted_on, "train_choice": choice, "held_out": report}


def _pretrain_sync_encoder(folder: Path, work: Path, args: argparse.Namespace) -> dict:
    """Trains the Synchformer stand-in on the training clips' frames and beep onsets, saves it, and reports how often
    its features find the beep of a held-out clip."""
    from ..models import SynchformerEncoder
    from ..utils.media_io import read_video
    from .sync_pretraining import onset_hit_rate, pretrain_sync_encoder, sync_pixel_values
    from .tiny_v2a_sources import TINY_SYNCHFORMER_SETTINGS

    torch.manual_seed(args.seed)
    encoder = SynchformerEncoder(**TINY_SYNCHFORMER_SETTINGS)
    clips = {}
    for split in ("train", "held_out"):
        records = read_sounding_manifest(work / "data" / split / "manifest.csv")
        videos = [read_video(record.path) for record in records]
        clips[split] = (sync_pixel_values(encoder, videos, CLIP_DURATION), [r.bounce_times for r in records])
    training = pretrain_sync_encoder(
        encoder, *clips["train"], args.sync_encoder_steps, SYNC_BATCH_SIZE, seed=args.seed
    )
    encoder.save_pretrained(folder)
    return {
        "loss_first": training.losses[0],
        "loss_last": float(np.mean(training.losses[-50:])),
        "held_out_onset_hit_rate": onset_hit_rate(encoder, training.head, *clips["held_out"]),
    }


def _write_untrained(folder: Path, work: Path, args: argparse.Namespace) -> None:
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan

    from ..models import SynchformerEncoder
    from ..utils.media_io import read_video
    from .tiny_v2a_sources import assemble_tiny_v2a_pipeline, write_tiny_v2a_sources

    records = read_sounding_manifest(work / "data" / "train" / "manifest.csv")
    sources = write_tiny_v2a_sources(
        work / "sources",
        AutoencoderKL.from_pretrained(work / "audio_vae"),
        SpeechT5HifiGan.from_pretrained(work / "vocoder"),
        seed=args.seed,
        calibration_captions=[record.caption for record in records],
        calibration_videos=[read_video(record.path) for record in records],
        sync_encoder=SynchformerEncoder.from_pretrained(work / "sync_encoder").eval(),
    )
    assemble_tiny_v2a_pipeline(
        folder, sources, CLIP_DURATION, args.hidden_size, args.num_layers, args.frequency_patch, seed=args.seed
    )


def _training_config(args: argparse.Namespace, work: Path):
    from ..training import TrainingConfig

    bouncing = [
        r for r in read_sounding_manifest(work / "data" / "held_out" / "manifest.csv") if r.spec.direction == BOUNCING
    ]
    return TrainingConfig(
        model_family="v2a",
        training_mode="full",
        pretrained_model_name_or_path=str(work / "untrained"),
        dataset=str(work / "data" / "train" / "manifest.csv"),
        clip_duration=CLIP_DURATION,
        output_dir=str(work / "transformer"),
        train_batch_size=args.batch_size,
        max_train_steps=args.train_steps,
        learning_rate=args.learning_rate,
        lr_scheduler="constant_with_warmup",
        lr_warmup_steps=min(100, args.train_steps // 10),
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        vd_weight=0.0,
        seed=args.seed,
        checkpointing_steps=max(1, args.train_steps // 4),
        checkpoints_total_limit=1,
        validation_steps=0,
        validation_videos=[str(record.path) for record in bouncing[:2]],
        validation_prompts=[record.caption for record in bouncing[:2]],
        validation_num_inference_steps=args.num_inference_steps,
        validation_guidance_scale=args.guidance_scale,
        report_to="none",
    ).validate()


def _train_transformer(args: argparse.Namespace, work: Path, settings: dict) -> None:
    """Trains the transformer, resuming from the last checkpoint of a killed run with the same settings."""
    from ..training import prepare_data, train

    resume = can_resume(work / "transformer", settings)
    config = _training_config(args, work)
    prepare_data(config)
    config.resume_from_checkpoint = "latest" if resume and (work / "transformer" / "checkpoints").is_dir() else None
    train(config)


def _measure(folder: Path, work: Path, args: argparse.Namespace) -> dict:
    from .measure_shapes_v2a import measure_pipelines, sound_table

    pipelines = {"untrained": work / "untrained", "trained": args.output_dir / "pipeline"}
    generation = {"num_inference_steps": args.num_inference_steps, "guidance_scale": args.guidance_scale}
    results = measure_pipelines(
        pipelines, work / "data" / "held_out" / "manifest.csv", folder, seed=args.seed, **generation
    )
    print(sound_table(results))
    return {"held_out": results}


def vocoder_table(report: dict) -> str:
    """How the held-out clips sound from their true mel spectrograms (the `vocoder` stage's report)."""
    rows = [
        "| sound of the held-out clips | onset F1 (±60 ms) | mean abs. offset | pitch accuracy | onsets per no-bounce clip |",
        "|---|---|---|---|---|",
    ]
    for name, score in report.items():
        rows.append(
            f"| {name} | {score['onset_f1']:.2f} | {score['mean_absolute_offset'] * 1000:.0f} ms "
            f"| {score['pitch_accuracy']:.0%} | {score['onsets_per_silent_clip']:.2f} |"
        )
    return "\n".join(rows)


def _write_results(output_dir: Path, done: dict[str, dict]) -> None:
    """`results.json` (every stage's seconds and report) and `results.md` (the tables) in `output_dir`."""
    from .measure_shapes_v2a import sound_table

    tables = []
    if "vocoder" in done:
        tables.append(
            vocoder_table(done["vocoder"]["held_out"]) + f"\n\nVocoder fitted on {done['vocoder']['fitted_on']}."
        )
    if "measure" in done:
        tables.append(sound_table(done["measure"]["held_out"]))
    seconds = {name: round(stage["seconds"], 1) for name, stage in done.items()}
    tables.append(f"Stage times (s): {seconds}.")
    report = {name: {key: value for key, value in stage.items() if key != "settings"} for name, stage in done.items()}
    with atomic_output_file(output_dir / "results.json") as temporary:
        temporary.write_text(json.dumps(report, indent=2, default=float) + "\n")
    with atomic_output_file(output_dir / "results.md") as temporary:
        temporary.write_text("\n\n".join(tables) + "\n")
    print("\n\n".join(tables))


def run(args: argparse.Namespace) -> Path:
    """Runs (or reuses) the stages up to `--stop-after`; returns the pipeline folder."""
    check_args(args)
    torch.set_num_threads(args.threads)
    work = args.output_dir / "work"
    settings = _stage_settings(args)
    steps = {
        "data": lambda folder: _write_data(folder, args),
        "audio_vae": lambda folder: _train_audio_vae(folder, work, args),
        "vocoder": lambda folder: _fit_vocoder(folder, work, args.vocoder_quiet_quantile),
        "sync_encoder": lambda folder: _pretrain_sync_encoder(folder, work, args),
        "untrained": lambda folder: _write_untrained(folder, work, args),
        "transformer": lambda folder: _train_transformer(args, work, settings["transformer"]),
        "export": lambda folder: export_half_precision(work / "transformer" / "pipeline", folder),
        "measure": lambda folder: _measure(folder, work, args),
    }
    folders = {"export": args.output_dir / "pipeline", "measure": args.output_dir / "measure"}
    stages = [Stage(name, folders.get(name, work / name), settings[name], steps[name]) for name in STAGES]
    done = run_stages(stages, work, args.stop_after)
    _write_results(args.output_dir, done)
    return args.output_dir / "pipeline"


def main(argv: Sequence[str] | None = None) -> int:
    return run_script(build_parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
