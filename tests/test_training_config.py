"""LoRA training settings: config files, flags on top of them, and the checks that run before anything is loaded."""

import argparse
from pathlib import Path

import pytest

from diffusers_lumina_video.commands import train_video as train_video_command
from diffusers_lumina_video.commands.train_video import config_from_args
from diffusers_lumina_video.training.config import TrainingConfig


REQUIRED = {"pretrained_model_name_or_path": "model", "output_dir": "out"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers(dest="command", required=True)
    train_video_command.register(subparsers)
    return parser.parse_args(["train-lora", *argv])


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("")
    return str(path)


CONFIG_TEXTS = {
    ".yaml": "pretrained_model_name_or_path: model\noutput_dir: out\ndataset: {dataset}\nrank: 8\n"
    "timestep_shifts:\n  1x2x2: 3\nvalidation_prompts:\n  - a\n",
    ".json": '{{"pretrained_model_name_or_path": "model", "output_dir": "out", "dataset": "{dataset}", "rank": 8, '
    '"timestep_shifts": {{"1x2x2": 3}}, "validation_prompts": ["a"]}}',
    ".toml": 'pretrained_model_name_or_path = "model"\noutput_dir = "out"\ndataset = "{dataset}"\nrank = 8\n'
    'validation_prompts = ["a"]\n[timestep_shifts]\n"1x2x2" = 3\n',
}


@pytest.mark.parametrize("suffix", sorted(CONFIG_TEXTS))
def test_config_files_of_every_format_read_the_same(tmp_path, dataset, suffix):
    path = tmp_path / f"lora{suffix}"
    path.write_text(CONFIG_TEXTS[suffix].format(dataset=dataset))
    config = TrainingConfig.from_file(path).validate()
    assert config.rank == 8 and config.timestep_shifts == {"1x2x2": 3.0} and config.validation_prompts == ["a"]


def test_flags_override_the_file_and_keep_its_other_values(tmp_path, dataset):
    path = tmp_path / "lora.yaml"
    path.write_text(f"pretrained_model_name_or_path: model\noutput_dir: out\ndataset: {dataset}\nrank: 8\nseed: 3\n")
    args = parse(
        [
            "--config",
            str(path),
            "--rank",
            "4",
            "--max-train-steps",
            "7",
            "--gradient_checkpointing",
            "--resume",
            "latest",
        ]
    )
    config = config_from_args(args)
    assert (config.rank, config.seed, config.max_train_steps) == (4, 3, 7)
    assert config.gradient_checkpointing is True and config.resume_from_checkpoint == "latest"
    assert args.run is train_video_command.run


def test_mapping_and_list_flags(dataset):
    config = config_from_args(
        parse(
            [*[f"--{k}={v}" for k, v in REQUIRED.items()], "--dataset", dataset]
            + ["--timestep_shifts", "1x2x2=2.5,2x4x4=9", "--patch_sizes", "1x2x2", "2x4x4", "--lora_alpha", "none"]
        )
    )
    assert config.timestep_shifts == {"1x2x2": 2.5, "2x4x4": 9.0}
    assert config.parsed_patch_sizes == [(1, 2, 2), (2, 4, 4)] and config.lora_alpha is None


def test_unknown_setting_suggests_the_close_one(tmp_path):
    path = tmp_path / "lora.yaml"
    path.write_text("learning_rat: 0.1\n")
    with pytest.raises(
        ValueError, match=r"Unknown setting\(s\) in .*'learning_rat' \(did you mean 'learning_rate'\?\)"
    ):
        TrainingConfig.from_file(path)


def test_wrong_types_name_the_setting():
    with pytest.raises(ValueError, match=r"`rank` must be an integer, got 'abc'"):
        TrainingConfig(rank="abc")
    with pytest.raises(ValueError, match=r"`gradient_checkpointing` must be true or false, got 'maybe'"):
        TrainingConfig(gradient_checkpointing="maybe")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rank": 0}, "`rank` must be a positive integer, got 0"),
        ({"rank": -4}, "`rank` must be a positive integer, got -4"),
        ({"resolution": 250}, "`resolution` must be a positive multiple of 32 .* got 250"),
        ({"num_frames": 32}, r"`num_frames` must be 1 \+ a multiple of 8 \(e.g. 9, 17, 33, 97\), got 32"),
        ({"validation_width": 100}, "`validation_width` must be a positive multiple of 32, got 100"),
        ({"validation_num_frames": 0}, r"`validation_num_frames` must be >= 1"),
        ({"caption_dropout": 1.5}, r"`caption_dropout` is a probability in \[0, 1\], got 1.5"),
        ({"lr_scheduler": "fancy"}, "`lr_scheduler` must be one of .*'constant'.*, got 'fancy'"),
        ({"mixed_precision": "fp8"}, r"`mixed_precision` must be one of \['no', 'fp16', 'bf16'\]"),
        ({"patch_sizes": ["2x2"]}, "a patch size is written 'pFxpHxpW'"),
        ({"patch_sizes": ["1x2x2", "1x2x2"]}, r"`patch_sizes` lists \['1x2x2'\] more than once"),
        ({"timestep_shifts": {"1x2x2": 0}}, r"`timestep_shifts\['1x2x2'\]` must be > 0"),
        ({"dataset": "missing.csv"}, "`dataset` missing.csv does not exist"),
        ({"pretrained_model_name_or_path": None}, "`pretrained_model_name_or_path` is required"),
    ],
)
def test_invalid_settings_are_refused_with_the_allowed_values(dataset, overrides, message):
    values = {**REQUIRED, "dataset": dataset, **overrides}
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**values).validate()


def test_every_problem_is_reported_at_once(dataset):
    with pytest.raises(ValueError) as error:
        TrainingConfig(**REQUIRED, dataset=dataset, rank=0, resolution=100, vd_weight=-1).validate()
    assert all(name in str(error.value) for name in ("`rank`", "`resolution`", "`vd_weight`"))


def test_the_example_config_is_valid(dataset):
    example = Path(__file__).resolve().parents[1] / "examples" / "lora_training.yaml"
    config = TrainingConfig.from_file(example, dataset=dataset).validate()
    assert config.parsed_patch_sizes is None and config.timestep_shifts == {"1x2x2": 4.0, "2x2x2": 8.0, "2x4x4": 16.0}


def test_example_config_is_valid_but_for_its_placeholder_paths():
    example = Path(__file__).resolve().parents[1] / "examples" / "lora_training.yaml"
    config = TrainingConfig.from_file(example)
    assert config.timestep_shifts == {"1x2x2": 4.0, "2x2x2": 8.0, "2x4x4": 16.0}
    with pytest.raises(ValueError, match="Invalid training settings") as error:
        config.validate()
    # The only complaint is the placeholder dataset folder.
    assert str(error.value).count("\n  - ") == 1 and "`dataset` data/my_clips does not exist" in str(error.value)


def test_v2a_example_config_is_valid_but_for_its_placeholder_paths():
    example = Path(__file__).resolve().parents[1] / "examples" / "v2a_training.yaml"
    config = TrainingConfig.from_file(example)
    assert (config.model_family, config.training_mode, config.clip_duration) == ("v2a", "full", 8.0)
    with pytest.raises(ValueError, match="Invalid training settings") as error:
        config.validate()
    assert str(error.value).count("\n  - ") == 2, error.value
    assert "`dataset` data/vggsound.csv does not exist" in str(error.value)
    assert "`validation_videos` ['data/validation/dog_barking.mp4'] do not exist" in str(error.value)
