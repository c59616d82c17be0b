"""Lumina-V2A training end to end on the tiny V2A pipeline (CPU), through `lumina-video train-v2a` in subprocesses:
full training with a moving average and LoRA, validation sound as wav and mp4, the saved pipeline and LoRA loading
through `LuminaV2APipeline`, exact resume after a real SIGKILL, and settings refused before training.
"""

import csv
import wave
from pathlib import Path
from statistics import mean
from types import SimpleNamespace

import av
import pytest
import torch
from diffusers import DiffusionPipeline
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from synthetic_av_media import CLIP_DURATION, save_tiny_v2a_pipeline, write_av_clip
from training_commands import kill_after_first_checkpoint, run_training_command, training_command

from diffusers_lumina_video import LuminaV2APipeline, LuminaV2ATransformerModel
from diffusers_lumina_video.cli import ERROR_EXIT_CODE, main
from diffusers_lumina_video.training import TrainingConfig, train
from diffusers_lumina_video.training.checkpoints import EMA_STATE_NAME, MODEL_WEIGHT_NAME


COMMAND = training_command("train_v2a")
STEPS = 12
TRANSFORMER_FILE = "pipeline/transformer/diffusion_pytorch_model.safetensors"


def run_command(args: list[str], log: Path) -> None:
    run_training_command(COMMAND, args, log)


def write_clips(folder: Path, count: int = 4) -> Path:
    folder.mkdir(parents=True)
    for seed in range(count):
        write_av_clip(folder / f"clip{seed}.mp4", seed=seed)
    return folder


def train_args(root: Path, output: str, mode: str) -> list[str]:
    modes = {
        "full": ["--training_mode", "full", "--ema_decay", "0.9", "--learning_rate", "2e-3"],
        "lora": ["--rank", "4", "--learning_rate", "3e-2"],
    }
    return [
        *("--pretrained_model_name_or_path", str(root / "model"), "--dataset", str(root / "data")),
        *("--cache_dir", str(root / "cache"), "--output_dir", str(root / output), "--clip_duration", "1.0"),
        *("--max_train_steps", str(STEPS), "--checkpointing_steps", "4", "--checkpoints_total_limit", "2"),
        *("--train_batch_size", "2", "--seed", "0", "--report_to", "none"),
        *("--validation_videos", str(root / "data" / "clip0.mp4"), "--validation_prompts", "a beep"),
        *("--validation_steps", "6", "--validation_num_inference_steps", "2"),
        *modes[mode],
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """The clips prepared once (`--prepare_only`), then one uninterrupted full run and one LoRA run."""
    root = tmp_path_factory.mktemp("v2a_training")
    save_tiny_v2a_pipeline(root / "model")
    write_clips(root / "data")
    run_command([*train_args(root, "full", "full"), "--prepare_only"], root / "prepare.log")
    run_command(train_args(root, "full", "full"), root / "full.log")
    run_command(train_args(root, "lora", "lora"), root / "lora.log")
    return root


def loss_rows(output: Path) -> list[dict]:
    with (output / "logs" / "loss.csv").open() as file:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(file)]


def ema_weights(checkpoint: Path, model: Path) -> dict[str, torch.Tensor]:
    """The moving average in a checkpoint, by parameter name (it follows the transformer's parameter order)."""
    state = torch.load(checkpoint / EMA_STATE_NAME, map_location="cpu", weights_only=False)
    config = LuminaV2ATransformerModel.load_config(model, subfolder="transformer")
    names = [name for name, _ in LuminaV2ATransformerModel.from_config(config).named_parameters()]
    return dict(zip(names, state["shadow_params"], strict=True))


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_v2a_training_lowers_the_loss_and_writes_validation_sound(runs, mode):
    output = runs / mode
    assert "Using the prepared clips" in (runs / f"{mode}.log").read_text()
    rows = loss_rows(output)
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    assert set(rows[0]) == {"step", "loss", "lr", "grad_norm"}
    losses = [float(r["loss"]) for r in rows]
    assert mean(losses[-3:]) < (0.8 if mode == "full" else 0.85) * mean(losses[:3]), losses

    for step in (6, 12):
        with wave.open(str(output / "validation" / f"step-{step:06d}-0.wav")) as file:
            assert file.getframerate() == 16000 and file.getnframes() == 16000 * CLIP_DURATION
        with av.open(str(output / "validation" / f"step-{step:06d}-0.mp4")) as container:
            assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
            assert abs(float(container.duration / av.time_base) - CLIP_DURATION) < 0.15
    card = ModelCard.load((output / "pipeline" if mode == "full" else output) / "README.md")
    assert "video-to-audio" in card.data.tags and "| `model_family` | `v2a` |" in card.text
    assert "| `clip_duration` | `1.0` |" in card.text and "| `sync_dropout` | `0.1` |" in card.text


def test_full_v2a_pipeline_holds_the_moving_average_and_makes_sound(runs):
    output = runs / "full"
    checkpoint = output / "checkpoints" / f"checkpoint-{STEPS}"
    ema = ema_weights(checkpoint, runs / "model")
    raw = {k.removeprefix("module."): v for k, v in load_file(checkpoint / MODEL_WEIGHT_NAME).items()}
    pipe = DiffusionPipeline.from_pretrained(output / "pipeline")
    assert isinstance(pipe, LuminaV2APipeline)
    saved = dict(pipe.transformer.named_parameters())
    assert all(torch.equal(saved[k].data, ema[k]) for k in ema), "the pipeline holds the EMA weights"
    assert max((ema[k] - raw[k]).abs().max().item() for k in ema) > 1e-4
    audio = pipe(
        video=str(runs / "data" / "clip1.mp4"), duration=CLIP_DURATION, num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
    ).audios  # fmt: skip
    assert audio.shape == (1, 16000) and bool(torch.isfinite(torch.as_tensor(audio)).all())
    assert (output / "pipeline" / "validation" / f"step-{STEPS:06d}-0.mp4").is_file()
    assert 'DiffusionPipeline.from_pretrained("' in (output / "pipeline" / "README.md").read_text()


def test_v2a_lora_loads_through_the_v2a_pipeline_and_changes_its_output(runs):
    pipe = LuminaV2APipeline.from_pretrained(runs / "model")

    def sample() -> torch.Tensor:
        return pipe(
            video=str(runs / "data" / "clip1.mp4"), duration=CLIP_DURATION, num_inference_steps=2,
            generator=torch.Generator().manual_seed(0), output_type="latent",
        ).audios  # fmt: skip

    before = sample()
    pipe.load_lora_weights(runs / "lora")
    assert any("lora_A" in name for name, _ in pipe.transformer.named_parameters())
    assert (sample() - before).abs().max() > 1e-3
    card = ModelCard.load(runs / "lora" / "README.md")
    assert "lora" in card.data.tags and f'pipe.load_lora_weights("{runs / "lora"}")' in card.text


def test_each_v2a_run_ends_with_the_command_that_tries_its_result(runs):
    video = runs / "data" / "clip0.mp4"
    tries = {
        "lora": f"--model {runs / 'model'} --lora {runs / 'lora' / 'pytorch_lora_weights.safetensors'}",
        "full": f"--model {runs / 'full' / 'pipeline'}",
    }
    for run, model in tries.items():
        last = (runs / f"{run}.log").read_text().strip().splitlines()[-1]
        assert last.endswith(
            f"Try it: lumina-video add-audio {video} {model} --prompt 'a beep' --duration 1.0 --steps 2 "
            f"--output {runs / run / 'try.mp4'}"
        ), last


def test_v2a_resume_after_a_kill_ends_with_the_same_weights_and_average(runs):
    output = runs / "killed"
    args = [*train_args(runs, "killed", "full"), "--resume", "latest"]
    killed_at = kill_after_first_checkpoint(COMMAND, args, output, 4, runs / "killed.log")
    assert killed_at < STEPS and not (output / "pipeline").exists()

    run_command(args, runs / "resumed.log")
    assert f"at step {killed_at}" in (runs / "resumed.log").read_text()
    for name in (f"checkpoints/checkpoint-{STEPS}/{MODEL_WEIGHT_NAME}", TRANSFORMER_FILE):
        resumed, uninterrupted = load_file(output / name), load_file(runs / "full" / name)
        assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted), f"{name} must match bitwise"
    checkpoint = Path("checkpoints") / f"checkpoint-{STEPS}"
    resumed_ema = ema_weights(output / checkpoint, runs / "model")
    expected_ema = ema_weights(runs / "full" / checkpoint, runs / "model")
    assert all(torch.equal(resumed_ema[k], expected_ema[k]) for k in expected_ema)
    assert loss_rows(output) == loss_rows(runs / "full")


# ---------------------------------------------------------------------- inputs refused before training starts
@pytest.fixture(scope="module")
def tiny_v2a(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("v2a_inputs")
    save_tiny_v2a_pipeline(root / "model")
    write_clips(root / "data", count=1)
    return root


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"resolution": 128}, ValueError, "`resolution` only applies to `model_family` 'video'"),
        ({"caption_dropout": 0.5}, ValueError, "`caption_dropout` only applies to `model_family` 'video'"),
        ({"sync_dropout": 2.0}, ValueError, r"`sync_dropout` is a probability in \[0, 1\], got 2.0"),
        ({"clip_duration": 0.0}, ValueError, "`clip_duration` must be > 0 seconds"),
        ({"validation_videos": ["gone.mp4"]}, ValueError, r"`validation_videos` \['gone.mp4'\] do not exist"),
        ({"validation_prompts": ["a", "b"]}, ValueError, r"give one per video \(1\) or none, got 2"),
        ({"score_column": "av_align"}, ValueError, "`score_column` and `score_threshold` filter a manifest"),
        ({"target_modules": ["attn.to_qq"]}, ValueError, r"LoRA target modules \['attn.to_qq'\] are not linear"),
    ],
)
def test_bad_v2a_settings_stop_the_run_before_it_starts(tiny_v2a, tmp_path, overrides, error, message):
    values = {
        "model_family": "v2a",
        "pretrained_model_name_or_path": str(tiny_v2a / "model"),
        "dataset": str(tiny_v2a / "data"),
        "output_dir": str(tmp_path / "out"),
        "clip_duration": 1.0,
        "validation_videos": [str(tiny_v2a / "data" / "clip0.mp4")],
    }
    with pytest.raises(error, match=message):
        train(TrainingConfig(**(values | overrides)))
    assert not (tmp_path / "out").exists()


def test_train_v2a_refuses_another_model_family(tmp_path, capsys):
    assert main(["train-v2a", "--model_family", "video", "--output_dir", str(tmp_path)]) == ERROR_EXIT_CODE
    error = capsys.readouterr().err.strip()
    assert error.startswith("lumina-video train-v2a: error: ") and "\n" not in error
    assert (
        "`model_family` is 'v2a' for this command, got 'video'; train 'video' with `lumina-video train-video`" in error
    )


def test_push_to_hub_uploads_the_v2a_pipeline_folder(tiny_v2a, tmp_path, monkeypatch):
    import huggingface_hub
    from accelerate.state import AcceleratorState

    calls = {}
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_token")
    monkeypatch.setattr(
        huggingface_hub, "create_repo", lambda repo_id, **kwargs: SimpleNamespace(repo_id=f"me/{repo_id}")
    )
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kwargs: calls.setdefault("upload_folder", kwargs))
    config = TrainingConfig(
        model_family="v2a",
        training_mode="full",
        pretrained_model_name_or_path=str(tiny_v2a / "model"),
        dataset=str(tiny_v2a / "data"),
        output_dir=str(tmp_path / "out"),
        clip_duration=1.0,
        max_train_steps=2,
        checkpointing_steps=2,
        report_to="none",
        push_to_hub=True,
        hub_model_id="my-v2a",
    )
    try:
        assert train(config) == tmp_path / "out" / "pipeline"
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    assert calls["upload_folder"]["repo_id"] == "me/my-v2a"
    assert calls["upload_folder"]["folder_path"] == tmp_path / "out" / "pipeline"
    assert 'from_pretrained("me/my-v2a")' in (tmp_path / "out" / "pipeline" / "README.md").read_text()
