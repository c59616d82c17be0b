"""Converts a released Lumina-Video checkpoint into a Diffusers folder: the transformer alone, or the whole pipeline.

Everything that can fail is checked before anything is written: arguments, the output folder, the checkpoint (key set,
shapes, `model_args.pth`) and, for a pipeline, that the text encoder and VAE fit the transformer. The folder is then
built beside the target and renamed into place at the end, so an error or an interruption leaves nothing behind.

The transformer's weights stay memory-mapped from the checkpoint and are written one shard at a time in the target
dtype, so converting needs about one copy of the weights in memory, never a second float32 copy.
"""

import json
import logging
import os
import re
from pathlib import Path

import torch
from diffusers import AutoencoderKLCogVideoX, FlowMatchEulerDiscreteScheduler
from diffusers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFETENSORS_WEIGHTS_NAME, is_transformers_version
from huggingface_hub import split_torch_state_dict_into_shards
from huggingface_hub.utils import validate_repo_id
from safetensors.torch import save_file
from tqdm.auto import tqdm

from .loaders.single_file_model import load_original_checkpoint, storage_dtype
from .model_card import check_card_location, create_pipeline_model_card
from .models import LuminaVideoTransformer3DModel
from .pipelines import SAMPLING_PRESETS, LuminaVideoPipeline
from .utils.atomic import build_folder_atomically
from .utils.component_paths import check_component_path, is_hub_repo_id
from .utils.output_paths import check_output_folder


logger = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DEFAULT_BASE_MODEL = "Alpha-VLLM/Lumina-Video-f24R960"
DEFAULT_TEXT_ENCODER = "google/gemma-2-2b"
DEFAULT_VAE = "THUDM/CogVideoX-2b"
DEFAULT_SAMPLING_PRESET = "f24F96R960"
DEFAULT_MAX_SHARD_SIZE = "2GB"
_SIZE_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_SHARD_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB)?\s*$", flags=re.IGNORECASE)

# `dtype` replaced `torch_dtype` in transformers' `from_pretrained` (4.56).
_TRANSFORMERS_DTYPE_ARG = "dtype" if is_transformers_version(">=", "4.56.0") else "torch_dtype"


def convert_lumina_video_checkpoint(
    checkpoint_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    transformer_only: bool = False,
    dtype: str = "bf16",
    model_args_path: str | os.PathLike | None = None,
    text_encoder_path: str = DEFAULT_TEXT_ENCODER,
    tokenizer_path: str | None = None,
    vae_path: str = DEFAULT_VAE,
    vae_subfolder: str | None = "vae",
    sampling_preset: str = DEFAULT_SAMPLING_PRESET,
    base_model: str | None = None,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    overwrite: bool = False,
    push_to_hub: str | None = None,
    private: bool = False,
) -> Path:
    r"""
    Converts a released checkpoint and writes a Diffusers folder with a model card (`README.md`).

    Args:
        checkpoint_path: The release folder (`consolidated.00-of-01.{pth,safetensors}` and `model_args.pth`), the
            weights file itself, or a Hub repository id such as `"Alpha-VLLM/Lumina-Video-f24R960"`.
        output_path: The folder to write. With `transformer_only`, `LuminaVideoTransformer3DModel.from_pretrained`
            loads it; otherwise `DiffusionPipeline.from_pretrained` does.
        transformer_only: Write the transformer alone, without text encoder, tokenizer, VAE and scheduler.
        dtype: `"fp32"`, `"fp16"` or `"bf16"`, the dtype of the written weights (modules the transformer keeps in
            float32 stay in float32).
        model_args_path: `model_args.pth`, if it is not beside the weights.
        text_encoder_path, tokenizer_path: Gemma-2-2B, as a local folder or Hub id; the tokenizer defaults to the
            text encoder's.
        vae_path, vae_subfolder: The CogVideoX-2b VAE, as a local folder or Hub id, and its subfolder there (`None`
            or `""` when `vae_path` is the VAE folder itself).
        sampling_preset: The `SAMPLING_PRESETS` entry whose time shift the scheduler takes.
        base_model: The Hub id the model card names as the source; defaults to `checkpoint_path` when that is a Hub
            id, else to the released `Alpha-VLLM/Lumina-Video-f24R960`.
        max_shard_size: Largest safetensors shard, e.g. `"2GB"`; when casting, one shard at a time is held in memory.
        overwrite: Replace `output_path` if it exists and is not empty.
        push_to_hub: A Hub repository id to upload the finished folder to.
        private: Create that repository as private.

    Returns:
        `output_path`, as a `Path`.
    """
    if dtype not in DTYPES:
        raise ValueError(f"`dtype` must be one of {list(DTYPES)}, got {dtype!r}.")
    if sampling_preset not in SAMPLING_PRESETS:
        raise ValueError(f"`sampling_preset` must be one of {list(SAMPLING_PRESETS)}, got {sampling_preset!r}.")
    shard_bytes = shard_size_in_bytes(max_shard_size)
    if push_to_hub is not None:
        try:
            validate_repo_id(push_to_hub)
        except ValueError as error:
            raise ValueError(f"`push_to_hub` must be a Hub repository id such as 'me/lumina-video': {error}") from None
    if base_model is not None:
        check_card_location("base_model", base_model, hub_only=True)
    output_path = Path(output_path)
    _check_output_path(output_path, overwrite)
    _check_not_replacing_checkpoint(checkpoint_path, output_path)

    if not transformer_only:
        check_component_path("text_encoder_path", text_encoder_path)
        check_component_path("tokenizer_path", tokenizer_path or text_encoder_path)
        check_component_path("vae_path", vae_path, vae_subfolder)

    model, state_dict = load_original_checkpoint(LuminaVideoTransformer3DModel, checkpoint_path, model_args_path)
    torch_dtype = DTYPES[dtype]
    components = {}
    if not transformer_only:
        components = _load_components(
            model.config, torch_dtype, text_encoder_path, tokenizer_path or text_encoder_path, vae_path, vae_subfolder
        )
        components["scheduler"] = FlowMatchEulerDiscreteScheduler(shift=SAMPLING_PRESETS[sampling_preset]["shift"])

    card = create_pipeline_model_card(
        model_id=push_to_hub or str(output_path.resolve()),
        base_model=base_model or (str(checkpoint_path) if is_hub_repo_id(checkpoint_path) else DEFAULT_BASE_MODEL),
        transformer_only=transformer_only,
        num_parameters=sum(tensor.numel() for tensor in state_dict.values()),
        dtype=dtype,
        sampling_preset=sampling_preset,
    )
    with build_folder_atomically(output_path, overwrite) as folder:
        save_transformer(
            model, state_dict, folder if transformer_only else folder / "transformer", torch_dtype, shard_bytes
        )
        if components:
            # Built first so that components are saved as the pipeline configures them (e.g. right padding); the
            # pipeline writes `model_index.json` itself, naming each component's library and class.
            pipeline = LuminaVideoPipeline(transformer=model, **components)
            for name, component in components.items():
                component.save_pretrained(folder / name)
            pipeline.save_config(folder)
        card.save(folder / "README.md")
    logger.info(f"Wrote {output_path}.")

    if push_to_hub is not None:
        _upload(output_path, push_to_hub, private)
    return output_path


def save_transformer(
    model: LuminaVideoTransformer3DModel,
    state_dict: dict[str, torch.Tensor],
    directory: Path,
    dtype: torch.dtype,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
) -> None:
    """Writes `config.json` and the weights as `ModelMixin.save_pretrained` names them, casting one shard at a time.

    `save_pretrained` would need the whole model materialised in the target dtype first; here only the shard being
    written is, and float32 weights that stay float32 are written straight from the memory-mapped checkpoint.
    """
    directory.mkdir(parents=True, exist_ok=True)
    model.save_config(directory)
    dtypes = {key: storage_dtype(type(model), key, dtype) for key in state_dict}
    plan = split_torch_state_dict_into_shards(
        {key: torch.empty(value.shape, dtype=dtypes[key], device="meta") for key, value in state_dict.items()},
        max_shard_size=max_shard_size,
        filename_pattern=SAFETENSORS_WEIGHTS_NAME.replace(".safetensors", "{suffix}.safetensors"),
    )
    with tqdm(total=len(state_dict), desc="Writing transformer weights", unit="tensor") as progress:
        for filename, keys in plan.filename_to_tensors.items():
            shard = {}
            for key in keys:
                shard[key] = state_dict[key].to(dtypes[key]).contiguous()
                progress.update()
            save_file(shard, directory / filename, metadata={"format": "pt"})
    if plan.is_sharded:
        index = {"metadata": plan.metadata, "weight_map": plan.tensor_to_filename}
        (directory / SAFE_WEIGHTS_INDEX_NAME).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def _load_components(
    transformer_config,
    dtype: torch.dtype,
    text_encoder_path: str,
    tokenizer_path: str,
    vae_path: str,
    vae_subfolder: str | None,
) -> dict:
    """Loads the text encoder, tokenizer and VAE and checks that they fit the transformer."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    text_encoder = AutoModel.from_pretrained(text_encoder_path, **{_TRANSFORMERS_DTYPE_ARG: dtype})
    vae = AutoencoderKLCogVideoX.from_pretrained(vae_path, subfolder=vae_subfolder or None, torch_dtype=dtype)
    if text_encoder.config.hidden_size != transformer_config.cap_feat_dim:
        raise ValueError(
            f"`text_encoder_path` {text_encoder_path} gives features of width {text_encoder.config.hidden_size}, but "
            f"the transformer expects `cap_feat_dim` {transformer_config.cap_feat_dim} (Gemma-2-2B: 2304)."
        )
    if vae.config.latent_channels != transformer_config.in_channels:
        raise ValueError(
            f"`vae_path` {vae_path} has {vae.config.latent_channels} latent channels, but the transformer expects "
            f"`in_channels` {transformer_config.in_channels} (CogVideoX-2b: 16)."
        )
    return {"text_encoder": text_encoder, "tokenizer": tokenizer, "vae": vae}


def shard_size_in_bytes(max_shard_size: int | str) -> int:
    """`2000000000`, `"2000000000"` or `"2GB"` (KB, MB, GB, TB; powers of 1000) -> bytes, checked to be positive now
    rather than after the checkpoint and components are loaded."""
    if isinstance(max_shard_size, bool) or not isinstance(max_shard_size, (int, str)):
        raise TypeError(f"`max_shard_size` must be a byte count or a size such as '2GB', got {max_shard_size!r}.")
    if isinstance(max_shard_size, int):
        size = max_shard_size
    else:
        match = _SHARD_SIZE.match(max_shard_size)
        if match is None:
            raise ValueError(f"`max_shard_size` must be a byte count or a size such as '2GB', got {max_shard_size!r}.")
        number, unit = match.groups()
        size = int(float(number) * _SIZE_UNITS[unit.upper()]) if unit else int(number)
    if size <= 0:
        raise ValueError(
            f"`max_shard_size` must be a byte count or a size such as '2GB' above 0, got {max_shard_size!r}."
        )
    return size


def _check_output_path(path: Path, overwrite: bool) -> None:
    check_output_folder(path, "output_path")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(
            f"`output_path` {path} already exists and is not empty; pass `--overwrite` (`overwrite=True`) to replace it."
        )


def _check_not_replacing_checkpoint(checkpoint_path: str | os.PathLike, output_path: Path) -> None:
    """Replacing `output_path` must never delete the checkpoint being converted."""
    source = Path(checkpoint_path).resolve()
    target = output_path.resolve()
    if source == target or target in source.parents:
        raise ValueError(f"`output_path` {output_path} holds the checkpoint being converted; choose another folder.")


def _upload(folder: Path, repo_id: str, private: bool) -> None:
    from huggingface_hub import HfApi

    api = HfApi()
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="Upload Lumina-Video in Diffusers format")
    logger.info(f"Uploaded {folder} to https://huggingface.co/{repo_id}.")
