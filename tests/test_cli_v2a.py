"""The command line's sound: `add-audio`, `generate --with-audio` and `assemble-v2a`."""

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import recorded_source_paths
from diffusers import DiffusionPipeline
from transformers import CLIPConfig, CLIPModel

from diffusers_lumina_video import LuminaV2APipeline
from diffusers_lumina_video.cli import ERROR_EXIT_CODE, main
from diffusers_lumina_video.showcase.builtin_models import (
    tiny_audio_vae,
    tiny_clip_image_encoder,
    tiny_clip_image_processor,
    tiny_clip_text_encoder,
    tiny_tokenizer,
    tiny_vocoder,
)
from diffusers_lumina_video.utils.media_io import export_to_video_with_audio, read_audio, read_video


GOLDEN_SYNCHFORMER = Path(__file__).resolve().parents[2] / "shared" / "golden" / "synchformer_tiny"


@pytest.fixture(scope="module")
def silent_video(tmp_path_factory) -> Path:
    """1 s at 25 fps, with a quiet track that `add-audio` replaces."""
    path = tmp_path_factory.mktemp("media") / "silent.mp4"
    frames = np.random.default_rng(0).integers(0, 255, (25, 32, 32, 3), dtype=np.uint8)
    export_to_video_with_audio(frames, np.full(16000, 0.01, dtype=np.float32), 16000, path, 25)
    return path


def assert_one_line_error(capsys, command: str, message: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lumina-video {command}: error: ") and message in err, err
    assert "Traceback" not in err


def test_add_audio_writes_the_video_with_its_soundtrack(silent_video, tmp_path, capsys):
    output, wav = tmp_path / "with_sound.mp4", tmp_path / "sound.wav"
    args = ["add-audio", str(silent_video), "--model", "tiny-random", "--output", str(output), "--wav", str(wav)]
    assert main([*args, "--steps", "2", "--prompt", "rain"]) == 0
    assert read_video(output).frames.shape[0] == 25
    assert abs(len(read_audio(output)) - 16000) <= 1024  # one AAC frame
    assert abs(len(read_audio(wav)) - 16000) <= 160
    assert "1.00 s of sound" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sound.wav", "with_sound.mp4"]


def test_add_audio_keeps_the_picture_exactly_and_copies_its_stream(silent_video, tmp_path, capsys):
    output = tmp_path / "with_sound.mp4"
    args = ["add-audio", str(silent_video), "--model", "tiny-random", "--output", str(output), "--steps", "1"]
    assert main(args) == 0
    np.testing.assert_array_equal(read_video(output).frames, read_video(silent_video).frames)
    with av.open(str(silent_video)) as source, av.open(str(output)) as written:
        assert [bytes(p) for p in written.demux(written.streams.video[0]) if p.size] == [
            bytes(p) for p in source.demux(source.streams.video[0]) if p.size
        ]
        assert len(written.streams.audio) == 1
    assert abs(len(read_audio(output)) - 16000) <= 1024
    assert "Encoding the picture again" not in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["with_sound.mp4"]


def test_add_audio_says_when_it_encodes_the_picture_again(tmp_path, capsys):
    cut, mkv = tmp_path / "cut.mp4", tmp_path / "raw.mkv"
    frames = np.random.default_rng(1).integers(0, 255, (25, 32, 32, 3), dtype=np.uint8)
    with av.open(str(mkv), mode="w") as container:  # uncompressed frames, which an mp4 cannot carry
        stream = container.add_stream("rawvideo", rate=25)
        stream.height, stream.width, stream.pix_fmt = 32, 32, "yuv420p"
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    for video, output, extra, reason in [
        (mkv, tmp_path / "from_mkv.mp4", [], "An mp4 cannot carry the rawvideo video stream"),
        (mkv, cut, ["--duration", "0.8"], "`--duration` cuts the clip."),
    ]:
        args = ["add-audio", str(video), "--model", "tiny-random", "--output", str(output), "--steps", "1", *extra]
        assert main(args) == 0
        out = capsys.readouterr().out
        assert f"Encoding the picture again: {reason}" in out and out.count("Encoding the picture again") == 1, out
        with av.open(str(output)) as written:
            assert written.streams.video[0].codec_context.name == "h264" and len(written.streams.audio) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4", "from_mkv.mp4", "raw.mkv"]


def test_generate_with_audio_writes_one_mp4_with_both_streams(tmp_path):
    output = tmp_path / "cat.mp4"
    args = ["generate", "--model", "tiny-random", "--prompt", "a cat", "--output", str(output), "--num-frames", "17"]
    assert main([*args, "--fps", "24", "--with-audio", "tiny-random", "--audio-steps", "2"]) == 0
    assert read_video(output).frames.shape == (17, 64, 64, 3)
    assert abs(len(read_audio(output)) - 17 / 24 * 16000) <= 1024


ADD_AUDIO_BAD_INPUTS = [
    (["--video", "/no/such.mp4"], "`VIDEO` /no/such.mp4 does not exist"),
    (["--output", "{tmp}/out.gif"], "`--output` must end in .mp4"),
    (["--output", "{tmp}/missing/out.mp4"], "folder {tmp}/missing does not exist"),
    (["--wav", "{tmp}/sound.mp3"], "`--wav` must end in .wav"),
    (["--duration", "0.5"], "`--duration` must be at least 0.64 s"),
    (["--duration", "nan"], "`--duration` must be at least 0.64 s"),
    (["--steps", "0"], "`--steps` must be >= 1"),
    (["--guidance-scale", "inf"], "`--guidance-scale` must be a finite number >= 0"),
    (["--seed", "-1"], "`--seed` must be an integer in [0, 2**63)"),
    (["--model", "/no/model"], "`--model` /no/model is neither a pipeline folder nor a Hub id"),
]


@pytest.mark.parametrize(("change", "message"), ADD_AUDIO_BAD_INPUTS)
def test_add_audio_refuses_bad_arguments_before_loading(silent_video, tmp_path, capsys, change, message):
    values = {"--video": str(silent_video), "--model": "tiny-random", "--output": str(tmp_path / "out.mp4")}
    flag, value = change[0], change[1].replace("{tmp}", str(tmp_path))
    values[flag] = value
    args = ["add-audio", values.pop("--video")] + [item for pair in values.items() for item in pair]
    assert main(args) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "add-audio", message.replace("{tmp}", str(tmp_path)))
    assert not (tmp_path / "out.mp4").exists()


def test_add_audio_refuses_a_file_that_is_not_a_video(tmp_path, capsys):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    assert main(["add-audio", str(notes), "--model", "tiny-random", "--output", str(tmp_path / "o.mp4")]) == 1
    assert_one_line_error(capsys, "add-audio", "notes.mp4")


def test_generate_with_audio_refuses_a_video_too_short_for_sound(tmp_path, capsys):
    args = ["generate", "--model", "tiny-random", "--prompt", "x", "--output", str(tmp_path / "x.mp4")]
    assert main([*args, "--with-audio", "tiny-random"]) == ERROR_EXIT_CODE  # 9 frames at 24 fps
    assert_one_line_error(capsys, "generate", "`--with-audio` needs at least 0.64 s of video")
    assert main([*args, "--num-frames", "17", "--fps", "24", "--with-audio", "/no/v2a"]) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "generate", "`--with-audio` /no/v2a is neither")


@pytest.fixture(scope="module")
def released_components(tmp_path_factory) -> dict[str, Path]:
    """Tiny stand-ins for the released models, saved in their public layouts."""
    root = tmp_path_factory.mktemp("released")
    text, vision = tiny_clip_text_encoder(), tiny_clip_image_encoder()
    clip = CLIPModel(
        CLIPConfig(text_config=text.config.to_dict(), vision_config=vision.config.to_dict(), projection_dim=16)
    )
    clip.save_pretrained(root / "clip")
    tiny_tokenizer(model_max_length=77).save_pretrained(root / "clip")
    tiny_clip_image_processor().save_pretrained(root / "clip")
    tiny_audio_vae().save_pretrained(root / "audioldm" / "vae")
    tiny_vocoder().save_pretrained(root / "audioldm" / "vocoder")
    return {"clip": root / "clip", "audioldm": root / "audioldm"}


def assemble_args(released: dict[str, Path], output: Path) -> list[str]:
    args = ["assemble-v2a", "--synchformer", str(GOLDEN_SYNCHFORMER / "synchformer_state_dict.pth")]
    args += ["--synchformer-heads", "4", "--clip", str(released["clip"]), "--audioldm", str(released["audioldm"])]
    args += ["--hidden-size", "64", "--num-layers", "1", "--num-attention-heads", "4", "--num-kv-heads", "2"]
    return [*args, "--context-dim", "32", "--output", str(output)]


def test_assemble_v2a_builds_a_loadable_untrained_pipeline(released_components, tmp_path):
    output = tmp_path / "lumina-v2a"
    assert main(assemble_args(released_components, output)) == 0
    pipe = DiffusionPipeline.from_pretrained(output)
    assert isinstance(pipe, LuminaV2APipeline)
    config = pipe.transformer.config
    assert (config.visual_feat_dim, config.text_feat_dim, config.sync_feat_dim) == (16, 16, 64)
    assert "untrained" in (output / "README.md").read_text()
    assert recorded_source_paths(output) == {}  # no path of this machine in the folder
    frames = np.random.default_rng(1).integers(0, 255, (25, 48, 48, 3), dtype=np.uint8)
    audio = pipe(video=frames, fps=25, num_inference_steps=1, generator=torch.Generator().manual_seed(0)).audios
    assert audio.shape == (1, 16000) and np.isfinite(audio).all()


def test_assemble_v2a_refuses_bad_arguments_before_loading(released_components, tmp_path, capsys):
    args = assemble_args(released_components, tmp_path / "out")
    missing = [a if a != str(GOLDEN_SYNCHFORMER / "synchformer_state_dict.pth") else "/no/sync.pth" for a in args]
    assert main(missing) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "assemble-v2a", "`synchformer_checkpoint` /no/sync.pth does not exist")
    no_clip = [a if a != str(released_components["clip"]) else str(tmp_path / "nothing") for a in args]
    assert main(no_clip) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "assemble-v2a", "`clip_model`")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    assert main(args) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "assemble-v2a", "is not empty; pass `overwrite=True`")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.fixture
def loaded_models(monkeypatch) -> list[str]:
    """The models the commands load, in order (the real loading still runs)."""
    from diffusers_lumina_video.commands import add_audio, generate

    names, load = [], generate.load_pipeline

    def recording_load(model, *args, **kwargs):
        names.append(model)
        return load(model, *args, **kwargs)

    monkeypatch.setattr(generate, "load_pipeline", recording_load)
    monkeypatch.setattr(add_audio, "load_pipeline", recording_load)
    return names


def test_generate_with_audio_without_a_value_sounds_the_built_in_model_with_its_own(tmp_path, loaded_models):
    output = tmp_path / "ball.mp4"  # README's second command
    args = ["generate", "--prompt", "a red circle bouncing left and right", "--with-audio", "--output", str(output)]
    assert main(args) == 0
    assert loaded_models == ["tiny-shapes", "tiny-shapes-v2a"]
    assert read_video(output).frames.shape == (16, 64, 64, 3)
    assert abs(len(read_audio(output)) - 2.0 * 16000) <= 1024
    random = tmp_path / "random.mp4"
    args = ["generate", "--model", "tiny-random", "--prompt", "x", "--num-frames", "17", "--fps", "24"]
    assert main([*args, "--with-audio", "--audio-steps", "1", "--output", str(random)]) == 0
    assert loaded_models[2:] == ["tiny-random", "tiny-random"]


def test_add_audio_uses_the_built_in_sound_model_by_default(silent_video, tmp_path, loaded_models):
    output = tmp_path / "sounded.mp4"
    assert main(["add-audio", str(silent_video), "--output", str(output), "--steps", "2"]) == 0
    assert loaded_models == ["tiny-shapes-v2a"]
    assert abs(len(read_audio(output)) - 16000) <= 1024


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["generate", "--model", "tiny-shapes-v2a"],
            "`--model` tiny-shapes-v2a is a built-in sound model, not a video",
        ),
        (
            ["generate", "--with-audio", "tiny-shapes"],
            "`--with-audio` tiny-shapes is a built-in video model, not a sound",
        ),
        (
            ["generate", "--model", "{tmp}", "--with-audio"],
            "`--with-audio` without a value picks the sound model of a",
        ),
        (["add-audio", "{video}", "--model", "tiny-shapes"], "`--model` tiny-shapes is a built-in video model"),
    ],
)
def test_a_model_of_the_other_family_is_refused_before_loading(
    silent_video, tmp_path, capsys, loaded_models, args, message
):
    args = [arg.replace("{tmp}", str(tmp_path)).replace("{video}", str(silent_video)) for arg in args]
    if args[0] == "generate":
        args += ["--prompt", "x"]
    assert main([*args, "--output", str(tmp_path / "out.mp4")]) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, args[0], message)
    assert loaded_models == [] and not (tmp_path / "out.mp4").exists()
