"""LoRA training end to end on the tiny pipeline (CPU): preparation, training, outputs, loading the LoRA, resuming
after a real SIGKILL, and the bad inputs that must stop a run before it starts.

Runs go through the command line in subprocesses, as users run them; each uses one CPU thread so timings and
results do not depend on how busy the machine is.
"""

import csv
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from statistics import mean
from types import SimpleNamespace

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from huggingface_hub import ModelCard
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file
from synthetic_media import write_clip, write_dataset
from training_commands import TRAINING_ENV, kill_after_first_checkpoint, run_training_command, training_command

from diffusers_lumina_video import LuminaVideoPipeline, LuminaVideoTransformer3DModel
from diffusers_lumina_video.loaders import LUMINA_VIDEO_LORA_TARGET_MODULES
from diffusers_lumina_video.training import TrainingConfig, train
from diffusers_lumina_video.training.batches import PreparedDataset, pad_captions
from diffusers_lumina_video.training.loss_log import LossLog
from diffusers_lumina_video.training.recipe import TrainingBatch, flow_matching_loss, sample_generator
from diffusers_lumina_video.training.trainer import LORA_WEIGHT_NAME


COMMAND = training_command("train_video")
STEPS = 40


def run_command(args: list[str], log: Path) -> None:
    run_training_command(COMMAND, args, log)


def train_args(model: Path, dataset: Path, cache: Path, output: Path) -> list[str]:
    return [
        *("--pretrained_model_name_or_path", str(model), "--dataset", str(dataset), "--cache_dir", str(cache)),
        *("--output_dir", str(output), "--resolution", "64", "--num_frames", "9", "--rank", "8"),
        *("--learning_rate", "5e-3", "--max_train_steps", str(STEPS), "--seed", "0"),
        *("--checkpointing_steps", "5", "--checkpoints_total_limit", "2", "--trigger_word", "w1"),
        *("--validation_prompts", "w1 w2", "--validation_steps", "20", "--validation_num_frames", "9"),
        *("--validation_num_inference_steps", "2", "--report_to", "tensorboard", "--dataloader_num_workers", "1"),
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_pipeline_dir):
    """Prepares a generated dataset with `--prepare_only`, then trains one uninterrupted run on it."""
    root = tmp_path_factory.mktemp("training")
    dataset = write_dataset(root / "data", "jsonl")
    cache = root / "cache"
    base = train_args(tiny_pipeline_dir, dataset, cache, root / "uninterrupted")
    run_command([*base, "--prepare_only"], root / "prepare.log")
    run_command(base, root / "train.log")
    return {
        "root": root,
        "dataset": dataset,
        "cache": cache,
        "output": root / "uninterrupted",
        "model": tiny_pipeline_dir,
    }


def temporaries(folder: Path) -> list[Path]:
    """Hidden files or folders a write in progress would leave: `.name.tmp-<pid>-...` and checkpoint staging."""
    return [p for p in folder.rglob(".*") if ".tmp-" in p.name or p.name.endswith(".tmp")]


def loss_rows(output: Path) -> list[dict]:
    with (output / "logs" / "loss.csv").open() as file:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(file)]


def test_training_writes_the_lora_logs_checkpoints_videos_and_card(runs):
    output = runs["output"]
    assert "Using the prepared data" in (runs["root"] / "train.log").read_text()
    assert temporaries(runs["root"]) == []
    assert (output / LORA_WEIGHT_NAME).is_file() and (output / "training_config.json").is_file()

    rows = loss_rows(output)
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    assert {"loss_1x2x2", "loss_2x2x2", "loss_2x4x4", "lr", "grad_norm"} <= set(rows[0])
    losses = [float(r["loss"]) for r in rows]
    assert mean(losses[-10:]) < 0.95 * mean(losses[:10]), losses
    assert list(output.glob("logs/**/events.out.tfevents*")), "tensorboard events"

    # Keep-last-2 and nothing half-written left behind.
    assert sorted(p.name for p in (output / "checkpoints").iterdir()) == ["checkpoint-35", "checkpoint-40"]
    assert {p.name for p in (output / "checkpoints" / "checkpoint-40").iterdir()} >= {
        LORA_WEIGHT_NAME,
        "optimizer.bin",
        "scheduler.bin",
        "random_states_0.pkl",
        "trainer_state.json",
    }

    for step in (20, 40):
        frames = imageio.mimread(output / "validation" / f"step-{step:06d}-0.mp4", format="FFMPEG")
        assert len(frames) == 9 and frames[0].shape == (64, 64, 3)

    card = ModelCard.load(output / "README.md")
    # Trained from a local folder: the usage code loads it, the metadata names no (non-Hub) base model.
    assert card.data.base_model is None and f'from_pretrained("{runs["model"]}"' in card.text
    assert {"lora", "text-to-video"} <= set(card.data.tags)
    assert card.data.instance_prompt == "w1" and "validation/step-000040-0.mp4" in card.text
    assert "| `rank` | `8` |" in card.text and "| `timestep_shifts` |" in card.text


def evaluation_loss(transformer, cache: Path) -> float:
    """The training loss on every cached sample (finest patch) with fixed draws, so two models compare fairly."""
    data = PreparedDataset(cache)
    losses = []
    with torch.no_grad():
        for index, entry in enumerate(data.samples):
            tensors = data.load(index)
            embeds, mask = pad_captions([tensors["prompt_embeds"]])
            motion = torch.tensor([entry["motion_score"] if entry["motion_score"] is not None else -1.0])
            batch = TrainingBatch(tensors["latents"][None], embeds, mask, motion, (1, 2, 2), 2.0, [index])
            for draw in range(4):
                generator = sample_generator(1000 * draw + index, "evaluation")
                losses.append(flow_matching_loss(transformer, batch, [generator], vd_weight=1.0).loss.item())
    return mean(losses)


def test_saved_lora_loads_into_a_fresh_pipeline_and_changes_what_it_makes(runs):
    pipe = DiffusionPipeline.from_pretrained(runs["model"])

    def sample():
        return pipe(
            "w1 w2", height=64, width=64, num_frames=9, num_inference_steps=2, guidance_scale=1.0,
            generator=torch.Generator().manual_seed(0), output_type="latent",
        ).frames  # fmt: skip

    before, base_loss = sample(), evaluation_loss(pipe.transformer, runs["cache"])
    pipe.load_lora_weights(runs["output"])
    after, lora_loss = sample(), evaluation_loss(pipe.transformer, runs["cache"])
    assert (after - before).abs().max() > 1e-3
    assert lora_loss < 0.95 * base_loss, (base_loss, lora_loss)


def test_resume_after_a_kill_ends_with_the_same_weights_as_an_uninterrupted_run(runs):
    output = runs["root"] / "killed"
    args = [*train_args(runs["model"], runs["dataset"], runs["cache"], output), "--resume", "latest"]
    killed_at = kill_after_first_checkpoint(COMMAND, args, output, 5, runs["root"] / "killed.log")
    assert not (output / LORA_WEIGHT_NAME).exists()
    assert killed_at < STEPS

    run_command(args, runs["root"] / "resumed.log")
    assert f"at step {killed_at}" in (runs["root"] / "resumed.log").read_text()
    resumed, uninterrupted = load_file(output / LORA_WEIGHT_NAME), load_file(runs["output"] / LORA_WEIGHT_NAME)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), "weights must match bitwise"
    assert loss_rows(output) == loss_rows(runs["output"]), "same loss curve, rows past the checkpoint replaced"
    assert temporaries(output) == [], "a killed run's temporaries are removed by the next run"


def test_run_resumed_from_its_last_checkpoint_ends_as_the_uninterrupted_run(runs):
    """Killed after the last checkpoint but before the final validation: the resumed run only finishes up, and its
    video, LoRA, loss log and card are those of the uninterrupted run."""
    uninterrupted, output = runs["output"], runs["root"] / "killed_at_end"
    shutil.copytree(uninterrupted, output)
    for name in (LORA_WEIGHT_NAME, "README.md", "validation/step-000040-0.mp4", "logs/loss.png"):
        (output / name).unlink(missing_ok=True)

    args = [*train_args(runs["model"], runs["dataset"], runs["cache"], output), "--resume", "latest"]
    run_command(args, runs["root"] / "resumed_at_end.log")

    assert "at step 40" in (runs["root"] / "resumed_at_end.log").read_text()
    video = "validation/step-000040-0.mp4"
    frames = [imageio.mimread(folder / video, format="FFMPEG") for folder in (output, uninterrupted)]
    assert len(frames[0]) == 9 and all((a == b).all() for a, b in zip(*frames, strict=True))
    resumed, expected = load_file(output / LORA_WEIGHT_NAME), load_file(uninterrupted / LORA_WEIGHT_NAME)
    assert all(torch.equal(resumed[k], expected[k]) for k in expected)
    assert loss_rows(output) == loss_rows(uninterrupted)
    card, expected_card = (ModelCard.load(folder / "README.md").text for folder in (output, uninterrupted))
    assert video in card and card.replace(output.name, uninterrupted.name) == expected_card


# ---------------------------------------------------------------------- inputs refused before training starts
def bad_config(tmp_path: Path, model: Path, **overrides) -> TrainingConfig:
    values = {
        "pretrained_model_name_or_path": str(model),
        "dataset": str(write_dataset(tmp_path / "data")),
        "output_dir": str(tmp_path / "out"),
        "resolution": 64,
        "num_frames": 9,
    }
    return TrainingConfig(**(values | overrides))


def with_manifest(tmp_path: Path, line: str) -> str:
    manifest = tmp_path / "data" / "bad.jsonl"
    manifest.write_text((tmp_path / "data" / "data.jsonl").read_text() + line + "\n")
    return str(manifest)


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("missing file", FileNotFoundError, r"1 file\(s\) listed in .*bad.jsonl do not exist: .*gone.mp4"),
        ("caption column", ValueError, r"`caption_column` 'text' is not a column of .*columns are \['path'"),
        ("zero-length video", ValueError, r"empty.mp4: no decodable frame, zero-length or broken \(empty file\)"),
        (
            "empty caption",
            ValueError,
            r"1 sample\(s\) cannot be trained on:\n  - .*clip0.mp4: empty or missing caption",
        ),
        ("short clip", ValueError, r"short.mp4: has 5 frame\(s\) at its own frame rate; a clip needs at least 9"),
        ("output_dir file", ValueError, r"`output_dir` must be a folder, but .*out is a file"),
        ("checkpoint state", ValueError, r"Checkpoint file .*checkpoint-5/trainer_state.json is corrupt \(Expecting"),
        (
            "checkpoint fields",
            ValueError,
            r"trainer_state.json is corrupt: it needs positive integers \['global_step'",
        ),
        ("checkpoint step", ValueError, r"checkpoint-5 was saved at step 5, past this run's `max_train_steps` 3"),
        ("checkpoint files", ValueError, r"checkpoint-5 is incomplete: \['optimizer.bin'\] missing"),
        ("checkpoint lora", ValueError, r"Checkpoint file .*checkpoint-5/pytorch_lora_weights.safetensors is corrupt"),
        (
            "checkpoint rank",
            ValueError,
            r"pytorch_lora_weights.safetensors has LoRA rank \[4\], but this run trains rank 8",
        ),
        (
            "checkpoint targets",
            ValueError,
            r"wraps other layers than this run's `target_modules` \(only in one of them: \['layers.0.attn.to_k'",
        ),
        ("resolution", ValueError, "`resolution` must be a positive multiple of 32 .*got 100"),
        ("rank", ValueError, "`rank` must be a positive integer, got 0"),
        ("target module", ValueError, r"LoRA target modules \['attn.to_qq'\] are not linear layers"),
        ("patch size", ValueError, r"`patch_sizes` \['1x1x1'\] are not patchifications of this transformer"),
    ],
)
def test_bad_inputs_stop_the_run_before_it_starts(tmp_path, tiny_pipeline_dir, case, error, message):
    config = bad_config(tmp_path, tiny_pipeline_dir)
    if case == "missing file":
        config.dataset = with_manifest(tmp_path, '{"path": "gone.mp4", "caption": "x"}')
    elif case == "caption column":
        config.caption_column = "text"
    elif case == "zero-length video":
        (tmp_path / "data" / "empty.mp4").write_bytes(b"")
        config.dataset = with_manifest(tmp_path, '{"path": "empty.mp4", "caption": "x"}')
    elif case == "resolution":
        config.resolution = 100
    elif case == "rank":
        config.rank = 0
    elif case == "target module":
        config.target_modules = ["attn.to_q", "attn.to_qq"]
    elif case == "patch size":
        config.patch_sizes = ["1x2x2", "1x1x1"]
    elif case == "empty caption":
        config.dataset = with_manifest(tmp_path, '{"path": "clip0.mp4", "caption": ""}')
    elif case == "short clip":
        write_clip(tmp_path / "data" / "short.mp4", num_frames=5)
        config.dataset = with_manifest(tmp_path, '{"path": "short.mp4", "caption": "x"}')
    elif case == "output_dir file":
        (tmp_path / "out").write_text("")
    elif case.startswith("checkpoint"):
        config.rank, config.max_train_steps, config.resume_from_checkpoint = 8, 10, "latest"
        write_checkpoint(tmp_path / "out" / "checkpoints" / "checkpoint-5", tiny_pipeline_dir, case)
        if case == "checkpoint step":
            config.max_train_steps = 3
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(error, match=message):
        train(config)
    assert sorted(tmp_path.rglob("*")) == before, "nothing may be written before the checks pass"


def write_checkpoint(folder: Path, model: Path, case: str) -> None:
    """A checkpoint as `save_checkpoint` leaves it (rank 8 on the default targets), with the fault `case` names."""
    transformer = LuminaVideoTransformer3DModel.from_pretrained(model, subfolder="transformer")
    rank = 4 if case == "checkpoint rank" else 8
    targets = list(LUMINA_VIDEO_LORA_TARGET_MODULES)
    transformer.add_adapter(
        LoraConfig(r=rank, target_modules=targets[:1] + targets[2:] if case == "checkpoint targets" else targets)
    )
    folder.mkdir(parents=True)
    LuminaVideoPipeline.save_lora_weights(folder, transformer_lora_layers=get_peft_model_state_dict(transformer))
    state = {"checkpoint state": "{", "checkpoint fields": '{"global_step": 5}'}.get(
        case, '{"global_step": 5, "global_batch_size": 1}'
    )
    (folder / "trainer_state.json").write_text(state)
    states = {
        "optimizer.bin": {"state": {}, "param_groups": []},
        "scheduler.bin": {"last_epoch": 5},
        "random_states_0.pkl": {
            "step": 5,
            "random_state": random.getstate(),
            "numpy_random_seed": np.random.get_state(),
        },
    }
    for name, value in states.items():
        if not (case == "checkpoint files" and name == "optimizer.bin"):
            torch.save(value, folder / name)
    if case == "checkpoint lora":
        (folder / LORA_WEIGHT_NAME).write_bytes(b"\x00" * 10)


class _CommandPayload:
    """Unpickling this runs a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _damage(file: Path, how: str) -> None:
    data = file.read_bytes()
    if how == "truncated":
        file.write_bytes(data[: len(data) // 2])
    else:  # a few bytes changed in the middle: the size is right, the content is not
        middle = len(data) // 2
        file.write_bytes(data[:middle] + bytes(255 - b for b in data[middle : middle + 8]) + data[middle + 8 :])


@pytest.mark.parametrize(
    ("file", "how", "message"),
    [
        ("optimizer.bin", "truncated", r"optimizer.bin is corrupt or cut short"),
        ("scheduler.bin", "corrupt", r"scheduler.bin is corrupt"),
        ("random_states_0.pkl", "truncated", r"random_states_0.pkl is corrupt or cut short"),
        (LORA_WEIGHT_NAME, "truncated", rf"{LORA_WEIGHT_NAME} is corrupt"),
        (
            "random_states_0.pkl",
            "unsafe",
            r"Refusing to load .*random_states_0.pkl: its pickle references `posix.system`",
        ),
    ],
)
@pytest.mark.parametrize("earlier", [True, False])
def test_resume_from_a_damaged_checkpoint_names_the_file_and_what_to_do_before_any_model_loads(
    tmp_path, tiny_pipeline_dir, monkeypatch, file, how, message, earlier
):
    def loading(*args, **kwargs):
        raise AssertionError("a model loaded before the checkpoint was checked")

    config = bad_config(tmp_path, tiny_pipeline_dir, rank=8, max_train_steps=10, resume_from_checkpoint="latest")
    checkpoints = tmp_path / "out" / "checkpoints"
    if earlier:
        write_checkpoint(checkpoints / "checkpoint-3", tiny_pipeline_dir, "intact")
        (checkpoints / "checkpoint-3" / "trainer_state.json").write_text('{"global_step": 3, "global_batch_size": 1}')
    damaged = checkpoints / "checkpoint-5"
    write_checkpoint(damaged, tiny_pipeline_dir, "intact")
    marker = tmp_path / "payload_ran"
    if how == "unsafe":
        torch.save({"step": 5, "random_state": _CommandPayload(marker)}, damaged / file)
    else:
        _damage(damaged / file, how)
    to_do = (
        rf"Checkpoint {damaged} cannot be resumed: resume from the earlier {checkpoints / 'checkpoint-3'} "
        rf"\(`--resume {checkpoints / 'checkpoint-3'}`\) or start over in another `output_dir`."
        if earlier
        else rf"Checkpoint {damaged} cannot be resumed: start over in another `output_dir`."
    )
    monkeypatch.setattr(LuminaVideoTransformer3DModel, "from_pretrained", loading)
    with pytest.raises(ValueError) as error:
        train(config)
    assert str(damaged / file) in str(error.value)
    assert re.search(message, str(error.value)) and re.search(to_do, str(error.value)), str(error.value)
    assert "weights_only" not in str(error.value) and not marker.exists()
    assert not (tmp_path / "out" / "training_config.json").exists()


def test_command_line_reports_a_bad_setting_and_fails(tmp_path, tiny_pipeline_dir):
    clip = write_clip(tmp_path / "clip.mp4")
    clip.with_suffix(".txt").write_text("a clip")
    result = subprocess.run(
        COMMAND
        + ["--pretrained_model_name_or_path", str(tiny_pipeline_dir), "--dataset", str(tmp_path)]
        + ["--output_dir", str(tmp_path / "out"), "--rank", "0", "--num_frames", "20"],
        env=TRAINING_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "`rank` must be a positive integer, got 0" in result.stderr
    assert "`num_frames` must be 1 + a multiple of 8" in result.stderr


def test_a_new_run_does_not_start_among_another_runs_checkpoints(tmp_path, tiny_pipeline_dir):
    config = bad_config(tmp_path, tiny_pipeline_dir)
    old = tmp_path / "out" / "checkpoints" / "checkpoint-30"
    old.mkdir(parents=True)
    (old / "trainer_state.json").write_text('{"global_step": 30}')
    with pytest.raises(
        FileExistsError, match=r"checkpoints of an earlier run \(up to step 30\). Pass `--resume latest`"
    ):
        train(config)


@pytest.fixture
def fresh_accelerate_state():
    """accelerate keeps its state per process; an in-process run must not leave it to the next test."""
    from accelerate.state import AcceleratorState

    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_push_to_hub_uploads_the_lora_card_and_sample(
    tmp_path, tiny_pipeline_dir, monkeypatch, fresh_accelerate_state
):
    import huggingface_hub

    calls = {}
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_token")
    monkeypatch.setattr(
        huggingface_hub,
        "create_repo",
        lambda repo_id, **kwargs: (
            calls.setdefault("create_repo", (repo_id, kwargs)) and SimpleNamespace(repo_id=f"me/{repo_id}")
        ),
    )
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kwargs: calls.setdefault("upload_folder", kwargs))
    config = bad_config(
        tmp_path,
        tiny_pipeline_dir,
        max_train_steps=2,
        checkpointing_steps=2,
        report_to="none",
        validation_prompts=["w1 w2"],
        validation_num_frames=9,
        validation_num_inference_steps=1,
        push_to_hub=True,
        hub_model_id="my-lora",
        hub_private=True,
    )
    train(config)
    assert calls["create_repo"] == ("my-lora", {"exist_ok": True, "private": True})
    upload = calls["upload_folder"]
    assert upload["repo_id"] == "me/my-lora" and upload["folder_path"] == tmp_path / "out"
    assert {LORA_WEIGHT_NAME, "README.md", "validation/step-000002-0.mp4"} <= set(upload["allow_patterns"])
    assert 'pipe.load_lora_weights("me/my-lora")' in (tmp_path / "out" / "README.md").read_text()


def write_loss_log(path: Path, resume_step: int, steps: range) -> LossLog:
    log = LossLog(path, ["step", "loss", "loss_1x2x2", "seconds"], resume_step)
    for step in steps:
        log.write({"step": step, "loss": 1.0 / step, "loss_1x2x2": 2.0 / step, "seconds": 0.1})
    log.close()
    return log


def test_loss_log_of_a_resumed_run_replaces_the_rows_after_its_checkpoint(tmp_path):
    path = tmp_path / "logs" / "loss.csv"
    write_loss_log(path, resume_step=0, steps=range(1, 6))
    write_loss_log(path, resume_step=3, steps=range(4, 5))  # resumed from step 3, then killed again after step 4
    with path.open() as file:
        assert [int(row["step"]) for row in csv.DictReader(file)] == [1, 2, 3, 4]


def test_loss_curve_is_plotted_when_matplotlib_is_there(tmp_path):
    pytest.importorskip("matplotlib")
    write_loss_log(tmp_path / "loss.csv", resume_step=0, steps=range(1, 6)).plot(tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
