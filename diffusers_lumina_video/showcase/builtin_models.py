"""The built-in models: `tiny-random`, tiny Lumina-Video and Lumina-V2A pipelines with random weights built locally
(no download); `tiny-shapes`, a tiny Lumina-Video trained on shape clips, and `tiny-shapes-v2a`, the tiny Lumina-V2A
that sounds its bounces, both shipped inside the package.

The random ones have the real component classes (Gemma2 / CLIP encoders, CogVideoX / AudioLDM VAEs, HiFi-GAN,
Synchformer, the Next-DiT transformers, flow-matching scheduler) at toy sizes, so every loading, saving and sampling
path can run in seconds on a CPU; their videos and sounds are noise. `tiny-shapes` draws what a prompt such as "a blue
square moving right" asks for (see `docs/showcase.md` and `showcase/train_tiny_shapes.py`).
"""

from collections.abc import Sequence
from pathlib import Path

from diffusers import AutoencoderKL, AutoencoderKLCogVideoX, FlowMatchEulerDiscreteScheduler
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    CLIPImageProcessorPil,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    Gemma2Config,
    Gemma2Model,
    PreTrainedTokenizerFast,
    SpeechT5HifiGan,
    SpeechT5HifiGanConfig,
)

from ..models import LuminaV2ATransformerModel, LuminaVideoTransformer3DModel, SynchformerEncoder


TINY_RANDOM_ID = "tiny-random"
TINY_SHAPES_ID = "tiny-shapes"
TINY_SHAPES_V2A_ID = "tiny-shapes-v2a"
BUILTIN_MODEL_IDS = (TINY_SHAPES_ID, TINY_SHAPES_V2A_ID, TINY_RANDOM_ID)
# Those whose trained weights ship in the package (`pretrained/<id>/`); `tiny-random` is built in code.
SHIPPED_MODEL_IDS = (TINY_SHAPES_ID, TINY_SHAPES_V2A_ID)
# `tiny-random` names both a video and a sound model; the others are one or the other.
BUILTIN_VIDEO_MODEL_IDS = (TINY_SHAPES_ID, TINY_RANDOM_ID)
BUILTIN_SOUND_MODEL_IDS = (TINY_SHAPES_V2A_ID, TINY_RANDOM_ID)
# The sound model that goes with each built-in video model (what `generate --with-audio` without a value uses).
SOUND_MODEL_OF = {TINY_SHAPES_ID: TINY_SHAPES_V2A_ID, TINY_RANDOM_ID: TINY_RANDOM_ID}
# The guidance scale a built-in sound model was measured at (docs/showcase.md, "Sound"): its default.
SOUND_GUIDANCE_SCALES = {TINY_SHAPES_V2A_ID: 3.0}
# Small enough for the tiny random model to write a video in seconds on a CPU.
TINY_RANDOM_DEFAULTS = {"height": 64, "width": 64, "num_frames": 9, "num_inference_steps": 4}
# What `tiny-shapes` was trained on (64 px, 16 frames at 8 fps: two seconds) and samples well with; see
# docs/showcase.md. The training script (`showcase/train_tiny_shapes.py`) reads its finest-scale time shift from here;
# its clips (`CLIP_FORMAT_V2` in `showcase/synthetic_shapes.py`) are these frames and the one before them that the
# training cache drops.
TINY_SHAPES_DEFAULTS = {
    "height": 64,
    "width": 64,
    "num_frames": 16,
    "num_inference_steps": 20,
    "guidance_scale": 4.0,
    "guidance_renorm": None,
    "motion_score": -1.0,
    "negative_motion_score": -1.0,
}
TINY_SHAPES_SHIFT = 1.0
TINY_SHAPES_FPS = 8
# The coarse-to-fine schedules (`patch_size` over time) of the models trained on clips of each length, by the frames
# they make (a clip format's `num_frames - 1`, `showcase/synthetic_shapes.py`), measured in docs/showcase.md. Two-second
# clips have 8 latent frames of 16x16, 512 tokens at 1x2x2: 2x2x2 for the first 18 of 20 steps keeps the transformer's
# time under half of single-scale sampling's, and loses less shape and motion than starting at 2x4x4 did.
TINY_SHAPES_MULTI_SCALE = {
    8: [(0.0, (2, 4, 4)), (0.1, (2, 2, 2)), (0.3, (1, 2, 2))],
    16: [(0.0, (2, 2, 2)), (0.875, (1, 2, 2))],
}


def tiny_shapes_presets(num_frames: int, multi_scale: list) -> dict[str, dict]:
    """The named settings a shapes model's folder carries in its model_index.json, where the CLI, the demo and
    `pipe(prompt)` read them: single-scale (its default) and coarse-to-fine (`multi_scale`), for clips of
    `num_frames` frames."""
    settings = {**TINY_SHAPES_DEFAULTS, "num_frames": num_frames, "shift": TINY_SHAPES_SHIFT, "fps": TINY_SHAPES_FPS}
    return {
        TINY_SHAPES_ID: {**settings, "patch_size": (1, 2, 2)},
        f"{TINY_SHAPES_ID}-MultiScale": {**settings, "patch_size": multi_scale},
    }


# The shipped model's (two-second clips).
TINY_SHAPES_PRESETS = tiny_shapes_presets(
    TINY_SHAPES_DEFAULTS["num_frames"], TINY_SHAPES_MULTI_SCALE[TINY_SHAPES_DEFAULTS["num_frames"]]
)
SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>"]
TINY_TEXT_DIM = 32
TINY_LATENT_CHANNELS = 4
TINY_CLIP_DIM = 16
TINY_SYNC_DIM = 24


def word_level_tokenizer(words: list[str], model_max_length: int = 256) -> PreTrainedTokenizerFast:
    """A lowercasing tokenizer with one token per word of `words` (after the special tokens) that, like Gemma's,
    starts every text with `<bos>`; other words map to `<unk>`."""
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + list(dict.fromkeys(words)))}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="right",
        model_max_length=model_max_length,
    )


def tiny_tokenizer(vocab_size: int = 512, model_max_length: int = 256) -> PreTrainedTokenizerFast:
    """A word-level tokenizer of `vocab_size` tokens: characters, a few common words and fillers."""
    words = [*"abcdefghijklmnopqrstuvwxyz0123456789.,!?'<>-"]
    words += "a an the of in on at to and with is are video videos high quality you assistant designed".split()
    words += [f"w{i}" for i in range(vocab_size - len(SPECIAL_TOKENS) - len(words))]
    return word_level_tokenizer(words, model_max_length)


def tiny_text_encoder(vocab_size: int = 512) -> Gemma2Model:
    config = Gemma2Config(
        vocab_size=vocab_size,
        hidden_size=TINY_TEXT_DIM,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        sliding_window=256,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    return Gemma2Model(config).eval()


def tiny_vae() -> AutoencoderKLCogVideoX:
    """Same 8x spatial and 4x temporal compression as the CogVideoX-2b VAE, with few channels."""
    return AutoencoderKLCogVideoX(
        block_out_channels=(8, 8, 8, 8),
        latent_channels=TINY_LATENT_CHANNELS,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
        sample_height=64,
        sample_width=64,
    ).eval()


def tiny_transformer() -> LuminaVideoTransformer3DModel:
    return LuminaVideoTransformer3DModel(
        patch_sizes=((1, 2, 2), (2, 2, 2), (2, 4, 4)),
        in_channels=TINY_LATENT_CHANNELS,
        hidden_size=64,
        num_layers=2,
        num_attention_heads=4,
        num_kv_heads=2,
        multiple_of=16,
        cap_feat_dim=TINY_TEXT_DIM,
    ).eval()


def tiny_v2a_transformer() -> LuminaV2ATransformerModel:
    """A Lumina-V2A transformer over AudioLDM-shaped latents (8 channels, 16 frequency bins) at toy width."""
    return LuminaV2ATransformerModel(
        in_channels=8,
        patch_size=(1, 4),
        hidden_size=64,
        num_layers=2,
        num_attention_heads=4,
        num_kv_heads=2,
        multiple_of=16,
        context_dim=32,
        visual_feat_dim=TINY_CLIP_DIM,
        text_feat_dim=TINY_CLIP_DIM,
        sync_feat_dim=TINY_SYNC_DIM,
        max_latent_frames=256,
    ).eval()


def tiny_audio_vae(channels: Sequence[int] = (8, 16, 16), scaling_factor: float = 0.5) -> AutoencoderKL:
    """AudioLDM's mel VAE layout (1-channel mel image, 8 latent channels, 4x down-sampling of time and mel) with the
    block widths `channels`; the default scaling factor is not 1 so that forgetting it shows."""
    return AutoencoderKL(
        in_channels=1,
        out_channels=1,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=tuple(channels),
        layers_per_block=1,
        latent_channels=8,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=scaling_factor,
    ).eval()


def tiny_vocoder() -> SpeechT5HifiGan:
    """AudioLDM's HiFi-GAN layout (64 mel bins in, 16 kHz, up-sampling 5x4x2x2x2 = 160 samples per mel frame) with
    few channels."""
    config = SpeechT5HifiGanConfig(
        model_in_dim=64,
        sampling_rate=16000,
        upsample_initial_channel=32,
        upsample_rates=[5, 4, 2, 2, 2],
        upsample_kernel_sizes=[16, 16, 8, 4, 4],
        resblock_kernel_sizes=[3, 7],
        resblock_dilation_sizes=[[1, 3], [1, 3]],
        normalize_before=False,
    )
    return SpeechT5HifiGan(config).eval()


def tiny_clip_text_encoder(vocab_size: int = 512) -> CLIPTextModel:
    """CLIP's text tower at toy width, with the tiny tokenizer's special tokens."""
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=TINY_CLIP_DIM,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=TINY_CLIP_DIM,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    return CLIPTextModel(config).eval()


def tiny_clip_image_encoder() -> CLIPVisionModelWithProjection:
    """CLIP's image tower on 32 px images, projecting each frame to `TINY_CLIP_DIM`."""
    config = CLIPVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=TINY_CLIP_DIM,
    )
    return CLIPVisionModelWithProjection(config).eval()


def tiny_clip_image_processor() -> CLIPImageProcessorPil:
    """CLIP's preprocessing (shortest side, centre crop, CLIP normalisation) at 32 px."""
    return CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


def tiny_sync_encoder() -> SynchformerEncoder:
    """Synchformer's visual branch on 16 px frames (2x2 patches), one block, features of width `TINY_SYNC_DIM`."""
    return SynchformerEncoder(
        hidden_size=TINY_SYNC_DIM,
        num_layers=1,
        num_attention_heads=2,
        ffn_dim=32,
        patch_size=8,
        frame_size=16,
    ).eval()


def tiny_components(seed: int = 0) -> dict:
    """The five pipeline components, initialised from `seed`."""
    import torch

    torch.manual_seed(seed)
    return {
        "transformer": tiny_transformer(),
        "vae": tiny_vae(),
        "text_encoder": tiny_text_encoder(),
        "tokenizer": tiny_tokenizer(),
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=8.0),
    }


def tiny_random_pipeline(seed: int = 0):
    """A `LuminaVideoPipeline` of tiny random components."""
    from ..pipelines import LuminaVideoPipeline

    return LuminaVideoPipeline(**tiny_components(seed))


def tiny_v2a_components(seed: int = 0) -> dict:
    """The components of a `LuminaV2APipeline`, initialised from `seed`."""
    import torch

    torch.manual_seed(seed)
    return {
        "transformer": tiny_v2a_transformer(),
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=1.0),
        "vae": tiny_audio_vae(),
        "vocoder": tiny_vocoder(),
        "text_encoder": tiny_clip_text_encoder(),
        "tokenizer": tiny_tokenizer(model_max_length=77),
        "image_encoder": tiny_clip_image_encoder(),
        "feature_extractor": tiny_clip_image_processor(),
        "sync_encoder": tiny_sync_encoder(),
    }


def tiny_random_v2a_pipeline(seed: int = 0):
    """A `LuminaV2APipeline` of tiny random components."""
    from ..pipelines import LuminaV2APipeline

    return LuminaV2APipeline(**tiny_v2a_components(seed))


def builtin_models_of(family: str) -> tuple[str, ...]:
    """The built-in models of a family: `video` (Lumina-Video) or `v2a` (Lumina-V2A, the sound models)."""
    return BUILTIN_SOUND_MODEL_IDS if family == "v2a" else BUILTIN_VIDEO_MODEL_IDS


def check_builtin_family(model: str, family: str, name: str) -> None:
    """Refuses a built-in model of the other family by its name (a sound model given as the video model, or the
    reverse), before anything loads; other models are not looked at."""
    if model in BUILTIN_MODEL_IDS and model not in builtin_models_of(family):
        kind, other = ("sound", "video") if family == "v2a" else ("video", "sound")
        raise ValueError(
            f"`{name}` {model} is a built-in {other} model, not a {kind} one; the built-in {kind} models are "
            f"{list(builtin_models_of(family))}."
        )


def model_location(model: str) -> str | Path:
    """Where `model` loads from: the package's folder for a shipped model (`tiny-shapes`, `tiny-shapes-v2a`), else
    `model` itself (a folder or a Hub id)."""
    return shipped_model_path(model) if model in SHIPPED_MODEL_IDS else model


def video_pipeline_folder(model: str, name: str) -> Path:
    """The pipeline folder of the video model `model` (`tiny-shapes` or a folder) given as `name`, refused before
    anything loads if it is a built-in sound model or not a pipeline folder."""
    check_builtin_family(model, "video", name)
    folder = Path(model_location(model))
    if not (folder / "model_index.json").is_file():
        raise ValueError(f"`{name}` must be `{TINY_SHAPES_ID}` or a pipeline folder, got {model!r}.")
    return folder


def shipped_model_path(model: str) -> Path:
    """The pipeline folder of a model installed with the package."""
    return Path(__file__).resolve().parent / "pretrained" / model


def tiny_shapes_path() -> Path:
    """The pipeline folder of `tiny-shapes`, installed with the package."""
    return shipped_model_path(TINY_SHAPES_ID)


def tiny_shapes_v2a_path() -> Path:
    """The pipeline folder of `tiny-shapes-v2a`, installed with the package."""
    return shipped_model_path(TINY_SHAPES_V2A_ID)
