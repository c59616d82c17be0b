"""The components of `tiny-shapes`, a Lumina-Video pipeline small enough to train from scratch on the shape clips on a
CPU: a word-level tokenizer over the captions' words, a frozen random Gemma2 text encoder, the tiny VAE of
`shapes_vae.py` and a Multi-scale Next-DiT with the three patchifications of the released model.

The text encoder stays at its random initialisation: every word has its own random embedding, which the encoder's
layers mix with its neighbours', so captions that differ in one word get features that differ at that word's position
(`caption_feature_distances` measures it) and the video transformer learns what the words mean.
"""

from collections.abc import Sequence
from pathlib import Path

import torch
from diffusers import AutoencoderKLCogVideoX, FlowMatchEulerDiscreteScheduler
from tokenizers import pre_tokenizers
from transformers import Gemma2Config, Gemma2Model, PreTrainedTokenizerFast

from ..models import LuminaVideoTransformer3DModel
from ..pipelines.lumina_video import SYSTEM_PROMPT, LuminaVideoPipeline
from ..utils.atomic import build_folder_atomically
from .builtin_models import TINY_SHAPES_ID, TINY_SHAPES_PRESETS, TINY_SHAPES_SHIFT, word_level_tokenizer
from .synthetic_shapes import CLIP_FORMAT_V2


SHAPES_TEXT_DIM = 32
SHAPES_PATCH_SIZES = ((1, 2, 2), (2, 2, 2), (2, 4, 4))


def shapes_tokenizer(caption_words: Sequence[str] = CLIP_FORMAT_V2.caption_words) -> PreTrainedTokenizerFast:
    """One token per word of the system prompt and of the shape captions (a clip format's `caption_words`; the
    default is the shipped model's vocabulary, whose size fixes its text encoder's random initialisation)."""
    system_words = [word for word, _ in pre_tokenizers.Whitespace().pre_tokenize_str(SYSTEM_PROMPT.lower())]
    return word_level_tokenizer([*system_words, *caption_words], model_max_length=64)


def shapes_text_encoder(vocab_size: int) -> Gemma2Model:
    """Gemma2 (the pipeline's text encoder class) at toy width; used frozen at its random initialisation."""
    config = Gemma2Config(
        vocab_size=vocab_size,
        hidden_size=SHAPES_TEXT_DIM,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=128,
        sliding_window=128,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    return Gemma2Model(config).eval().requires_grad_(False)


def shapes_transformer(in_channels: int, hidden_size: int = 128, num_layers: int = 4) -> LuminaVideoTransformer3DModel:
    return LuminaVideoTransformer3DModel(
        patch_sizes=SHAPES_PATCH_SIZES,
        in_channels=in_channels,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_attention_heads=4,
        num_kv_heads=2,
        multiple_of=32,
        cap_feat_dim=SHAPES_TEXT_DIM,
    )


def extend_vocabulary(text_encoder: Gemma2Model, vocab_size: int, seed: int) -> Gemma2Model:
    """Gives `text_encoder` embeddings for the word ids from its vocabulary's size up to `vocab_size`, drawn as its
    random initialisation drew the others, and keeps every other weight: the words it knew keep their features, so a
    transformer trained on them keeps what it learnt (progressive training on a larger vocabulary)."""
    known = text_encoder.get_input_embeddings().weight
    known_words, width = known.shape
    if vocab_size < known_words:
        raise ValueError(f"`vocab_size` {vocab_size} is smaller than the text encoder's {known_words} words.")
    generator = torch.Generator().manual_seed(seed)
    new_rows = torch.randn(vocab_size - known_words, width, generator=generator) * known.float().std()
    text_encoder.resize_token_embeddings(vocab_size, mean_resizing=False)
    with torch.no_grad():
        text_encoder.get_input_embeddings().weight[known_words:] = new_rows.to(known.dtype)
    return text_encoder


def write_untrained_pipeline(
    folder: str | Path,
    vae: AutoencoderKLCogVideoX,
    seed: int = 0,
    hidden_size: int = 128,
    num_layers: int = 4,
    overwrite: bool = True,
    caption_words: Sequence[str] = CLIP_FORMAT_V2.caption_words,
    sampling_presets: dict[str, dict] = TINY_SHAPES_PRESETS,
    start: LuminaVideoPipeline | None = None,
) -> Path:
    """Saves a `LuminaVideoPipeline` of `vae`, the word-level tokenizer of `caption_words`, the random text encoder
    and a random transformer (all initialised from `seed`) to `folder`, in the layout `DiffusionPipeline.from_pretrained`
    and the trainer read, with `sampling_presets` (single-scale the default) as its own settings. Given `start` (a
    model trained on a subset of `caption_words`, in their order), its transformer and text encoder are used instead,
    the vocabulary extended to the new words (`extend_vocabulary`)."""
    torch.manual_seed(seed)
    tokenizer = shapes_tokenizer(caption_words)
    if start is None:
        transformer = shapes_transformer(vae.config.latent_channels, hidden_size, num_layers)
        text_encoder = shapes_text_encoder(len(tokenizer))
    else:
        known = start.tokenizer.get_vocab()
        if any(tokenizer.convert_tokens_to_ids(word) != index for word, index in known.items()):
            raise ValueError("The start model's words must keep their ids in the new vocabulary (a prefix of it).")
        transformer = start.transformer.to(torch.float32)
        text_encoder = extend_vocabulary(start.text_encoder.to(torch.float32), len(tokenizer), seed)
    pipe = LuminaVideoPipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=TINY_SHAPES_SHIFT),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        sampling_presets=sampling_presets,
        default_sampling_preset=TINY_SHAPES_ID,
    )
    folder = Path(folder)
    with build_folder_atomically(folder, overwrite=overwrite) as staging:
        pipe.save_pretrained(staging)
    return folder


@torch.no_grad()
def caption_feature_distances(pipe: LuminaVideoPipeline, captions: list[str]) -> torch.Tensor:
    """`[N, N]` distances between the caption features of `captions` (all of one token count, each flattened),
    relative to their mean norm: 0 means two captions are indistinguishable to the transformer."""
    embeds, _, _, _ = pipe.encode_prompt(captions, do_classifier_free_guidance=False, device="cpu")
    flat = embeds.flatten(1)
    return torch.cdist(flat, flat) / flat.norm(dim=1).mean()
