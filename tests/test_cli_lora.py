"""LoRAs on the command line: a LoRA trained with `lumina-video train-video` tried with the command its run prints
(`generate --lora`), weights and mixing as `set_adapters` does, fusing, the sound's LoRAs (`add-audio --lora`,
`generate --audio-lora`), and every bad LoRA refused in one line before a model loads."""

import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from lora_files import save_random_lora
from safetensors.torch import load_file, save_file
from synthetic_media import write_dataset
from test_cli_v2a import assert_one_line_error, silent_video  # noqa: F401 (a fixture)
from training_commands import run_training_command, training_command

from diffusers_lumina_video import LuminaV2APipeline, LuminaVideoPipeline
from diffusers_lumina_video.cli import ERROR_EXIT_CODE, main
from diffusers_lumina_video.commands import generate, soundtrack
from diffusers_lumina_video.commands.lora_options import parse_lora
from diffusers_lumina_video.loaders.lora_pipeline import LORA_FAMILY_KEY
from diffusers_lumina_video.showcase.builtin_models import tiny_transformer, tiny_v2a_transformer
from diffusers_lumina_video.training import TrainingConfig
from diffusers_lumina_video.training.families import model_family


PROMPT = "w1 w2"
SIZE = ["--height", "64", "--width", "64", "--num-frames", "9", "--steps", "2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_pipeline_dir) -> dict:
    """A LoRA trained on a few generated clips with `lumina-video train-video`, and the log of its run."""
    root = tmp_path_factory.mktemp("lora_cli")
    dataset = write_dataset(root / "data", "jsonl")
    output = root / "run"
    args = [
        *("--pretrained_model_name_or_path", str(tiny_pipeline_dir), "--dataset", str(dataset)),
        *("--cache_dir", str(root / "cache"), "--output_dir", str(output), "--resolution", "64"),
        *("--num_frames", "9", "--rank", "4", "--learning_rate", "5e-3", "--max_train_steps", "6", "--seed", "0"),
        *("--validation_prompts", PROMPT, "--validation_steps", "0", "--validation_num_inference_steps", "2"),
        *("--report_to", "none"),
    ]
    run_training_command(training_command("train_video"), args, root / "train.log")
    return {"model": tiny_pipeline_dir, "output": output, "log": root / "train.log"}


@pytest.fixture(scope="module")
def other_lora(tmp_path_factory) -> Path:
    return save_random_lora(tmp_path_factory.mktemp("other_lora"), tiny_transformer(), LuminaVideoPipeline)


@pytest.fixture(scope="module")
def v2a_lora(tmp_path_factory) -> Path:
    return save_random_lora(tmp_path_factory.mktemp("v2a_lora"), tiny_v2a_transformer(), LuminaV2APipeline)


@pytest.fixture
def written(monkeypatch) -> list[np.ndarray]:
    """The frames each `generate` in this process writes, before mp4 compression."""
    frames, export = [], generate.export_to_video

    def record(video, path, fps):
        frames.append(np.asarray(video, dtype=np.float32))
        return export(video, path, fps=fps)

    monkeypatch.setattr(generate, "export_to_video", record)
    return frames


@pytest.fixture
def sounds(monkeypatch) -> list[np.ndarray]:
    """The soundtracks each `add-audio` or `generate --with-audio` in this process writes, as floats (the tiny
    models' are too quiet for a 16-bit file), whether the picture is encoded again or its stream copied."""
    tracks = []

    def recording(write, audio_index):
        def record(*args, **kwargs):
            tracks.append(np.asarray(args[audio_index], dtype=np.float32))
            return write(*args, **kwargs)

        return record

    monkeypatch.setattr(soundtrack, "export_to_video_with_audio", recording(soundtrack.export_to_video_with_audio, 1))
    monkeypatch.setattr(soundtrack, "replace_audio_of_video", recording(soundtrack.replace_audio_of_video, 1))
    return tracks


def assert_changed(changed: np.ndarray, base: np.ndarray) -> None:
    assert np.abs(changed - base).max() > 1e-2 * np.abs(base).max()


def run_generate(model: Path, output: Path, *extra: str) -> None:
    args = ["generate", "--model", str(model), "--prompt", PROMPT, "--output", str(output), *SIZE, *extra]
    assert main(args) == 0


def test_the_trained_runs_last_line_is_a_command_that_tries_its_lora(trained, tmp_path, written):
    lora = trained["output"] / "pytorch_lora_weights.safetensors"
    last = trained["log"].read_text().strip().splitlines()[-1]
    command = shlex.split(last.split("Try it: ", 1)[1])
    assert command[:2] == ["lumina-video", "generate"], last
    assert command[command.index("--lora") + 1] == str(lora)
    assert (command[command.index("--model") + 1], command[command.index("--prompt") + 1]) == (
        str(trained["model"]),
        PROMPT,
    )
    command[command.index("--output") + 1] = str(tmp_path / "lora.mp4")
    assert main(command[1:]) == 0
    run_generate(trained["model"], tmp_path / "base.mp4")
    run_generate(trained["model"], tmp_path / "zero.mp4", "--lora", f"{lora}:0.0")
    run_generate(trained["model"], tmp_path / "folder.mp4", "--lora", str(trained["output"]))
    with_lora, base, zero, folder = written
    assert_changed(with_lora, base)  # the LoRA changes what the model draws
    np.testing.assert_array_equal(zero, base)  # at weight 0 it does not
    np.testing.assert_array_equal(folder, with_lora)  # the run's folder loads the same file


def test_two_loras_mix_as_set_adapters_does_and_fuse_to_the_same_video(trained, other_lora, tmp_path, written):
    lora = trained["output"] / "pytorch_lora_weights.safetensors"
    mix = ["--lora", f"{lora}:0.7", "--lora", f"{other_lora}:-0.4"]
    run_generate(trained["model"], tmp_path / "mix.mp4", *mix)
    run_generate(trained["model"], tmp_path / "fused.mp4", *mix, "--fuse-lora")

    pipe = DiffusionPipeline.from_pretrained(trained["model"])
    pipe.load_lora_weights(lora, adapter_name="trained")
    pipe.load_lora_weights(other_lora, adapter_name="other")
    pipe.set_adapters(["trained", "other"], adapter_weights=[0.7, -0.4])
    overrides = {"height": 64, "width": 64, "num_frames": 9, "num_inference_steps": 2}
    generate.use_preset(pipe, str(trained["model"]), "f24F96R960")
    kwargs = generate.sampling_kwargs(str(trained["model"]), "f24F96R960", overrides)
    expected = pipe(PROMPT, generator=torch.Generator().manual_seed(0), **kwargs).frames[0]

    mixed, fused = written
    np.testing.assert_allclose(mixed, np.asarray(expected, dtype=np.float32), atol=1e-6)
    np.testing.assert_allclose(fused, mixed, atol=1e-4)


@pytest.mark.parametrize(
    ("value", "source", "weight"),
    [
        ("out/lora.safetensors", "out/lora.safetensors", 1.0),
        ("out/lora.safetensors:0.5", "out/lora.safetensors", 0.5),
        ("owner/name:-1e-1", "owner/name", -0.1),
        ("dir:with:colons", "dir:with:colons", 1.0),  # what follows the last ':' is no number: all of it is the path
        ("dir:with:colons:2", "dir:with:colons", 2.0),
    ],
)
def test_lora_values_split_at_the_last_colon_when_a_number_follows(value, source, weight):
    choice = parse_lora(value)
    assert (choice.source, choice.weight) == (source, weight)


def test_a_path_with_a_colon_and_a_number_is_a_path_when_it_exists(tmp_path):
    (tmp_path / "lora:2").mkdir()
    assert parse_lora(str(tmp_path / "lora:2")).weight == 1.0


def write_state_dict(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    save_file({key: torch.zeros(shape) for key, shape in shapes.items()}, path)
    return path


@pytest.fixture(scope="module")
def bad_loras(tmp_path_factory, other_lora, v2a_lora) -> Path:
    """One file or folder per way a LoRA can be wrong for the tiny models."""
    root = tmp_path_factory.mktemp("bad_loras")
    q = "transformer.layers.0.attn.to_q"
    write_state_dict(root / "weights.safetensors", {"layers.0.attn.to_q.weight": (64, 64)})
    write_state_dict(root / "vae.safetensors", {"encoder.conv_in.weight": (8, 3, 3, 3)})
    write_state_dict(root / "size.safetensors", {f"{q}.lora_A.weight": (4, 48), f"{q}.lora_B.weight": (64, 4)})
    write_state_dict(root / "rank.safetensors", {f"{q}.lora_A.weight": (4, 64), f"{q}.lora_B.weight": (64, 8)})
    to_x = "transformer.layers.0.attn.to_x"
    write_state_dict(root / "target.safetensors", {f"{to_x}.lora_A.weight": (4, 64), f"{to_x}.lora_B.weight": (64, 4)})
    (root / "text.safetensors").write_text("not a safetensors file")
    (root / "empty").mkdir()
    (root / "two").mkdir()
    for name in ("a", "b"):
        (root / "two" / f"{name}.safetensors").write_bytes(other_lora.read_bytes())
    (root / "v2a.safetensors").write_bytes(v2a_lora.read_bytes())
    (root / "video.safetensors").write_bytes(other_lora.read_bytes())
    return root


# (extra arguments, message); {root} is the folder of `bad_loras`.
GENERATE_BAD_LORAS = [
    (["--lora", "{root}/missing.safetensors"], "`--lora` {root}/missing.safetensors does not exist"),
    (["--lora", "./missing"], "`--lora` ./missing does not exist"),
    (["--lora", "{root}/text.safetensors"], "`--lora` {root}/text.safetensors is not a safetensors LoRA file"),
    (
        ["--lora", "{root}/weights.safetensors"],
        "`--lora` {root}/weights.safetensors has keys that are not LoRA weights (no `lora_A`/`lora_B`)",
    ),
    (["--lora", "{root}/vae.safetensors"], "contains no LoRA weights for the transformer (it only has keys for"),
    (
        ["--lora", "{root}/v2a.safetensors"],
        "`--lora` {root}/v2a.safetensors is a Lumina-V2A LoRA, and this model is Lumina-Video; give it to "
        "`add-audio --lora` or `generate --audio-lora`.",
    ),
    (
        ["--lora", "{root}/size.safetensors"],
        "the LoRA weights of `layers.0.attn.to_q` map 48 -> 64 features, but that layer maps 64 -> 64",
    ),
    (["--lora", "{root}/rank.safetensors"], "the LoRA ranks of `layers.0.attn.to_q` do not match"),
    (
        ["--lora", "{root}/target.safetensors"],
        "`--lora` {root}/target.safetensors: LoRA target modules ['layers.0.attn.to_x'] are not linear layers",
    ),
    (["--lora", "{root}/video.safetensors:nan"], "the weight after ':' must be a finite number, got 'nan'"),
    (["--lora", "{root}/video.safetensors:-inf"], "the weight after ':' must be a finite number, got '-inf'"),
    (["--lora", ":0.5"], "`--lora` :0.5: no LoRA before the weight."),
    (["--lora", "{root}/empty"], "`--lora` folder {root}/empty has 0 .safetensors files [] and no"),
    (["--lora", "{root}/two"], "give the LoRA file itself or name it with `--lora-weight-name`."),
    (["--lora", "{root}/two", "--lora-weight-name", "c.safetensors"], "`--lora` folder {root}/two has no c.sa"),
    (["--lora-weight-name", "a.safetensors"], "`--lora-weight-name` needs `--lora`."),
    (["--fuse-lora"], "`--fuse-lora` needs `--lora`."),
    (["--audio-lora", "{root}/v2a.safetensors"], "`--audio-lora` needs `--with-audio`"),
    (
        ["--with-audio", "tiny-random", "--audio-lora", "{root}/video.safetensors"],
        "`--audio-lora` {root}/video.safetensors is a Lumina-Video LoRA, and this model is Lumina-V2A",
    ),
]


@pytest.mark.parametrize(("extra", "message"), GENERATE_BAD_LORAS)
def test_generate_refuses_a_bad_lora_before_loading(bad_loras, tmp_path, capsys, monkeypatch, extra, message):
    loaded = []
    monkeypatch.setattr("diffusers.DiffusionPipeline.from_pretrained", lambda *a, **k: loaded.append(a))
    monkeypatch.setattr(generate, "load_pipeline", lambda *a, **k: loaded.append(a))
    extra = [value.format(root=bad_loras) for value in extra]
    args = ["generate", "--model", "tiny-random", "--prompt", "x", "--output", str(tmp_path / "x.mp4")]
    assert main([*args, "--num-frames", "25", *extra]) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "generate", message.format(root=bad_loras))
    assert not loaded and not any(tmp_path.iterdir())


def test_add_audio_refuses_a_video_lora_before_loading(bad_loras, silent_video, tmp_path, capsys):  # noqa: F811
    args = ["add-audio", str(silent_video), "--model", "tiny-random", "--output", str(tmp_path / "x.mp4")]
    assert main([*args, "--lora", str(bad_loras / "video.safetensors")]) == ERROR_EXIT_CODE
    assert_one_line_error(capsys, "add-audio", "is a Lumina-Video LoRA, and this model is Lumina-V2A; give it to")


def test_a_lora_saved_through_a_pipeline_class_records_its_family(other_lora, v2a_lora):
    from safetensors import safe_open

    for path, family in ((other_lora, "video"), (v2a_lora, "v2a")):
        with safe_open(path, framework="pt") as file:
            assert file.metadata()[LORA_FAMILY_KEY] == family
        assert load_file(path)  # the weights are still there


def test_add_audio_with_a_lora_changes_the_sound_and_at_weight_0_does_not(v2a_lora, silent_video, tmp_path, sounds):  # noqa: F811
    for extra in (
        [],
        ["--lora", str(v2a_lora.parent)],
        ["--lora", f"{v2a_lora}:0"],
        ["--lora", str(v2a_lora), "--fuse-lora"],
    ):
        args = ["add-audio", str(silent_video), "--model", "tiny-random", "--output", str(tmp_path / "x.mp4")]
        assert main([*args, "--steps", "2", *extra]) == 0
    base, with_lora, zero, fused = sounds
    assert_changed(with_lora, base)
    np.testing.assert_array_equal(zero, base)
    np.testing.assert_allclose(fused, with_lora, atol=1e-3 * np.abs(with_lora).max())


def test_generate_with_audio_takes_the_sound_models_lora(v2a_lora, tmp_path, sounds):
    for extra in ([], ["--audio-lora", f"{v2a_lora}:0.8", "--audio-fuse-lora"]):
        args = ["generate", "--model", "tiny-random", "--prompt", "a cat", "--output", str(tmp_path / "x.mp4")]
        args += ["--num-frames", "17", "--fps", "24", "--with-audio", "tiny-random", "--audio-steps", "2"]
        assert main([*args, *extra]) == 0
    base, with_lora = sounds
    assert_changed(with_lora, base)


def test_a_v2a_runs_try_command_gives_its_first_validation_video_sound(v2a_lora, silent_video, tmp_path):  # noqa: F811
    config = TrainingConfig(
        model_family="v2a",
        output_dir=str(tmp_path),
        validation_videos=[str(silent_video)],
        validation_prompts=["rain"],
        clip_duration=1.0,
        validation_num_inference_steps=2,
    )
    command = model_family(config).try_command("tiny-random", v2a_lora)
    assert command[:3] == ["lumina-video", "add-audio", str(silent_video)]
    assert command[command.index("--lora") + 1] == str(v2a_lora)
    assert main(command[1:]) == 0
    assert (tmp_path / "try.mp4").is_file()
