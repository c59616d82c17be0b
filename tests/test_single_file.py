"""`LuminaVideoTransformer3DModel.from_single_file`: the original checkpoint loads directly, through the converter's
mapping and checks."""

import shutil

import pytest
import torch
from conftest import FORWARD_TOLERANCE, run_golden_forward_case
from safetensors.torch import save_file

from diffusers_lumina_video import LuminaVideoTransformer3DModel
from diffusers_lumina_video.loaders.single_file_utils import (
    MODEL_ARGS_NAME,
    WEIGHTS_NAMES,
    CheckpointFormatError,
    load_original_state_dict,
)


PTH_NAME = "consolidated.00-of-01.pth"
SAFETENSORS_NAME = "consolidated.00-of-01.safetensors"


def _assert_matches_golden(model, golden, golden_spec):
    for case in golden_spec["forward_cases"]:
        torch.testing.assert_close(
            run_golden_forward_case(model, golden, case), golden[case["output"]], **FORWARD_TOLERANCE
        )


@pytest.fixture(scope="module")
def safetensors_release(golden_dir, tmp_path_factory):
    """The golden release with its weights as `consolidated.00-of-01.safetensors`, compile prefixes added."""
    folder = tmp_path_factory.mktemp("safetensors_release")
    state_dict = load_original_state_dict(golden_dir / PTH_NAME)
    save_file({f"_orig_mod.{key}": value.contiguous() for key, value in state_dict.items()}, folder / SAFETENSORS_NAME)
    shutil.copy(golden_dir / MODEL_ARGS_NAME, folder)
    return folder


@pytest.mark.parametrize("form", ["folder", "pth_file", "safetensors_folder", "safetensors_file"])
def test_from_single_file_matches_golden(form, golden_dir, safetensors_release, golden, golden_spec):
    path = {
        "folder": golden_dir,
        "pth_file": golden_dir / PTH_NAME,
        "safetensors_folder": safetensors_release,
        "safetensors_file": safetensors_release / SAFETENSORS_NAME,
    }[form]
    model = LuminaVideoTransformer3DModel.from_single_file(path)
    assert not model.training
    _assert_matches_golden(model, golden, golden_spec)


@pytest.mark.parametrize("argument", ["torch_dtype", "dtype"])
def test_from_single_file_casts_but_keeps_fp32_modules(golden_dir, argument):
    model = LuminaVideoTransformer3DModel.from_single_file(golden_dir, **{argument: torch.bfloat16})
    dtypes = {name: param.dtype for name, param in model.named_parameters()}
    assert all(dtypes[n] == torch.float32 for n in dtypes if n.startswith("condition_embedder."))
    assert all(dtypes[n] == torch.bfloat16 for n in dtypes if not n.startswith("condition_embedder."))


def test_from_single_file_rejects_non_float_dtype(golden_dir):
    with pytest.raises(ValueError, match="`torch_dtype` must be a floating-point"):
        LuminaVideoTransformer3DModel.from_single_file(golden_dir, torch_dtype=torch.int8)


def test_from_single_file_takes_model_args_from_elsewhere(golden_dir, tmp_path):
    shutil.copy(golden_dir / PTH_NAME, tmp_path)
    args_folder = tmp_path / "args"
    args_folder.mkdir()
    shutil.copy(golden_dir / MODEL_ARGS_NAME, args_folder)
    with pytest.raises(FileNotFoundError, match="`model_args_path`"):
        LuminaVideoTransformer3DModel.from_single_file(tmp_path, model_args_path=tmp_path / "nowhere.pth")
    model = LuminaVideoTransformer3DModel.from_single_file(tmp_path, model_args_path=args_folder / MODEL_ARGS_NAME)
    assert model.config.hidden_size == 96


def test_from_single_file_reads_a_hub_repository(golden_dir, monkeypatch, golden, golden_spec):
    requests = []

    def fake_snapshot_download(repo_id, allow_patterns):
        requests.append((repo_id, sorted(allow_patterns)))
        return str(golden_dir)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    model = LuminaVideoTransformer3DModel.from_single_file("Alpha-VLLM/Lumina-Video-f24R960")
    assert requests == [("Alpha-VLLM/Lumina-Video-f24R960", sorted([*WEIGHTS_NAMES, MODEL_ARGS_NAME]))]
    _assert_matches_golden(model, golden, golden_spec)


def test_path_like_names_are_never_sent_to_the_hub(monkeypatch):
    monkeypatch.setattr("huggingface_hub.snapshot_download", lambda *a, **k: pytest.fail("asked the Hub"))
    for path in ("./no_such_release", "../no/such_release", "no/such/release"):
        with pytest.raises(FileNotFoundError, match="does not exist"):
            LuminaVideoTransformer3DModel.from_single_file(path)


def test_unreachable_hub_repository_is_a_clear_error(monkeypatch):
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("offline")

    monkeypatch.setattr("huggingface_hub.snapshot_download", offline)
    with pytest.raises(FileNotFoundError, match="nor a Hub repository that can be reached"):
        LuminaVideoTransformer3DModel.from_single_file("someone/typo")


def test_missing_paths_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"holds none of \['consolidated.00-of-01.safetensors'"):
        LuminaVideoTransformer3DModel.from_single_file(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LuminaVideoTransformer3DModel.from_single_file(tmp_path / "missing" / "weights.pth")


def test_weights_are_memory_mapped_not_copied(golden_dir, monkeypatch):
    calls = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    LuminaVideoTransformer3DModel.from_single_file(golden_dir)
    weights_call = next(kwargs for kwargs in calls if kwargs.get("mmap"))
    assert weights_call["weights_only"] is True


def test_broken_checkpoint_is_a_format_error(tmp_path):
    (tmp_path / SAFETENSORS_NAME).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointFormatError, match="Cannot read .*consolidated.00-of-01.safetensors"):
        LuminaVideoTransformer3DModel.from_single_file(tmp_path)
    # A well-formed file of the wrong model.
    save_file({"weight": torch.zeros(2)}, tmp_path / SAFETENSORS_NAME)
    with pytest.raises(CheckpointFormatError, match=r"Not a Lumina-Video .* missing \['layers.0.attention.gate'"):
        LuminaVideoTransformer3DModel.from_single_file(tmp_path)
