"""`lumina-video generate --video`: video-to-video from the command line, and its options refused before loading."""

import numpy as np
import pytest
from diffusers.utils import export_to_video
from test_cli import assert_one_line_error

from diffusers_lumina_video.cli import ERROR_EXIT_CODE, main
from diffusers_lumina_video.utils.media_io import read_video, write_wav


@pytest.fixture
def input_video(tmp_path):
    """9 frames of 48 x 80 at 12 fps."""
    frames = np.random.default_rng(0).random((9, 48, 80, 3)).astype(np.float32)
    path = tmp_path / "input.mp4"
    export_to_video(list(frames), str(path), fps=12)
    return path


def test_generate_from_a_video_keeps_its_frame_rate_and_count(tmp_path, capsys, input_video):
    output = tmp_path / "out.mp4"
    args = ["generate", "--model", "tiny-random", "--prompt", "a cat", "--output", str(output), "--steps", "4"]
    assert main([*args, "--video", str(input_video), "--strength", "0.5"]) == 0
    written = read_video(output)
    # tiny-random's size (64 x 64, the video centre-cropped) and frame count (9: all of the video's), its 12 fps.
    assert written.frames.shape == (9, 64, 64, 3) and written.fps == 12
    assert "Wrote 9 frames" in capsys.readouterr().out
    assert main([*args, "--video", str(input_video), "--num-frames", "5", "--fps", "8"]) == 0
    written = read_video(output)
    assert written.frames.shape == (5, 64, 64, 3) and written.fps == 8


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strength", "0.5"], "`--strength` needs `--video` (the video to start from)."),
        (["--video", "{video}", "--strength", "0"], "`--strength` must be a number in (0, 1], got 0.0."),
        (["--video", "{video}", "--strength", "1.5"], "`--strength` must be a number in (0, 1], got 1.5."),
        (["--video", "{video}", "--strength", "nan"], "`--strength` must be a number in (0, 1], got nan."),
        (["--video", "{video}", "--strength", "0.1", "--steps", "4"], "`strength=0.1` keeps no step of"),
        (["--video", "{video}", "--num-frames", "10"], "`--num-frames` is 10, but `--video` has only 9 frames"),
        (["--video", "{tmp}/missing.mp4"], "`video` {tmp}/missing.mp4 does not exist."),
        (["--video", "{tmp}/text.mp4"], "`video` cannot be used: `path` {tmp}/text.mp4 is not a media file"),
        (["--video", "{tmp}/sound.mp4"], "`video` cannot be used: `path` {tmp}/sound.mp4 has no video stream."),
    ],
)
def test_generate_rejects_bad_video_options_before_loading(tmp_path, capsys, monkeypatch, input_video, extra, message):
    (tmp_path / "text.mp4").write_text("not a video")
    write_wav(np.zeros(1600, np.float32), tmp_path / "sound.wav")
    (tmp_path / "sound.wav").rename(tmp_path / "sound.mp4")  # a media file without video frames
    loaded = []
    monkeypatch.setattr("diffusers.DiffusionPipeline.from_pretrained", lambda *a, **k: loaded.append(a))
    args = ["generate", "--model", "tiny-random", "--prompt", "x", "--output", str(tmp_path / "x.mp4")]
    extra = [value.format(tmp=tmp_path, video=input_video) for value in extra]
    monkeypatch.setattr("diffusers_lumina_video.commands.generate.load_pipeline", lambda *a: loaded.append(a))
    assert main(args + extra) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "generate", message.format(tmp=tmp_path))
    assert not loaded and not (tmp_path / "x.mp4").exists()
