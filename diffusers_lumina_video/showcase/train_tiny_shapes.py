"""Trains `tiny-shapes` from scratch on a CPU: shape clips, a tiny VAE, then every weight of a Multi-scale Next-DiT
with the package's trainer, and writes the half-precision pipeline folder that ships with the package.

    python -m diffusers_lumina_video.showcase.train_tiny_shapes --output-dir tiny-shapes-run

Stages write into `OUTPUT_DIR/work/` and are reused when run again with the same settings (a killed run continues
where it stopped; the trainer resumes the last checkpoint of a run started with the same settings): rendered clips,
the trained VAE and its reconstruction report, the pipeline the transformer starts from (random, or `--init-from`'s
weights), the training run, and the VAE with its encoder fitted to the decoder on the videos the trained model makes
(what video-to-video encodes). The result is `OUTPUT_DIR/pipeline/`.
`--clip-format v2` makes every stage use two-second clips (`CLIP_FORMAT_V2`: 17 frames, bouncing as well; v4 the same with
every bounce heading left first, v5 with those bounces nearer the clip's middle).
`--init-from` trains progressively, as the paper does (short clips first, then longer ones): the VAE and transformer
start from a model trained on the shorter format, such as a v1 run's `pipeline`.
"""

import argparse
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..utils.atomic import atomic_output_file
from .builtin_models import TINY_SHAPES_MULTI_SCALE, TINY_SHAPES_SHIFT, tiny_shapes_presets
from .stages import Stage, can_resume, check_run_flags, export_half_precision, run_script, run_stages
from .synthetic_shapes import BOUNCING, CLIP_FORMAT_V1, CLIP_FORMATS, ClipFormat


logger = logging.getLogger(__name__)

STAGES = ("data", "vae", "vae_refine", "initial", "transformer", "encoder", "export")
# Videos the trained model generates for the encoder to invert its decoder on, and pixels a round trip may move a
# shape by and still count as keeping its track (the video-to-video measure in docs/video_to_video.md).
ENCODER_FIT_VIDEOS = 96
ROUND_TRIP_PX = 3.0
# Scale-aware time shifts for these small latents: the reference's ratios between patchifications (1 : 2 : 4) from
# the finest one's, which is also the shift the shipped model samples with.
SHAPES_TIMESTEP_SHIFTS = {"1x2x2": TINY_SHAPES_SHIFT, "2x2x2": 2 * TINY_SHAPES_SHIFT, "2x4x4": 4 * TINY_SHAPES_SHIFT}
# Share of training clips captioned without their speed word ("a red circle moving left").
SPEEDLESS_CAPTIONS = 0.25
# The VAE for clips of each length, by the frames a model makes of them (a clip format's `num_frames - 1`): its
# temporal compression and the weight of its loss on frame-to-frame differences. The 4x VAE's first four decoded
# frames are identical (`shapes_vae`), a jump v1's 8 frames hide and two-second clips' 16 would not.
VAE_TEMPORAL = {
    8: {"compression": 4, "weight": 0.0},
    16: {"compression": 2, "weight": 30.0},
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m diffusers_lumina_video.showcase.train_tiny_shapes", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--output-dir", type=Path, required=True, help="Work folder and result (OUTPUT_DIR/pipeline).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the clips, every initialisation and the noise.")
    parser.add_argument(
        "--clip-format",
        choices=list(CLIP_FORMATS),
        default=CLIP_FORMAT_V1.name,
        help="The clips of every stage: v1, the first model's (9 frames); v2, the shipped model's second stage's (17 "
        "frames at 8 fps, shapes bouncing left and right as well; see docs/showcase.md); v3, v2's inside a wall drawn "
        "along the frame's edge, for the shape to bounce off; v4, v2's with every bouncing shape heading left first; "
        "v5, v4's with every bounce nearer the clip's middle (the shipped model's last stages).",
    )
    parser.add_argument(
        "--clips-per-spec", type=int, default=8, help="Training clips per caption (82 captions; 100 in format v2)."
    )
    parser.add_argument(
        "--bouncing-repeats",
        type=int,
        default=1,
        help="Clips of each bouncing caption, in multiples of `--clips-per-spec` (bouncing is the hardest motion to "
        "learn: a later stage can show it more often).",
    )
    parser.add_argument(
        "--vae-init",
        type=Path,
        help="Start the VAE from this one (a VAE folder, or a pipeline folder with vae/, such as a v1 run's "
        "work/vae_refine) instead of from scratch, at the clip format's temporal compression.",
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        help="Progressive training: start the VAE and the transformer (its width and depth too) from this pipeline "
        "folder, a model of the shorter clip format (a v1 run's pipeline/, the shipped tiny-shapes), instead of from "
        "scratch; its text encoder keeps its words' features and gets new random embeddings for the new words.",
    )
    parser.add_argument(
        "--vae-steps",
        type=int,
        default=2500,
        help="Optimizer steps of the VAE (0: keep the `--vae-init` or `--init-from` VAE as it is).",
    )
    parser.add_argument("--vae-batch-size", type=int, default=8)
    parser.add_argument("--vae-crop", type=int, default=16, help="Side of the random windows the VAE trains on.")
    parser.add_argument("--vae-learning-rate", type=float, default=3e-3)
    parser.add_argument(
        "--vae-refine-steps",
        type=int,
        default=400,
        help="Further VAE steps on 32 px windows at a third of the rate (0: none).",
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        default=13000,
        help="Optimizer steps of the transformer (the shipped model: 13000, single-scale).",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="Clips per micro-batch of the transformer.")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="Peak learning rate of the transformer.")
    parser.add_argument("--hidden-size", type=int, default=128, help="Transformer width (a multiple of 64).")
    parser.add_argument("--num-layers", type=int, default=4, help="Transformer blocks.")
    parser.add_argument(
        "--multi-scale",
        action="store_true",
        help="Train all three patchifications (the multi-scale recipe: one micro-batch of each per step, scale-aware "
        "shifts) instead of only the finest (1x2x2), for comparison: a multi-scale step sees 1.625 times the tokens "
        "of a single-scale one (v1: 128 + 64 + 16 per clip against 128; v2: 512 + 256 + 64 against 512), so equal "
        "compute is the single-scale steps / 1.625.",
    )
    parser.add_argument(
        "--multi-scale-patches",
        nargs="+",
        choices=list(SHAPES_TIMESTEP_SHIFTS),
        default=None,
        metavar="PATCH",
        help=f"With `--multi-scale`: the patchifications it trains, one micro-batch each per step (default: all of "
        f"{list(SHAPES_TIMESTEP_SHIFTS)}; 1x2x2, the finest, among them). Leaving 2x4x4 out trains the shared "
        "blocks for a 2x2x2-then-1x2x2 schedule without the coarsest scale's loss.",
    )
    parser.add_argument(
        "--coarse-scales-only",
        action="store_true",
        help="Train only the two coarse patchifications' embedders and output heads, the finest one and every "
        "shared block frozen (`freeze_shared_blocks`): gives a model trained at the finest scale (an `--init-from` "
        "pipeline) coarse-to-fine sampling without changing a single-scale video it makes.",
    )
    parser.add_argument(
        "--encoder-steps",
        type=int,
        default=300,
        help="Steps fitting the VAE's encoder to its frozen decoder on the videos the trained model makes, so that "
        "video-to-video keeps its input's motion (0: the encoder as trained with the decoder). Generated videos do "
        "not change.",
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads torch uses (1 or 2).")
    parser.add_argument("--stop-after", choices=STAGES, default="export", help="Stop after this stage.")
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Every setting checked before any work starts."""
    if args.vae_refine_steps < 0:
        raise ValueError(f"`--vae-refine-steps` must be >= 0 (0: no refinement), got {args.vae_refine_steps}.")
    if args.encoder_steps < 0:
        raise ValueError(f"`--encoder-steps` must be >= 0 (0: no fitting), got {args.encoder_steps}.")
    if args.coarse_scales_only and (args.multi_scale or args.init_from is None):
        raise ValueError(
            "`--coarse-scales-only` trains the coarse patchifications of a trained model: give `--init-from`, and "
            "not `--multi-scale`."
        )
    if args.multi_scale_patches is not None:
        if not args.multi_scale:
            raise ValueError("`--multi-scale-patches` picks the patchifications of `--multi-scale`: give both.")
        if "1x2x2" not in args.multi_scale_patches or len(set(args.multi_scale_patches)) < 2:
            raise ValueError(
                "`--multi-scale-patches` must name 1x2x2 (the finest, which single-scale sampling uses) and at least "
                f"one coarser patchification of {list(SHAPES_TIMESTEP_SHIFTS)[1:]}, got {args.multi_scale_patches}."
            )
    if args.vae_steps == 0 and args.vae_init is None and args.init_from is None:
        raise ValueError("`--vae-steps 0` keeps a given VAE as it is: give `--vae-init` or `--init-from` with it.")
    positive = (
        "clips_per_spec",
        "bouncing_repeats",
        *(("vae_steps",) if args.vae_steps != 0 else ()),
        "vae_batch_size",
    )
    check_run_flags(
        args, (*positive, "train_steps", "batch_size", "num_layers"), ("learning_rate", "vae_learning_rate")
    )
    size = CLIP_FORMATS[args.clip_format].size
    if args.vae_crop < 16 or args.vae_crop > size or args.vae_crop % 16:
        raise ValueError(f"`--vae-crop` must be a multiple of 16 from 16 to {size}, got {args.vae_crop}.")
    if args.hidden_size < 64 or args.hidden_size % 64:
        raise ValueError(
            f"`--hidden-size` must be a positive multiple of 64 (4 heads of 16k), got {args.hidden_size}."
        )
    if args.init_from is not None:
        _take_init_from(args)
    if args.vae_init is not None and not (args.vae_init / "config.json").is_file():
        if not (args.vae_init / "vae" / "config.json").is_file():
            raise ValueError(f"`--vae-init` {args.vae_init} is neither a VAE folder nor a pipeline folder with vae/.")
        args.vae_init = args.vae_init / "vae"


def _take_init_from(args: argparse.Namespace) -> None:
    """`--init-from` fixes where the VAE starts and the transformer's shape: those of the given pipeline."""
    if not (args.init_from / "model_index.json").is_file() or not (args.init_from / "transformer").is_dir():
        raise ValueError(f"`--init-from` {args.init_from} is not a pipeline folder (model_index.json, transformer/).")
    if args.vae_init is not None:
        raise ValueError("Give `--init-from` or `--vae-init`, not both: `--init-from` starts the VAE from its own.")
    args.vae_init = args.init_from / "vae"
    transformer = json.loads((args.init_from / "transformer" / "config.json").read_text())
    args.hidden_size, args.num_layers = transformer["hidden_size"], transformer["num_layers"]


def _stage_settings(args: argparse.Namespace) -> dict[str, dict]:
    """What each stage's result depends on (its own settings and those of the stages before it)."""
    clip_format = CLIP_FORMATS[args.clip_format]
    clips = {"seed": args.seed, "frames": clip_format.num_frames, "size": clip_format.size}
    # Runs of the shipped model's clips predate the option: their finished stages stay valid.
    if clip_format.name != CLIP_FORMAT_V1.name:
        clips["clip_format"] = clip_format.name
    data = {**clips, "clips_per_spec": args.clips_per_spec, "speedless_captions": SPEEDLESS_CAPTIONS}
    if args.bouncing_repeats != 1:
        data["bouncing_repeats"] = args.bouncing_repeats
    # The VAE trains on clips it renders itself, not on the written dataset.
    vae = {
        **clips,
        **({} if clip_format.name == CLIP_FORMAT_V1.name else {"vae_init": str(args.vae_init), **_vae_temporal(args)}),
        "vae_steps": args.vae_steps,
        "vae_batch_size": args.vae_batch_size,
        "vae_crop": args.vae_crop,
        "vae_learning_rate": args.vae_learning_rate,
    }
    vae_refine = {**vae, "vae_refine_steps": args.vae_refine_steps}
    initial = {**vae_refine, "hidden_size": args.hidden_size, "num_layers": args.num_layers}
    if args.init_from is not None:
        initial["init_from"] = str(args.init_from)
    transformer = {
        **data,
        **initial,
        "train_steps": args.train_steps,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "multi_scale": args.multi_scale,
    }
    if args.coarse_scales_only:
        transformer["coarse_scales_only"] = True
    trained = _trained_patch_sizes(args)
    if args.multi_scale and trained != list(SHAPES_TIMESTEP_SHIFTS):
        transformer["multi_scale_patches"] = trained
    encoder = {**transformer, "encoder_steps": args.encoder_steps}
    return {
        "data": data,
        "vae": vae,
        "vae_refine": vae_refine,
        "initial": initial,
        "transformer": transformer,
        "encoder": encoder,
        "export": encoder,
    }


def _vae_temporal(args: argparse.Namespace) -> dict:
    return VAE_TEMPORAL[CLIP_FORMATS[args.clip_format].num_frames - 1]


def _render_data(folder: Path, args: argparse.Namespace) -> None:
    from .synthetic_shapes import repeat_bouncing, split_specs, write_shape_dataset

    clip_format = CLIP_FORMATS[args.clip_format]
    train_specs, _ = split_specs(clip_format.directions)
    write_shape_dataset(
        folder,
        repeat_bouncing(train_specs, args.bouncing_repeats),
        args.clips_per_spec,
        args.seed,
        speedless_captions=SPEEDLESS_CAPTIONS,
        clip_format=clip_format,
    )


def _train_vae(folder: Path, args: argparse.Namespace, start: Path | None = None) -> dict:
    """Trains and saves the VAE: from scratch on `--vae-crop` windows, or, from the one saved in `start`, further on
    32 px windows at a third of the rate (shapes whole in view once colours are learnt). Returns its reconstruction
    report on clips of held-out captions."""
    from diffusers import AutoencoderKLCogVideoX

    from .shape_attributes import read_clip_attributes, read_track, track_smoothness
    from .shapes_vae import fit_scaling_factor, random_clips, reconstruct, shapes_vae, train_shapes_vae
    from .synthetic_shapes import split_specs

    clip_format = CLIP_FORMATS[args.clip_format]
    train_specs, held_out = split_specs(clip_format.directions)
    torch.manual_seed(args.seed)
    temporal = _vae_temporal(args)
    if start is not None:
        vae = AutoencoderKLCogVideoX.from_pretrained(start)
    elif args.vae_init is not None:
        ratio = temporal["compression"]
        vae = AutoencoderKLCogVideoX.from_pretrained(
            args.vae_init, temporal_compression_ratio=ratio, torch_dtype=torch.float32
        )
    else:
        vae = shapes_vae(temporal_compression_ratio=temporal["compression"])
    steps = args.vae_steps if start is None else args.vae_refine_steps
    # No steps: the given VAE as it is (its scaling factor too), for a model that goes on with the same latents.
    losses = (
        []
        if steps == 0
        else train_shapes_vae(
            vae,
            train_specs,
            steps,
            args.vae_batch_size,
            args.vae_learning_rate if start is None else args.vae_learning_rate / 3,
            size=clip_format.size,
            crop=args.vae_crop if start is None else 32,
            num_frames=clip_format.num_frames,
            temporal_weight=temporal["weight"],
            seed=args.seed if start is None else args.seed + 1,
            clip_format=clip_format,
        )
    )
    rng = np.random.default_rng(args.seed + 1)
    fitting_clips = random_clips(train_specs, 32, rng, clip_format=clip_format)
    factor = vae.config.scaling_factor if steps == 0 else fit_scaling_factor(vae, fitting_clips)
    clips = random_clips(held_out, 32, rng, clip_format=clip_format)
    decoded = reconstruct(vae, clips)
    target = clips[:, :, 1:]
    mse = float((decoded - target).pow(2).mean())
    agree = dict.fromkeys(("colour", "shape", "direction"), 0)
    bouncing = BOUNCING in clip_format.directions
    smoothness = []
    for original, result in zip(target, decoded, strict=True):
        expected = read_clip_attributes((original.permute(1, 2, 3, 0).numpy() + 1) / 2, bouncing)
        frames = (result.permute(1, 2, 3, 0).numpy() + 1) / 2
        found = read_clip_attributes(frames, bouncing)
        for name in agree:
            agree[name] += getattr(expected, name) == getattr(found, name)
        smoothness.append(track_smoothness(read_track(frames), expected.direction))
    vae.save_pretrained(folder)
    _write_reconstructions(folder / "reconstructions.png", target[:6], decoded[:6])
    return {
        "psnr_db": 10 * np.log10(4.0 / mse),  # frames in [-1, 1]: peak-to-peak 2
        "attributes_kept": {name: hits / len(clips) for name, hits in agree.items()},
        # Of the reconstructions, in the direction read off the originals (`track_smoothness`).
        "smoothness": float(np.mean(smoothness)),
        "scaling_factor": factor,
        "final_loss": float(np.mean(losses[-20:])) if losses else None,
    }


def _write_reconstructions(path: Path, originals: torch.Tensor, decoded: torch.Tensor) -> None:
    """Each clip's frames (`[3, T, H, W]` in [-1, 1]) as a row, its reconstruction below, for a person to judge."""
    from .shapes_benchmark import frame_strip

    clips, captions = [], []
    for index, (original, result) in enumerate(zip(originals, decoded, strict=True)):
        clips += [(clip.permute(1, 2, 3, 0).numpy() + 1) / 2 for clip in (original, result)]
        captions += [f"held-out clip {index}", f"held-out clip {index}, through the VAE"]
    with atomic_output_file(path) as temporary:
        frame_strip(clips, captions).save(temporary)


def _refine_vae(folder: Path, start: Path, args: argparse.Namespace) -> dict:
    if args.vae_refine_steps == 0:
        shutil.copytree(start, folder, dirs_exist_ok=True)
        return {}
    return _train_vae(folder, args, start)


def _fit_encoder(folder: Path, model: Path, args: argparse.Namespace) -> dict:
    """The trained pipeline's VAE with its encoder fitted to its decoder (`fit_encoder_to_decoder`) on videos the
    pipeline generates from training captions; reports how far a round trip moves the shape in held-out generated
    videos and clips, before and after."""
    from diffusers import DiffusionPipeline

    from .shapes_vae import fit_encoder_to_decoder, random_clips
    from .synthetic_shapes import split_specs

    if args.encoder_steps == 0:
        shutil.copytree(model / "vae", folder, dirs_exist_ok=True)
        return {}
    pipe = DiffusionPipeline.from_pretrained(model)
    clip_format = CLIP_FORMATS[args.clip_format]
    train_specs, held_out = split_specs(clip_format.directions)
    rng = np.random.default_rng(args.seed + 2)
    fitting = _generated_latents(
        pipe, [train_specs[i] for i in rng.integers(len(train_specs), size=ENCODER_FIT_VIDEOS)]
    )
    with torch.no_grad():
        held_out_latents = _generated_latents(pipe, (held_out * 2)[:32], first_seed=len(fitting))
        generated = pipe.vae.decode(held_out_latents).sample.clamp(-1, 1)
    measured = {
        "generated": generated,
        "clips": random_clips(held_out, 32, rng, clip_format=clip_format)[:, :, 1:],
    }
    before = {kind: _round_trip_drift(pipe.vae, videos) for kind, videos in measured.items()}
    losses = fit_encoder_to_decoder(
        pipe.vae, fitting, train_specs, args.encoder_steps, seed=args.seed, clip_format=clip_format
    )
    pipe.vae.save_pretrained(folder)
    after = {kind: _round_trip_drift(pipe.vae, videos) for kind, videos in measured.items()}
    return {"before": before, "after": after, "final_loss": float(np.mean(losses[-20:]))}


@torch.no_grad()
def _generated_latents(pipe, specs: Sequence, first_seed: int = 0) -> torch.Tensor:
    """Unscaled latents `[N, C, F, h, w]` of the videos `pipe` makes for the captions of `specs`, one seed each from
    `first_seed` on."""
    from .shapes_benchmark import generate_clips

    pipe.set_progress_bar_config(desc="Generating videos")
    seeds = range(first_seed, first_seed + len(specs))
    return torch.stack(generate_clips(pipe, specs, seeds, output_type="latent")) / pipe.vae.config.scaling_factor


@torch.no_grad()
def _round_trip_drift(vae, videos: torch.Tensor) -> dict:
    """How far encoding and decoding `videos` (`[N, 3, F, H, W]` in [-1, 1]) moves their shapes: the median of each
    video's largest centroid distance, and the share of videos kept within `ROUND_TRIP_PX` in every frame."""
    from .shape_attributes import read_track

    largest = []
    for video in videos:
        decoded = vae.decode(vae.encode(video[None]).latent_dist.mode()).sample.clamp(-1, 1)[0]
        tracks = [read_track((frames.permute(1, 2, 3, 0).numpy() + 1) / 2) for frames in (video, decoded)]
        distance = np.linalg.norm(tracks[0] - tracks[1], axis=1)
        largest.append(float(np.max(distance)) if np.isfinite(distance).all() else float("inf"))
    return {"median_largest_px": float(np.median(largest)), "kept": float(np.mean(np.array(largest) <= ROUND_TRIP_PX))}


def _trained_patch_sizes(args: argparse.Namespace) -> list[str]:
    """The patchifications the transformer stage trains, finest first."""
    if args.coarse_scales_only:
        return list(SHAPES_TIMESTEP_SHIFTS)[1:]
    if not args.multi_scale:
        return ["1x2x2"]
    chosen = args.multi_scale_patches or list(SHAPES_TIMESTEP_SHIFTS)
    return [patch for patch in SHAPES_TIMESTEP_SHIFTS if patch in chosen]


def _training_config(args: argparse.Namespace, work: Path):
    from ..training import TrainingConfig

    clip_format = CLIP_FORMATS[args.clip_format]
    patch_sizes = _trained_patch_sizes(args)
    return TrainingConfig(
        model_family="video",
        training_mode="full",
        pretrained_model_name_or_path=str(work / "initial"),
        dataset=str(work / "data" / "metadata.jsonl"),
        output_dir=str(work / "transformer"),
        resolution=clip_format.size,
        num_frames=clip_format.num_frames,
        fps=clip_format.fps,
        max_sequence_length=64,
        patch_sizes=patch_sizes,
        freeze_shared_blocks=args.coarse_scales_only,
        timestep_shifts={key: SHAPES_TIMESTEP_SHIFTS[key] for key in patch_sizes},
        ema_decay=0.99,
        caption_dropout=0.1,
        train_batch_size=args.batch_size,
        max_train_steps=args.train_steps,
        learning_rate=args.learning_rate,
        lr_scheduler="cosine",
        lr_warmup_steps=min(50, args.train_steps // 10),
        adam_weight_decay=0.0,
        mixed_precision="no",
        seed=args.seed,
        checkpointing_steps=max(1, args.train_steps // 4),
        checkpoints_total_limit=1,
        validation_steps=0,
        report_to="none",
    ).validate()


def format_presets(clip_format: ClipFormat) -> dict[str, dict]:
    """The named settings of a model trained on `clip_format` clips: it makes their frames after the first."""
    num_frames = clip_format.num_frames - 1
    return tiny_shapes_presets(num_frames, TINY_SHAPES_MULTI_SCALE[num_frames])


def run(args: argparse.Namespace) -> Path:
    check_args(args)
    torch.set_num_threads(args.threads)
    work = args.output_dir / "work"
    settings = _stage_settings(args)
    clip_format = CLIP_FORMATS[args.clip_format]
    steps = {
        "data": lambda folder: _render_data(folder, args),
        "vae": lambda folder: _train_vae(folder, args),
        "vae_refine": lambda folder: _refine_vae(folder, work / "vae", args),
        "initial": lambda folder: _write_initial(folder, work, args),
        "transformer": lambda folder: _train_transformer(args, work, settings["transformer"]),
        "encoder": lambda folder: _fit_encoder(folder, work / "transformer" / "pipeline", args),
        # the coarse-to-fine schedule is measured after training: the format's settings as they are now
        "export": lambda folder: export_half_precision(
            work / "transformer" / "pipeline",
            folder,
            vae=work / "encoder",
            sampling_presets=format_presets(clip_format),
        ),
    }
    stages = [
        Stage(name, args.output_dir / "pipeline" if name == "export" else work / name, settings[name], steps[name])
        for name in STAGES
    ]
    run_stages(stages, work, args.stop_after)
    return args.output_dir / "pipeline"


def _write_initial(folder: Path, work: Path, args: argparse.Namespace) -> None:
    from diffusers import AutoencoderKLCogVideoX, DiffusionPipeline

    from .shapes_model import write_untrained_pipeline

    vae = AutoencoderKLCogVideoX.from_pretrained(work / "vae_refine")
    clip_format = CLIP_FORMATS[args.clip_format]
    write_untrained_pipeline(
        folder,
        vae,
        args.seed,
        args.hidden_size,
        args.num_layers,
        caption_words=clip_format.caption_words,
        sampling_presets=format_presets(clip_format),
        start=None if args.init_from is None else DiffusionPipeline.from_pretrained(args.init_from),
    )


def _train_transformer(args: argparse.Namespace, work: Path, settings: dict) -> None:
    """Trains with the package's trainer, resuming its last checkpoint only if it was started with these settings."""
    from ..training import train

    config = _training_config(args, work)
    config.resume_from_checkpoint = "latest" if can_resume(work / "transformer", settings) else None
    train(config)


def main(argv: Sequence[str] | None = None) -> int:
    return run_script(build_parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
