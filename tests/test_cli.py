import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest
import torch
from conftest import FORWARD_TOLERANCE, run_golden_forward_case

from diffusers_lumina_video import LuminaVideoTransformer3DModel
from diffusers_lumina_video.cli import ERROR_EXIT_CODE, main
from diffusers_lumina_video.commands import generate


def test_generate_tiny_random_writes_a_playable_mp4(tmp_path, capsys):
    output = tmp_path / "cat.mp4"
    assert (
        main(["generate", "--model", "tiny-random", "--prompt", "a cat", "--output", str(output), "--seed", "3"]) == 0
    )
    frames = iio.imread(output)
    assert frames.shape == (9, 64, 64, 3)  # tiny-random defaults: 9 frames at 64x64
    assert "Wrote 9 frames" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["cat.mp4"]  # no temporary file left behind


def test_generate_console_script_with_overrides(tmp_path):
    output = tmp_path / "dog.mp4"
    command = [sys.executable, "-m", "diffusers_lumina_video.cli", "generate", "--model", "tiny-random"]
    command += ["--prompt", "a dog", "--output", str(output), "--num-frames", "5", "--height", "32", "--width", "64"]
    command += ["--steps", "2", "--preset", "f16F64R512", "--motion-score", "3"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "random weights" in result.stderr
    assert iio.imread(output).shape == (5, 32, 64, 3)


def assert_one_line_error(capsys, command: str, message: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lumina-video {command}: error: "), err
    assert message in err, err
    assert "\n" not in err and "Traceback" not in err


# (extra arguments, message); the base command is valid except for `--model`, which is checked last.
GENERATE_BAD_INPUTS = [
    (["--num-frames", "0"], "`num_frames` must be >= 1"),
    (["--num-frames", "-3"], "`num_frames` must be >= 1"),
    (["--height", "40"], "`height` and `width` must be positive multiples of 16"),
    (["--width", "0"], "`height` and `width` must be positive multiples of 16"),
    (["--height", "-32"], "`height` and `width` must be positive multiples of 16"),
    (["--steps", "0"], "`--steps` must be >= 1"),
    (["--steps", "-2"], "`--steps` must be >= 1"),
    (["--seed", "-1"], "`--seed` must be an integer in [0, 2**63)"),
    (["--seed", str(2**64)], "`--seed` must be an integer in [0, 2**63)"),
    (["--fps", "0"], "`--fps` must be a positive frame rate, got 0"),
    (["--fps", "-24"], "`--fps` must be a positive frame rate"),
    (["--motion-score", "nan"], "`--motion-score` must be a finite number"),
    (["--motion-score", "inf"], "`--motion-score` must be a finite number"),
    (["--motion-score=-inf"], "`--motion-score` must be a finite number"),
    (["--prompt", "  "], "`--prompt` must not be empty"),
    (["--output", "{tmp}/x.gif"], "`--output` must end in .mp4"),
    (["--output", "{tmp}/missing/x.mp4"], "`--output` folder {tmp}/missing does not exist"),
    (["--output", "{tmp}/folder.mp4"], "`--output` {tmp}/folder.mp4 is a folder"),
    ([], "`--model` /does/not/exist is neither a pipeline folder nor a Hub id"),
]


@pytest.mark.parametrize(("extra", "message"), GENERATE_BAD_INPUTS)
def test_generate_rejects_bad_arguments_before_loading(tmp_path, capsys, monkeypatch, extra, message):
    (tmp_path / "folder.mp4").mkdir()
    loaded = []
    monkeypatch.setattr("diffusers.DiffusionPipeline.from_pretrained", lambda *a, **k: loaded.append(a))
    args = ["generate", "--model", "/does/not/exist", "--prompt", "x", "--output", str(tmp_path / "x.mp4")]
    extra = [value.format(tmp=tmp_path) for value in extra]
    assert main(args + extra) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "generate", message.format(tmp=tmp_path))
    assert not loaded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.mp4"]


def test_generate_rejects_an_output_folder_that_is_not_writable(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("os.access", lambda path, mode: False)  # permissions do not bind root, who runs CI
    args = ["generate", "--model", "tiny-random", "--prompt", "x", "--output", str(tmp_path / "x.mp4")]
    assert main(args) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "generate", f"`--output` folder {tmp_path} is not writable")


def _folder_root_cannot_write() -> Path | None:
    """A folder that `os.access` calls writable for root but where no file can be created (sysfs)."""
    folder = Path("/sys")
    try:
        (folder / "x.mp4").open("wb").close()
    except OSError:
        return folder if os.access(folder, os.W_OK | os.X_OK) else None
    return None


def test_generate_refuses_an_output_it_cannot_create_before_the_model_loads(tmp_path, capsys, monkeypatch):
    def loading(*args, **kwargs):
        raise AssertionError("the model loaded before the output path was checked")

    monkeypatch.setattr(generate, "load_pipeline", loading)
    (tmp_path / "a_file").write_text("")
    args = ["generate", "--model", "tiny-random", "--prompt", "x", "--output", str(tmp_path / "a_file" / "x.mp4")]
    assert main(args) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "generate", f"lies under {tmp_path / 'a_file'}, which is a file, not a folder")
    folder = _folder_root_cannot_write()
    if folder is None:
        pytest.skip("no folder here where `os.access` allows writing and creating a file fails")
    args = ["generate", "--model", "tiny-random", "--prompt", "x", "--output", str(folder / "x.mp4")]
    assert main(args) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "generate", f"`--output` folder {folder} is not writable")


def test_generate_offload_needs_an_accelerator(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = ["generate", "--model", "tiny-random", "--prompt", "x", "--output", str(tmp_path / "x.mp4"), "--offload"]
    assert main(args) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "generate", "`--offload` moves models between CPU and an accelerator")


def test_generate_rejects_unknown_preset_naming_the_models_own(tmp_path, capsys):
    args = ["generate", "--model", "tiny-shapes", "--prompt", "x", "--output", str(tmp_path / "x.mp4")]
    assert main([*args, "--preset", "nope"]) == ERROR_EXIT_CODE
    released = "'f16F64R512', 'f16F64R512-MultiScale', 'f24F96R960', 'f24F96R960-MultiScale'"
    message = f"`--preset` must be one of [{released}, 'tiny-shapes', 'tiny-shapes-MultiScale'], got 'nope'."
    assert_one_line_error(capsys, "generate", message)


def test_verbose_and_debug_variable_show_the_traceback(tmp_path, monkeypatch):
    args = ["generate", "--model", "tiny-random", "--prompt", "x", "--output", str(tmp_path / "x.gif")]
    with pytest.raises(ValueError, match="`--output` must end in .mp4"):
        main([*args, "--verbose"])
    with pytest.raises(ValueError, match="`--output` must end in .mp4"):
        main(["--verbose", *args])
    monkeypatch.setenv("LUMINA_VIDEO_DEBUG", "1")
    with pytest.raises(ValueError, match="`--output` must end in .mp4"):
        main(args)


def test_a_user_error_in_a_real_process_prints_one_line_and_no_traceback(tmp_path):
    command = [sys.executable, "-m", "diffusers_lumina_video.cli", "convert", "--checkpoint_path"]
    command += [str(tmp_path / "nothing"), "--output_path", str(tmp_path / "out"), "--transformer_only"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == ERROR_EXIT_CODE
    # The last line: third-party libraries may log import warnings first.
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == f"lumina-video convert: error: `checkpoint_path` {tmp_path / 'nothing'} does not exist."
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture
def bad_checkpoints(tmp_path):
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    (tmp_path / "a_file").write_text("")
    return tmp_path


CONVERT_BAD_INPUTS = [
    (["--checkpoint_path", "{tmp}/nothing"], "`checkpoint_path` {tmp}/nothing does not exist"),
    (["--checkpoint_path", "{tmp}"], "`checkpoint_path` {tmp} holds none of"),
    (["--checkpoint_path", "{tmp}/garbage.pth"], "Cannot read {tmp}/garbage.pth as a Lumina-Video checkpoint"),
    (["--max_shard_size", "lots"], "`max_shard_size` must be a byte count or a size such as '2GB'"),
    (["--max_shard_size", "0"], "`max_shard_size` must be a byte count or a size such as '2GB'"),
    (["--push_to_hub", "not a repo"], "`push_to_hub` must be a Hub repository id"),
    (["--output_path", "{tmp}/a_file"], "`output_path` {tmp}/a_file is a file; give a folder path"),
    (["--output_path", "{tmp}/a_file/sub"], "`output_path` {tmp}/a_file/sub lies under {tmp}/a_file, which is a file"),
]


@pytest.mark.parametrize(("extra", "message"), CONVERT_BAD_INPUTS)
def test_convert_rejects_bad_arguments(bad_checkpoints, capsys, extra, message):
    tmp = bad_checkpoints
    args = ["convert", "--checkpoint_path", f"{tmp}/garbage.pth", "--output_path", f"{tmp}/out", "--transformer_only"]
    args += [value.format(tmp=tmp) for value in extra]
    assert main(args) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "convert", message.format(tmp=tmp))
    assert not (tmp / "out").exists()


TRAIN_VIDEO_BAD_INPUTS = [
    ([], "`pretrained_model_name_or_path` is required"),
    (["--dataset", "{tmp}/missing"], "`dataset` {tmp}/missing does not exist"),
    (["--resolution", "100"], "`resolution` must be a positive multiple of 32"),
    (["--num_frames", "10"], "`num_frames` must be 1 + a multiple of 8"),
    (["--rank", "0"], "`rank` must be a positive integer"),
    (["--learning_rate", "nan"], "`learning_rate` must be > 0"),
    (["--rank", "many"], "`rank` must be an integer, got 'many'"),
    (["--config", "{tmp}/missing.yaml"], "Config file {tmp}/missing.yaml does not exist"),
    (["--mixed_precision", "fp8"], "`mixed_precision` must be one of"),
    (["--training_mode", "full", "--rank", "8"], "`rank` only applies to `training_mode` 'lora'"),
    (["--training_mode", "everything"], "`training_mode` must be one of ['lora', 'full']"),
]


@pytest.mark.parametrize("command", ["train-video", "train-lora"])
@pytest.mark.parametrize(("extra", "message"), TRAIN_VIDEO_BAD_INPUTS)
def test_train_video_rejects_bad_arguments(tmp_path, capsys, command, extra, message):
    assert main([command, *(value.format(tmp=tmp_path) for value in extra)]) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, command, message.format(tmp=tmp_path))


def test_convert_subcommand_writes_a_loadable_transformer(golden_dir, golden, tmp_path):
    output = tmp_path / "transformer"
    args = ["convert", "--checkpoint_path", str(golden_dir), "--output_path", str(output), "--transformer_only"]
    assert main([*args, "--dtype", "fp32"]) == 0
    model = LuminaVideoTransformer3DModel.from_pretrained(output)
    output = run_golden_forward_case(model, golden, {"input": "x", "f_patch_size": 2, "patch_size": 4})
    torch.testing.assert_close(output, golden["out_f2p4"], **FORWARD_TOLERANCE)


@pytest.mark.parametrize("preset", [None, "tiny-shapes-MultiScale"])
def test_generate_with_the_built_in_model_uses_its_folders_settings(tmp_path, capsys, preset):
    output = tmp_path / "circle.mp4"
    args = ["generate", "--prompt", "a red circle moving left", "--output", str(output)]  # tiny-shapes by default
    assert main(args + (["--preset", preset] if preset else [])) == 0
    assert iio.imread(output).shape == (16, 64, 64, 3)
    assert iio.immeta(output)["fps"] == 8
