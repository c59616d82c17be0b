"""The converter: golden round trips (CLI and Python), the full-size mapping on the meta device, the pipeline folder,
refusal of unsafe or broken checkpoints, and output that appears whole or not at all."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from conftest import FORWARD_TOLERANCE, card_usage_code, recorded_source_paths, run_golden_forward_case
from diffusers import AutoModel, DiffusionPipeline
from safetensors.torch import load_file, save_file

from diffusers_lumina_video import SAMPLING_PRESETS, LuminaVideoPipeline, LuminaVideoTransformer3DModel, conversion
from diffusers_lumina_video.cli import main as cli_main
from diffusers_lumina_video.commands.convert import main
from diffusers_lumina_video.conversion import convert_lumina_video_checkpoint
from diffusers_lumina_video.loaders.single_file_utils import (
    MODEL_ARGS_NAME,
    CheckpointFormatError,
    UnsafeCheckpointError,
    convert_lumina_video_transformer_checkpoint_to_diffusers,
    infer_transformer_config,
    load_model_args,
    load_original_state_dict,
)
from diffusers_lumina_video.showcase.builtin_models import tiny_text_encoder, tiny_tokenizer, tiny_vae


SCRIPT = Path(__file__).resolve().parents[1] / "conversion" / "convert_lumina_video_to_diffusers.py"
PTH_NAME = "consolidated.00-of-01.pth"


def assert_matches_golden(model, golden, golden_spec):
    for case in golden_spec["forward_cases"]:
        torch.testing.assert_close(
            run_golden_forward_case(model, golden, case), golden[case["output"]], **FORWARD_TOLERANCE
        )


def write_release(folder: Path, state_dict: dict, model_args: types.SimpleNamespace | None) -> Path:
    """An original-format release folder, as the reference saves one."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict, folder / PTH_NAME)
    if model_args is not None:
        torch.save(model_args, folder / MODEL_ARGS_NAME)
    return folder


def leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


@pytest.fixture(scope="module")
def original(golden_dir) -> dict[str, torch.Tensor]:
    return load_original_state_dict(golden_dir / PTH_NAME)


@pytest.fixture(scope="module")
def model_args(golden_dir) -> types.SimpleNamespace:
    return load_model_args(golden_dir / MODEL_ARGS_NAME)


@pytest.fixture(scope="module")
def converted_pipeline(golden_dir, components_dir, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("pipeline") / "lumina-video"
    return convert_lumina_video_checkpoint(
        golden_dir,
        output,
        dtype="fp32",
        text_encoder_path=str(components_dir / "gemma"),
        vae_path=str(components_dir / "cogvideox"),
    )


def test_converted_pipeline_carries_no_local_path(converted_pipeline, components_dir):
    assert recorded_source_paths(converted_pipeline) == {}
    texts = "".join(path.read_text() for path in converted_pipeline.rglob("*.json"))
    assert str(components_dir) not in texts


# ----------------------------------------------------------------------------------------- golden round trips
def test_cli_converts_pth_release_to_golden_transformer(golden_dir, tmp_path, golden, golden_spec):
    output = tmp_path / "transformer"
    args = [
        "--checkpoint_path",
        str(golden_dir),
        "--output_path",
        str(output),
        "--transformer_only",
        "--dtype",
        "fp32",
    ]
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(output)) == ["README.md", "config.json", "diffusion_pytorch_model.safetensors"]
    for model in (LuminaVideoTransformer3DModel.from_pretrained(output), AutoModel.from_pretrained(str(output))):
        assert isinstance(model, LuminaVideoTransformer3DModel)
        assert_matches_golden(model, golden, golden_spec)


def test_cli_converts_safetensors_file_to_golden_transformer(golden_dir, original, tmp_path, golden, golden_spec):
    release = tmp_path / "release"
    release.mkdir()
    save_file({f"_orig_mod.{k}": v.contiguous() for k, v in original.items()}, release / "weights.safetensors")
    shutil.copy(golden_dir / MODEL_ARGS_NAME, release)
    output = tmp_path / "out"
    main(
        ["--checkpoint_path", str(release / "weights.safetensors"), "--output_path", str(output)]
        + ["--dtype", "fp32", "--transformer_only"]
    )
    assert_matches_golden(LuminaVideoTransformer3DModel.from_pretrained(output), golden, golden_spec)


def test_bf16_output_is_sharded_and_keeps_fp32_modules(golden_dir, original, tmp_path):
    output = convert_lumina_video_checkpoint(
        golden_dir, tmp_path / "out", transformer_only=True, max_shard_size="300KB"
    )
    index = json.loads((output / "diffusion_pytorch_model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and sorted(p.name for p in output.glob("*.safetensors")) == shards
    stored = {key: value for shard in shards for key, value in load_file(output / shard).items()}
    expected = convert_lumina_video_transformer_checkpoint_to_diffusers(original)
    assert stored.keys() == expected.keys()
    for key, value in stored.items():
        dtype = torch.float32 if key.startswith("condition_embedder.") else torch.bfloat16
        assert value.dtype == dtype, key
        assert torch.equal(value, expected[key].to(dtype)), key
    model = LuminaVideoTransformer3DModel.from_pretrained(output, torch_dtype=torch.bfloat16)
    assert model.layers[0].attn.to_q.weight.dtype == torch.bfloat16


def test_writes_at_most_one_shard_at_a_time_and_fp32_without_copies(golden_dir, tmp_path, monkeypatch):
    loaded, written = {}, []
    real_load, real_save = conversion.load_original_checkpoint, conversion.save_file

    def recording_load(*args, **kwargs):
        model, state_dict = real_load(*args, **kwargs)
        loaded.update(state_dict)
        return model, state_dict

    def recording_save(shard, filename, metadata=None):
        written.append({key: (value.data_ptr(), value.nbytes) for key, value in shard.items()})
        real_save(shard, filename, metadata=metadata)

    monkeypatch.setattr(conversion, "load_original_checkpoint", recording_load)
    monkeypatch.setattr(conversion, "save_file", recording_save)
    convert_lumina_video_checkpoint(
        golden_dir, tmp_path / "out", transformer_only=True, dtype="fp32", max_shard_size="300KB"
    )
    assert len(written) > 1 and all(sum(n for _, n in shard.values()) <= 300_000 for shard in written)
    assert all(ptr == loaded[key].data_ptr() for shard in written for key, (ptr, _) in shard.items())


# ------------------------------------------------------------------------------------------------- full size
def test_full_size_manifest_converts_on_meta_device(shapes_manifest):
    original = {key: torch.empty(shape, device="meta") for key, shape in shapes_manifest["state_dict_shapes"].items()}
    args = types.SimpleNamespace(**shapes_manifest["model_args"])
    config = infer_transformer_config({f"_orig_mod.{k}": v for k, v in original.items()}, args)
    constructor = shapes_manifest["constructor"]
    assert config == {
        "patch_sizes": [(f, p, p) for p, f in zip(args.patch_sizes, args.f_patch_sizes, strict=True)],
        "in_channels": constructor["in_channels"],
        "hidden_size": constructor["dim"],
        "num_layers": constructor["n_layers"],
        "num_attention_heads": constructor["n_heads"],
        "num_kv_heads": constructor["n_kv_heads"],
        "multiple_of": constructor["multiple_of"],
        "ffn_dim_multiplier": constructor["ffn_dim_multiplier"],
        "qk_norm": args.qk_norm,
        "cap_feat_dim": constructor["cap_feat_dim"],
        "rope_theta": args.rope_theta,
        "timestep_scale": args.t_scale,
        "motion_scale": args.motion_scale,
    }
    with torch.device("meta"):
        model = LuminaVideoTransformer3DModel.from_config(config)
    converted = convert_lumina_video_transformer_checkpoint_to_diffusers(original, expected_shapes=model.state_dict())
    assert converted.keys() == model.state_dict().keys()  # nothing missing, nothing left over
    # Dropped: the padding token and the caption-key norms' biases, which have no effect on the output.
    shapes = shapes_manifest["state_dict_shapes"]
    unused = [key for key in shapes if key == "pad_token" or key.endswith(".attention.ky_norm.bias")]
    assert len(unused) == 1 + constructor["n_layers"]
    dropped = sum(math.prod(shapes[key]) for key in unused)
    assert sum(t.numel() for t in converted.values()) == shapes_manifest["num_parameters"] - dropped

    wrong_model = types.SimpleNamespace(**{**vars(args), "model": "MultiScaleNextDiT_2B"})
    with pytest.raises(
        CheckpointFormatError, match=r"field `model` \(MultiScaleNextDiT_2B has num_kv_heads\) says 16"
    ):
        infer_transformer_config(original, wrong_model)


# --------------------------------------------------------------------------------------------- pipeline folder
def test_pipeline_folder_loads_with_the_presets_shift(converted_pipeline, golden, golden_spec):
    index = json.loads((converted_pipeline / "model_index.json").read_text())
    assert index["_class_name"] == "LuminaVideoPipeline"
    assert index["transformer"] == ["diffusers_lumina_video", "LuminaVideoTransformer3DModel"]
    assert index["vae"] == ["diffusers", "AutoencoderKLCogVideoX"] and index["text_encoder"][1] == "Gemma2Model"
    pipe = DiffusionPipeline.from_pretrained(converted_pipeline)
    assert isinstance(pipe, LuminaVideoPipeline)
    assert pipe.scheduler.config.shift == SAMPLING_PRESETS["f24F96R960"]["shift"]
    assert_matches_golden(pipe.transformer, golden, golden_spec)


def test_pipeline_card_usage_code_runs(converted_pipeline, tmp_path, monkeypatch):
    code = card_usage_code((converted_pipeline / "README.md").read_text())
    assert f'from_pretrained("{converted_pipeline.resolve()}"' in code and 'pipe.to("cuda")' in code
    # The released preset samples 96 frames at 1248x704 in 69 steps; the same code at a toy size runs in seconds.
    toy = {**SAMPLING_PRESETS["f24F96R960"], "height": 32, "width": 32, "num_frames": 9, "num_inference_steps": 3}
    monkeypatch.setitem(SAMPLING_PRESETS, "f24F96R960", toy)
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace('pipe.to("cuda")', 'pipe.to("cpu")'), "README.md", "exec"), {})
    assert (tmp_path / "lumina_video.mp4").stat().st_size > 0


def test_transformer_card_usage_code_runs(golden_dir, tmp_path, capsys):
    output = convert_lumina_video_checkpoint(golden_dir, tmp_path / "out", transformer_only=True)
    exec(compile(card_usage_code((output / "README.md").read_text()), "README.md", "exec"), {})
    assert "patch sizes ((1, 2, 2), (2, 2, 2), (2, 4, 4))" in capsys.readouterr().out


def test_pipeline_components_must_fit_the_transformer(golden_dir, components_dir, tmp_path):
    small_text_encoder = tmp_path / "gemma_small"
    tiny_text_encoder().save_pretrained(small_text_encoder)
    tiny_tokenizer().save_pretrained(small_text_encoder)
    with pytest.raises(ValueError, match="features of width 32, but the transformer expects `cap_feat_dim` 40"):
        convert_lumina_video_checkpoint(
            golden_dir,
            tmp_path / "out",
            text_encoder_path=str(small_text_encoder),
            vae_path=str(components_dir / "cogvideox"),
        )
    tiny_vae().save_pretrained(tmp_path / "small_vae")
    with pytest.raises(ValueError, match="4 latent channels, but the transformer expects `in_channels` 16"):
        convert_lumina_video_checkpoint(
            golden_dir,
            tmp_path / "out",
            text_encoder_path=str(components_dir / "gemma"),
            vae_path=str(tmp_path / "small_vae"),
            vae_subfolder="",
        )
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_push_to_hub_uploads_the_finished_folder(golden_dir, tmp_path, monkeypatch):
    calls = []

    class FakeApi:
        def create_repo(self, repo_id, private, exist_ok):
            calls.append(("create", repo_id, private))
            return types.SimpleNamespace(repo_id=repo_id)

        def upload_folder(self, repo_id, folder_path, commit_message):
            calls.append(("upload", repo_id, sorted(os.listdir(folder_path))))

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    output = tmp_path / "out"
    convert_lumina_video_checkpoint(golden_dir, output, transformer_only=True, push_to_hub="me/lumina", private=True)
    assert calls == [
        ("create", "me/lumina", True),
        ("upload", "me/lumina", ["README.md", "config.json", "diffusion_pytorch_model.safetensors"]),
    ]
    assert 'from_pretrained("me/lumina"' in card_usage_code((output / "README.md").read_text())


# --------------------------------------------------------------------------------------------------- safety
class _Payload:
    """Unpickling this creates `marker`: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("carrier", ["weights", "model_args"])
def test_code_carrying_pickle_is_refused_and_never_runs(carrier, original, model_args, tmp_path):
    marker = tmp_path / "payload_ran"
    if carrier == "weights":
        release = write_release(tmp_path / "release", {**original, "extra": _Payload(marker)}, model_args)
    else:
        release = write_release(tmp_path / "release", original, types.SimpleNamespace(model=_Payload(marker)))
    with pytest.raises(UnsafeCheckpointError, match=r"Refusing to load .* its pickle references `io.open`"):
        convert_lumina_video_checkpoint(release, tmp_path / "out", transformer_only=True)
    with pytest.raises(UnsafeCheckpointError):
        LuminaVideoTransformer3DModel.from_single_file(release)
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_truncated_or_corrupt_checkpoint_is_refused(golden_dir, tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    (release / PTH_NAME).write_bytes((golden_dir / PTH_NAME).read_bytes()[:100_000])
    with pytest.raises(CheckpointFormatError, match="Cannot read .*consolidated.00-of-01.pth"):
        convert_lumina_video_checkpoint(release, tmp_path / "out", transformer_only=True)
    (release / PTH_NAME).write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointFormatError, match="Cannot read"):
        convert_lumina_video_checkpoint(release, tmp_path / "out", transformer_only=True)
    assert not (tmp_path / "out").exists()


def test_missing_model_args_infers_dims_and_states_defaults(original, tmp_path, caplog, golden, golden_spec):
    release = write_release(tmp_path / "release", original, model_args=None)
    with caplog.at_level("WARNING"):
        output = convert_lumina_video_checkpoint(release, tmp_path / "out", transformer_only=True, dtype="fp32")
    assert "No `model_args.pth` given" in caplog.text
    assert "'rope_theta': 256.0, 't_scale': 1000.0, 'motion_scale': 20.0" in caplog.text
    assert_matches_golden(LuminaVideoTransformer3DModel.from_pretrained(output), golden, golden_spec)


def test_model_args_without_some_fields_names_the_defaults_used(original, model_args, tmp_path, caplog):
    partial = types.SimpleNamespace(
        **{k: v for k, v in vars(model_args).items() if k not in ("rope_theta", "t_scale")}
    )
    release = write_release(tmp_path / "release", original, partial)
    with caplog.at_level("WARNING"):
        output = convert_lumina_video_checkpoint(release, tmp_path / "out", transformer_only=True, dtype="fp32")
    assert "`model_args.pth` lacks ['rope_theta', 't_scale']" in caplog.text
    config = LuminaVideoTransformer3DModel.load_config(output)
    assert (config["rope_theta"], config["timestep_scale"]) == (256.0, 1000.0)


def test_wrong_key_set_names_the_keys(original, model_args, tmp_path):
    state_dict = {k: v for k, v in original.items() if k != "layers.1.attention.wq.weight"}
    state_dict["layers.1.attention.extra.weight"] = torch.zeros(2)
    release = write_release(tmp_path / "release", state_dict, model_args)
    with pytest.raises(CheckpointFormatError) as error:
        convert_lumina_video_checkpoint(release, tmp_path / "out", transformer_only=True)
    assert "missing weights: layers.1.attn.to_q.weight" in str(error.value)
    assert "unexpected keys: layers.1.attention.extra.weight" in str(error.value)


def test_shape_mismatch_names_the_key_and_shapes(original, model_args, tmp_path):
    state_dict = {**original, "layers.1.feed_forward.w2.weight": torch.zeros(96, 128)}
    release = write_release(tmp_path / "release", state_dict, model_args)
    with pytest.raises(CheckpointFormatError, match=r"wrong shapes: layers.1.feed_forward.w2.weight \[96, 128\] "):
        LuminaVideoTransformer3DModel.from_single_file(release)


def test_layers_that_disagree_on_the_head_count_name_the_checkpoint_and_tensor(original, tmp_path, capsys):
    heads = original["layers.0.attention.gate"].shape[0]
    state_dict = {**original, "layers.0.attention.gate": torch.zeros(heads - 1)}
    release = write_release(tmp_path / "release", state_dict, None)
    args = ["convert", "--checkpoint_path", str(release), "--output_path", str(tmp_path / "out"), "--transformer_only"]
    assert cli_main(args) == 1
    error = capsys.readouterr().err
    assert (
        f"Checkpoint {release / PTH_NAME} is inconsistent: its layers disagree on the number of attention heads"
        in error
    )
    assert f"{heads - 1} in layers.0.attention.gate; {heads} in layers.1.attention.gate" in error
    assert "multiple of 16" not in error


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("qk_norm", False, "field `qk_norm` says False, but the weights have True"),
        ("f_patch_sizes", [1, 1, 2], "field `patch_sizes`/`f_patch_sizes` says"),
        ("f_patch_sizes", [1, 2], "`patch_sizes` [2, 2, 4] and `f_patch_sizes` [1, 2] differ in length"),
        ("model", "MultiScaleNextDiT_2B_GQA", "field `model` (MultiScaleNextDiT_2B_GQA has hidden_size) says 2304"),
    ],
)
def test_model_args_disagreeing_with_weights_names_the_field(original, model_args, tmp_path, field, value, message):
    release = write_release(
        tmp_path / "release", original, types.SimpleNamespace(**{**vars(model_args), field: value})
    )
    with pytest.raises(CheckpointFormatError) as error:
        convert_lumina_video_checkpoint(release, tmp_path / "out", transformer_only=True)
    assert message in str(error.value)


# ---------------------------------------------------------------------------------------------------- output
def test_invalid_arguments_fail_before_any_reading(tmp_path):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(ValueError, match=r"`dtype` must be one of \['fp32', 'fp16', 'bf16'\], got 'int8'"):
        convert_lumina_video_checkpoint(missing, tmp_path / "out", dtype="int8")
    with pytest.raises(ValueError, match="`sampling_preset` must be one of"):
        convert_lumina_video_checkpoint(missing, tmp_path / "out", sampling_preset="f48")
    with pytest.raises(ValueError, match="`max_shard_size` must be a byte count or a size such as '2GB'"):
        convert_lumina_video_checkpoint(missing, tmp_path / "out", max_shard_size="huge")
    with pytest.raises(ValueError, match="`push_to_hub` must be a Hub repository id"):
        convert_lumina_video_checkpoint(missing, tmp_path / "out", push_to_hub="a/b/c")
    with pytest.raises(SystemExit):
        main(["--checkpoint_path", str(missing), "--output_path", str(tmp_path / "out"), "--dtype", "int8"])


def test_existing_output_folder_is_refused_unless_overwrite(golden_dir, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "old.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="already exists and is not empty; pass `--overwrite`"):
        convert_lumina_video_checkpoint(golden_dir, output, transformer_only=True)
    assert (output / "old.txt").read_text() == "keep me"

    convert_lumina_video_checkpoint(golden_dir, output, transformer_only=True, overwrite=True)
    assert not (output / "old.txt").exists() and (output / "config.json").is_file()
    assert leftovers(tmp_path) == []

    with pytest.raises(ValueError, match="holds the checkpoint being converted"):
        convert_lumina_video_checkpoint(output / "config.json", output, transformer_only=True, overwrite=True)


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_conversion_leaves_nothing_behind(existing, golden_dir, tmp_path, monkeypatch):
    output = tmp_path / "new_parent" / "out"
    if existing:
        output.mkdir(parents=True)
        (output / "old.txt").write_text("keep me")
    real_save = conversion.save_file

    def save_then_interrupt(shard, filename, metadata=None):
        real_save(shard, filename, metadata=metadata)
        if len(list(Path(filename).parent.glob("*.safetensors"))) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(conversion, "save_file", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        convert_lumina_video_checkpoint(
            golden_dir, output, transformer_only=True, max_shard_size="300KB", overwrite=existing
        )
    if existing:
        assert os.listdir(output) == ["old.txt"] and leftovers(output.parent) == []
    else:
        assert not output.parent.exists() and leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------------- bad inputs
# `model_args.pth` values that would otherwise be written into the config (or crash later), each refused by name.
MODEL_ARGS_BAD_VALUES = [
    ("rope_theta", float("nan"), "field `rope_theta` must be a finite number > 0, got nan"),
    ("rope_theta", -256.0, "field `rope_theta` must be a finite number > 0, got -256.0"),
    ("rope_theta", 0, "field `rope_theta` must be a finite number > 0, got 0"),
    ("rope_theta", "256", "field `rope_theta` must be a finite number > 0, got '256' (str)"),
    ("rope_theta", True, "field `rope_theta` must be a finite number > 0, got True (bool)"),
    ("t_scale", 0.0, "field `t_scale` must be a finite number > 0"),
    ("t_scale", float("-inf"), "field `t_scale` must be a finite number > 0"),
    ("motion_scale", float("inf"), "field `motion_scale` must be a finite number > 0"),
    ("motion_scale", -20.0, "field `motion_scale` must be a finite number > 0"),
    ("patch_sizes", [2, -2, 4], "field `patch_sizes` must be a non-empty list of positive integers"),
    ("patch_sizes", [2, 2.0, 4], "field `patch_sizes` must be a non-empty list of positive integers"),
    ("patch_sizes", "224", "field `patch_sizes` must be a non-empty list of positive integers"),
    ("f_patch_sizes", [1, True, 2], "field `f_patch_sizes` must be a non-empty list of positive integers"),
    ("f_patch_sizes", [], "field `f_patch_sizes` must be a non-empty list of positive integers"),
    ("qk_norm", 1, "field `qk_norm` must be True or False, got 1 (int)"),
    ("qk_norm", "yes", "field `qk_norm` must be True or False"),
    ("model", 3, "field `model` must be a model name (a string), got 3 (int)"),
]


@pytest.mark.parametrize(("field", "value", "message"), MODEL_ARGS_BAD_VALUES)
def test_model_args_values_are_type_and_range_checked(original, model_args, tmp_path, field, value, message):
    release = write_release(
        tmp_path / "release", original, types.SimpleNamespace(**{**vars(model_args), field: value})
    )
    with pytest.raises(CheckpointFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        convert_lumina_video_checkpoint(release, tmp_path / "out", transformer_only=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("max_shard_size", "error", "message"),
    [
        (-1, ValueError, "above 0, got -1"),
        (0, ValueError, "above 0, got 0"),
        ("0GB", ValueError, "above 0, got '0GB'"),
        ("-3GB", ValueError, "got '-3GB'"),
        ("huge", ValueError, "got 'huge'"),
        ("2 GiB", ValueError, "got '2 GiB'"),
        (True, TypeError, "got True"),
        (1.5e9, TypeError, "got 1500000000.0"),
    ],
)
def test_max_shard_size_is_validated(tmp_path, max_shard_size, error, message):
    with pytest.raises(error, match=f"`max_shard_size` must be a byte count or a size such as '2GB'.*{message}"):
        convert_lumina_video_checkpoint(tmp_path / "missing", tmp_path / "out", max_shard_size=max_shard_size)


@pytest.mark.parametrize(("value", "size"), [(1000, 1000), ("1000", 1000), ("2GB", 2 * 10**9), ("1.5 mb", 1_500_000)])
def test_max_shard_size_forms(value, size):
    assert conversion.shard_size_in_bytes(value) == size


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ({"text_encoder_path": "{tmp}/no-gemma"}, "`text_encoder_path` {tmp}/no-gemma is neither a local folder"),
        ({"tokenizer_path": "./no-tokenizer"}, "`tokenizer_path` ./no-tokenizer is neither a local folder"),
        ({"vae_path": "{tmp}/no-vae"}, "`vae_path` {tmp}/no-vae is neither a local folder"),
        ({"vae_subfolder": "decoder"}, "`vae_path` {components}/cogvideox has no subfolder 'decoder'"),
        ({"text_encoder_path": "google/gemma..2"}, "`text_encoder_path` google/gemma..2 is not a valid Hub"),
        ({"vae_path": "gemma"}, "`vae_path` gemma is neither a local folder nor a Hub repository id"),
    ],
)
def test_pipeline_component_paths_are_checked_before_anything_loads(
    golden_dir, components_dir, tmp_path, monkeypatch, paths, message
):
    def loading(*args, **kwargs):
        raise AssertionError("the checkpoint was read before the component paths were checked")

    monkeypatch.setattr(conversion, "load_original_checkpoint", loading)
    arguments = {"text_encoder_path": str(components_dir / "gemma"), "vae_path": str(components_dir / "cogvideox")}
    arguments.update({k: v.format(tmp=tmp_path) for k, v in paths.items()})
    with pytest.raises((ValueError, OSError), match=message.format(tmp=tmp_path, components=components_dir)):
        convert_lumina_video_checkpoint(golden_dir, tmp_path / "out", **arguments)


def test_refused_pickle_never_advises_turning_the_safe_loader_off(original, tmp_path):
    release = write_release(tmp_path / "release", {**original, "extra": _Payload(tmp_path / "ran")}, None)
    with pytest.raises(UnsafeCheckpointError) as error:
        convert_lumina_video_checkpoint(release, tmp_path / "out", transformer_only=True)
    assert "weights_only" not in str(error.value) and "nothing from it was loaded" in str(error.value)


class _SystemPayload:
    """Unpickling this runs a shell command: the usual shape of a malicious checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("carrier", ["weights", "model_args"])
def test_convert_refuses_a_pickle_that_would_run_a_command_without_advising_the_unsafe_loader(
    carrier, original, model_args, tmp_path, capsys
):
    marker = tmp_path / "payload_ran"
    if carrier == "weights":
        release = write_release(tmp_path / "release", {**original, "extra": _SystemPayload(marker)}, model_args)
    else:
        release = write_release(tmp_path / "release", original, types.SimpleNamespace(model=_SystemPayload(marker)))
    args = ["convert", "--checkpoint_path", str(release), "--output_path", str(tmp_path / "out"), "--transformer_only"]
    assert cli_main(args) == 1
    error = capsys.readouterr().err
    assert (
        "Refusing to load" in error and "references `posix.system`" in error and "nothing from it was loaded" in error
    )
    assert "weights_only" not in error and "trusted source" not in error
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_no_message_of_the_package_advises_turning_the_safe_loader_off():
    package = Path(conversion.__file__).parent
    advice = [
        f"{path.relative_to(package)}:{number}"
        for path in package.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "weights_only=False" in line.replace(" ", "") or "weights_only`setto`False" in line.replace(" ", "")
    ]
    assert advice == []


def test_folder_of_a_killed_conversion_is_removed_by_the_next_one(golden_dir, tmp_path):
    """A SIGKILL leaves the folder being built; the next conversion into the same parent removes it (its process is
    gone), and keeps one a running conversion is building."""
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    stale = tmp_path / f".out.tmp-{killed.pid}-x1.partial"
    (stale / "transformer").mkdir(parents=True)
    running = tmp_path / f".other.tmp-{os.getppid()}-x2.partial"
    running.mkdir()

    convert_lumina_video_checkpoint(golden_dir, tmp_path / "out", transformer_only=True)
    assert not stale.exists() and running.is_dir() and (tmp_path / "out" / "config.json").is_file()
