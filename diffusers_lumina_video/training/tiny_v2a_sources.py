"""Small stand-ins for the released models a Lumina-V2A pipeline is assembled from, saved in their public layouts.

`assemble_v2a_pipeline` reads a CLIP folder (both towers, tokenizer, image processor), an AudioLDM folder (`vae/`,
`vocoder/`) and MMAudio's `synchformer_state_dict.pth`. Writing tiny versions of those lets a V2A model be assembled
and trained end to end offline and in minutes on a CPU, through exactly the code a full-size model goes through.
Randomly initialised encoders still tell frames apart (a flash changes their features), so they carry timing and
colour; the audio VAE is the caller's, since a random one would make decoded sound meaningless.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from transformers import CLIPConfig, CLIPModel, SpeechT5HifiGan

from ..loaders.single_file_synchformer import (
    _RENAMES,
    SYNCHFORMER_PREFIX,
    convert_synchformer_checkpoint_to_diffusers,
)
from ..models import SynchformerEncoder
from ..utils.atomic import atomic_output_file
from ..utils.tiny_random import (
    tiny_clip_image_encoder,
    tiny_clip_image_processor,
    tiny_clip_text_encoder,
    tiny_tokenizer,
    tiny_vocoder,
)


# A Synchformer small enough for a CPU, on 32 px frames (4 x 4 tubelets of 8 px).
TINY_SYNCHFORMER_SETTINGS = {
    "hidden_size": 32,
    "num_layers": 1,
    "num_attention_heads": 2,
    "ffn_dim": 64,
    "patch_size": 8,
    "frame_size": 32,
}


@dataclass(frozen=True)
class TinyV2ASources:
    """Where `write_tiny_v2a_sources` put each component, as `assemble_v2a_pipeline` takes them."""

    clip_model: Path
    audioldm_model: Path
    synchformer_checkpoint: Path
    synchformer_num_attention_heads: int


def synchformer_to_original_state_dict(encoder: SynchformerEncoder) -> dict[str, torch.Tensor]:
    """`encoder`'s weights under MMAudio's names (`vfeat_extractor.` prefix), the inverse of
    `convert_synchformer_checkpoint_to_diffusers`, checked by converting them back."""
    original = {}
    for key, value in encoder.state_dict().items():
        if key.startswith("spatial_aggregator."):
            name = "spatial_attn_agg." + key[len("spatial_aggregator.") :].removeprefix("layer.")
        elif key.startswith("norm_out."):
            name = "norm." + key[len("norm_out.") :]
        else:
            name = key
            for old, new in reversed(_RENAMES):
                name = name.replace(new, old)
        original[SYNCHFORMER_PREFIX + name] = value.detach().clone()
    converted = convert_synchformer_checkpoint_to_diffusers(original, expected_shapes=encoder.state_dict())
    if converted.keys() != encoder.state_dict().keys():
        raise RuntimeError(
            "The Synchformer key mapping is not invertible; update `synchformer_to_original_state_dict`."
        )
    return original


def write_tiny_v2a_sources(
    output_dir: str | os.PathLike,
    vae: AutoencoderKL,
    vocoder: SpeechT5HifiGan | None = None,
    seed: int = 0,
) -> TinyV2ASources:
    """Writes tiny random CLIP (`clip/`), Synchformer (`synchformer_state_dict.pth`) and, with `vae` and `vocoder`
    (tiny random by default), AudioLDM (`audioldm/`) under `output_dir`; weights drawn from `seed`."""
    if not isinstance(vae, AutoencoderKL):
        raise TypeError(f"`vae` must be a diffusers `AutoencoderKL` (AudioLDM's mel VAE layout), got {type(vae)}.")
    output_dir = Path(output_dir)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        text_config, vision_config = tiny_clip_text_encoder().config, tiny_clip_image_encoder().config
        clip_config = CLIPConfig(
            text_config=text_config.to_dict(),
            vision_config=vision_config.to_dict(),
            projection_dim=vision_config.projection_dim,
        )
        clip = CLIPModel(clip_config)
        sync_encoder = SynchformerEncoder(**TINY_SYNCHFORMER_SETTINGS)
        vocoder = vocoder or tiny_vocoder()
    finally:
        torch.random.set_rng_state(generator_state)

    clip_dir, audioldm_dir = output_dir / "clip", output_dir / "audioldm"
    clip.save_pretrained(clip_dir)
    tiny_tokenizer(model_max_length=clip_config.text_config.max_position_embeddings).save_pretrained(clip_dir)
    tiny_clip_image_processor().save_pretrained(clip_dir)
    vae.save_pretrained(audioldm_dir / "vae")
    vocoder.save_pretrained(audioldm_dir / "vocoder")
    checkpoint = output_dir / "synchformer_state_dict.pth"
    with atomic_output_file(checkpoint) as temporary:
        torch.save(synchformer_to_original_state_dict(sync_encoder), temporary)
    return TinyV2ASources(clip_dir, audioldm_dir, checkpoint, TINY_SYNCHFORMER_SETTINGS["num_attention_heads"])
