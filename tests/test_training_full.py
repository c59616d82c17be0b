"""Full training of the Lumina-Video transformer on the tiny pipeline (CPU): every weight trains, a moving average
(EMA) of the weights is what validation renders and the saved pipeline holds, and a run killed with SIGKILL resumes
to the same weights, EMA and loss curve as an uninterrupted one.

Runs go through the command line in subprocesses, as users run them, with one CPU thread each.
"""

import csv
from pathlib import Path
from statistics import mean

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from conftest import recorded_source_paths
from diffusers import DiffusionPipeline
from diffusers.utils import export_to_video
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from synthetic_media import write_dataset
from training_commands import kill_after_first_checkpoint, run_training_command, training_command

from diffusers_lumina_video import LuminaVideoPipeline, LuminaVideoTransformer3DModel
from diffusers_lumina_video.training import TrainingConfig, train
from diffusers_lumina_video.training.checkpoints import EMA_STATE_NAME, LORA_WEIGHT_NAME, MODEL_WEIGHT_NAME


COMMAND = training_command("train_video")
STEPS = 16
UNTRAINED_MARKER = ".2x2x2."  # the patchification `train_args` leaves out


def run_command(args: list[str], log: Path) -> None:
    run_training_command(COMMAND, args, log)


def train_args(model: Path, dataset: Path, cache: Path, output: Path) -> list[str]:
    return [
        *("--training_mode", "full", "--ema_decay", "0.9", "--patch_sizes", "1x2x2", "2x4x4"),
        *("--pretrained_model_name_or_path", str(model), "--dataset", str(dataset), "--cache_dir", str(cache)),
        *("--output_dir", str(output), "--resolution", "64", "--num_frames", "9", "--learning_rate", "2e-3"),
        *("--max_train_steps", str(STEPS), "--seed", "0", "--checkpointing_steps", "4"),
        *("--checkpoints_total_limit", "2", "--report_to", "none"),
        *("--validation_prompts", "w1 w2", "--validation_steps", "8", "--validation_num_frames", "9"),
        *("--validation_num_inference_steps", "2"),
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_pipeline_dir):
    """One uninterrupted full run on a generated dataset (prepared by the run itself)."""
    root = tmp_path_factory.mktemp("full_training")
    dataset = write_dataset(root / "data", "jsonl")
    cache = root / "cache"
    run_command(train_args(tiny_pipeline_dir, dataset, cache, root / "uninterrupted"), root / "train.log")
    return {
        "root": root,
        "dataset": dataset,
        "cache": cache,
        "output": root / "uninterrupted",
        "model": tiny_pipeline_dir,
    }


def loss_rows(output: Path) -> list[dict]:
    with (output / "logs" / "loss.csv").open() as file:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(file)]


def ema_weights(checkpoint: Path, model: Path) -> dict[str, torch.Tensor]:
    """The moving average in a checkpoint, by parameter name: it follows the transformer's parameter order and holds
    the trained weights only (the untrained patchification's are frozen)."""
    state = torch.load(checkpoint / EMA_STATE_NAME, map_location="cpu", weights_only=False)
    config = LuminaVideoTransformer3DModel.load_config(model, subfolder="transformer")
    parameters = LuminaVideoTransformer3DModel.from_config(config).named_parameters()
    names = [name for name, _ in parameters if UNTRAINED_MARKER not in f".{name}."]
    return dict(zip(names, state["shadow_params"], strict=True))


def test_full_training_lowers_the_loss_and_writes_checkpoints_and_videos(runs):
    output = runs["output"]
    losses = [float(r["loss"]) for r in loss_rows(output)]
    assert len(losses) == STEPS and mean(losses[-4:]) < 0.9 * mean(losses[:4]), losses
    assert sorted(p.name for p in (output / "checkpoints").iterdir()) == ["checkpoint-12", "checkpoint-16"]
    assert {p.name for p in (output / "checkpoints" / "checkpoint-16").iterdir()} >= {
        MODEL_WEIGHT_NAME,
        EMA_STATE_NAME,
        "optimizer.bin",
        "scheduler.bin",
    }
    assert not (output / LORA_WEIGHT_NAME).exists()
    assert (output / "validation" / "step-000008-0.mp4").is_file() and (output / "validation" / "step-000016-0.mp4")


def test_saved_pipeline_holds_the_moving_average_not_the_last_weights(runs):
    output = runs["output"]
    raw = {
        k.removeprefix("module."): v
        for k, v in load_file(output / "checkpoints/checkpoint-16" / MODEL_WEIGHT_NAME).items()
    }
    ema = ema_weights(output / "checkpoints" / "checkpoint-16", runs["model"])
    saved = LuminaVideoTransformer3DModel.from_pretrained(output / "pipeline", subfolder="transformer")
    saved = dict(saved.named_parameters())
    base = dict(
        LuminaVideoTransformer3DModel.from_pretrained(runs["model"], subfolder="transformer").named_parameters()
    )
    assert saved.keys() == raw.keys()
    frozen = saved.keys() - ema.keys()
    assert frozen and all(UNTRAINED_MARKER in f".{k}." for k in frozen), frozen
    assert all(torch.equal(saved[k].data, base[k].data) for k in frozen), "the untrained patchification is unchanged"
    assert all(torch.equal(saved[k].data, ema[k]) for k in ema), "the pipeline holds the EMA weights"
    distance = max((ema[k] - raw[k]).abs().max().item() for k in ema)
    moved = max((raw[k] - base[k].data).abs().max().item() for k in ema)
    assert distance > 1e-4 and moved > 1e-3, (distance, moved)


def test_saved_pipeline_loads_and_generates_with_its_card(runs):
    folder = runs["output"] / "pipeline"
    pipe = DiffusionPipeline.from_pretrained(folder)
    assert isinstance(pipe, LuminaVideoPipeline)
    assert recorded_source_paths(folder) == {}  # loaded from a local base model, saved without its path
    video = pipe(
        "w1 w2", height=64, width=64, num_frames=9, num_inference_steps=2, guidance_scale=1.0,
        generator=torch.Generator().manual_seed(0), output_type="np",
    ).frames[0]  # fmt: skip
    assert video.shape == (9, 64, 64, 3) and bool(torch.isfinite(torch.from_numpy(video)).all())
    card = ModelCard.load(folder / "README.md")
    assert {"pipeline", "diffusers-training"} <= set(card.data.tags) and "lora" not in card.data.tags
    assert f'DiffusionPipeline.from_pretrained("{folder}"' in card.text and "load_lora_weights" not in card.text
    assert "| `ema_decay` | `0.9` |" in card.text and "`rank`" not in card.text
    assert (folder / "validation" / "step-000016-0.mp4").is_file(), "the card's video travels with the folder"


def test_validation_renders_with_the_moving_average(runs, tmp_path):
    """The last validation video is what the saved pipeline (the averaged weights) makes with the same seed, not
    what the last trained weights make; both are encoded as the trainer encodes its videos."""
    output = runs["output"]
    pipe = DiffusionPipeline.from_pretrained(output / "pipeline")

    def rendered(name: str) -> np.ndarray:
        video = pipe(
            "w1 w2", height=64, width=64, num_frames=9, num_inference_steps=2, guidance_scale=5.0,
            generator=torch.Generator().manual_seed(0), output_type="np",
        ).frames[0]  # fmt: skip
        export_to_video(list(video), str(tmp_path / name), fps=16)
        return np.stack(imageio.mimread(tmp_path / name, format="FFMPEG"))

    written = np.stack(imageio.mimread(output / "validation" / "step-000016-0.mp4", format="FFMPEG"))
    assert np.array_equal(written, rendered("averaged.mp4"))
    raw = load_file(output / "checkpoints" / "checkpoint-16" / MODEL_WEIGHT_NAME)
    pipe.transformer.load_state_dict({k.removeprefix("module."): v for k, v in raw.items()})
    assert not np.array_equal(written, rendered("last.mp4"))


def test_resume_after_a_kill_ends_with_the_same_weights_and_average(runs):
    output = runs["root"] / "killed"
    args = [*train_args(runs["model"], runs["dataset"], runs["cache"], output), "--resume", "latest"]
    killed_at = kill_after_first_checkpoint(COMMAND, args, output, 4, runs["root"] / "killed.log")
    assert not (output / "pipeline").exists()
    assert killed_at < STEPS

    run_command(args, runs["root"] / "resumed.log")
    assert f"at step {killed_at}" in (runs["root"] / "resumed.log").read_text()
    for name in (
        f"checkpoints/checkpoint-16/{MODEL_WEIGHT_NAME}",
        "pipeline/transformer/diffusion_pytorch_model.safetensors",
    ):
        resumed, uninterrupted = load_file(output / name), load_file(runs["output"] / name)
        assert resumed.keys() == uninterrupted.keys()
        assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), f"{name} must match bitwise"
    resumed_ema = ema_weights(output / "checkpoints" / "checkpoint-16", runs["model"])
    expected_ema = ema_weights(runs["output"] / "checkpoints" / "checkpoint-16", runs["model"])
    assert all(torch.equal(resumed_ema[k], expected_ema[k]) for k in expected_ema)
    assert loss_rows(output) == loss_rows(runs["output"])


# ---------------------------------------------------------------------- inputs refused before training starts
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"training_mode": "full", "rank": 8}, "`rank` only applies to `training_mode` 'lora'; remove it for 'full'"),
        (
            {"training_mode": "full", "target_modules": ["attn.to_q"]},
            "`target_modules` only applies to `training_mode` 'lora'",
        ),
        ({"training_mode": "full", "trigger_word": "w1"}, "`trigger_word` only applies to `training_mode` 'lora'"),
        ({"ema_decay": 0.99}, "`ema_decay` only applies to `training_mode` 'full'; remove it for 'lora'"),
        ({"training_mode": "full", "ema_decay": 1.0}, r"`ema_decay` must be in \[0, 1\)"),
        ({"training_mode": "partial"}, r"`training_mode` must be one of \['lora', 'full'\], got 'partial'"),
        ({"model_family": "audio"}, r"`model_family` must be one of \['video', 'v2a'\], got 'audio'"),
        ({"model_family": "v2a", "resolution": 128}, "`resolution` only applies to `model_family` 'video'"),
        ({"clip_duration": 4.0}, "`clip_duration` only applies to `model_family` 'v2a'; remove it for 'video'"),
        (
            {"model_family": "v2a", "score_threshold": 0.3},
            "`score_threshold` needs `score_column`",
        ),
    ],
)
def test_options_of_the_other_mode_or_family_are_refused(tmp_path, tiny_pipeline_dir, overrides, message):
    config = TrainingConfig(
        pretrained_model_name_or_path=str(tiny_pipeline_dir),
        dataset=str(write_dataset(tmp_path / "data")),
        output_dir=str(tmp_path / "out"),
        **({"resolution": 64, "num_frames": 9} if overrides.get("model_family") != "v2a" else {}) | overrides,
    )
    with pytest.raises(ValueError, match=message):
        train(config)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("mode", "ema_decay", "message"),
    [
        ("full", 0.9, r"checkpoint-5 was saved by a `training_mode` 'lora' run; this run trains 'full'"),
        ("full-ema", 0.9, r"checkpoint-5 is incomplete: \['custom_checkpoint_0.pkl'\] missing"),
        ("full-ema", 0.0, "holds a moving average of the weights, but this run has `ema_decay` 0"),
    ],
)
def test_checkpoints_of_another_mode_are_refused(tmp_path, tiny_pipeline_dir, mode, ema_decay, message):
    checkpoint = tmp_path / "out" / "checkpoints" / "checkpoint-5"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text('{"global_step": 5, "global_batch_size": 1}')
    names = ["optimizer.bin", "scheduler.bin", LORA_WEIGHT_NAME if mode == "full" else MODEL_WEIGHT_NAME]
    if ema_decay == 0.0:
        names.append(EMA_STATE_NAME)
    for name in names:
        (checkpoint / name).write_bytes(b"")
    config = TrainingConfig(
        pretrained_model_name_or_path=str(tiny_pipeline_dir),
        dataset=str(write_dataset(tmp_path / "data")),
        output_dir=str(tmp_path / "out"),
        resolution=64,
        num_frames=9,
        training_mode="full",
        ema_decay=ema_decay,
        max_train_steps=10,
        resume_from_checkpoint="latest",
    )
    with pytest.raises(ValueError, match=message):
        train(config)


def test_freezing_the_shared_blocks_trains_only_the_listed_patchifications_own_modules(runs, tmp_path):
    """`freeze_shared_blocks`: a model trained at one scale learns another without any weight it shares changing,
    so what its other patchifications generate stays exactly as it was."""
    config = TrainingConfig(
        model_family="video",
        training_mode="full",
        pretrained_model_name_or_path=str(runs["model"]),
        dataset=str(runs["dataset"]),
        cache_dir=str(runs["cache"]),
        output_dir=str(tmp_path / "coarse"),
        resolution=64,
        num_frames=9,
        patch_sizes=["1x2x2", "2x4x4"],  # the dataset's images train with the first
        freeze_shared_blocks=True,
        ema_decay=0.0,
        learning_rate=2e-3,
        max_train_steps=3,
        checkpointing_steps=3,
        validation_steps=0,
        report_to="none",
    ).validate()
    train(config)
    base = dict(LuminaVideoTransformer3DModel.from_pretrained(runs["model"], subfolder="transformer").state_dict())
    trained = LuminaVideoTransformer3DModel.from_pretrained(tmp_path / "coarse" / "pipeline", subfolder="transformer")
    changed = {name for name, value in trained.state_dict().items() if not torch.equal(value, base[name])}
    own = {name for name in base if ".1x2x2." in f".{name}." or ".2x4x4." in f".{name}."}
    assert changed <= own, changed - own  # no shared block moved, nor the third patchification
    assert any(".1x2x2." in f".{n}." for n in changed) and any(".2x4x4." in f".{n}." for n in changed), changed


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"training_mode": "lora"}, "`freeze_shared_blocks` only applies to `training_mode` 'full'"),
        ({"model_family": "v2a"}, "`freeze_shared_blocks` only applies to `model_family` 'video'"),
    ],
)
def test_freezing_the_shared_blocks_is_refused_where_it_means_nothing(settings, message):
    config = TrainingConfig(
        **{"training_mode": "full", "pretrained_model_name_or_path": "x", "dataset": "d", **settings},
        freeze_shared_blocks=True,
    )
    with pytest.raises(ValueError, match=message):
        config.validate()
