import subprocess
import sys

import imageio.v3 as iio
import pytest
import torch
from conftest import FORWARD_TOLERANCE, run_golden_forward_case

from diffusers_lumina_video import LuminaVideoTransformer3DModel
from diffusers_lumina_video.cli import main


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


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--num-frames", "0"], "`num_frames` must be >= 1"),
        (["--height", "40"], "`height` and `width` must be positive multiples of 16"),
        (["--steps", "0"], "`--steps` must be >= 1"),
    ],
)
def test_generate_rejects_bad_arguments_before_loading(tmp_path, extra, message):
    args = ["generate", "--model", "/does/not/exist", "--prompt", "x", "--output", str(tmp_path / "x.mp4")]
    with pytest.raises(ValueError, match=message):
        main(args + extra)
    assert not any(tmp_path.iterdir())


def test_generate_rejects_output_that_is_not_mp4(tmp_path):
    with pytest.raises(ValueError, match="`--output` must end in .mp4"):
        main(["generate", "--model", "tiny-random", "--prompt", "x", "--output", str(tmp_path / "x.gif")])


def test_generate_rejects_unknown_preset(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--model", "tiny-random", "--prompt", "x", "--output", "x.mp4", "--preset", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_convert_subcommand_writes_a_loadable_transformer(golden_dir, golden, tmp_path):
    output = tmp_path / "transformer"
    args = ["convert", "--checkpoint_path", str(golden_dir), "--output_path", str(output), "--transformer_only"]
    assert main([*args, "--dtype", "fp32"]) == 0
    model = LuminaVideoTransformer3DModel.from_pretrained(output)
    output = run_golden_forward_case(model, golden, {"input": "x", "f_patch_size": 2, "patch_size": 4})
    torch.testing.assert_close(output, golden["out_f2p4"], **FORWARD_TOLERANCE)
