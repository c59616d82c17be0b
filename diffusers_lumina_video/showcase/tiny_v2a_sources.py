"""Small stand-ins for the released models a Lumina-V2A pipeline is assembled from, saved in their public layouts.

`assemble_v2a_pipeline` reads a CLIP folder (both towers, tokenizer, image processor), an AudioLDM folder (`vae/`,
`vocoder/`) and MMAudio's `synchformer_state_dict.pth`. Writing tiny versions of those lets a V2A model be assembled
and trained end to end offline and in minutes on a CPU, through exactly the code a full-size model goes through.
Randomly initialised encoders still tell frames apart (a flash changes their features), so they carry timing and
colour (not a small shape's bounce: `showcase.sync_pretraining` trains a Synchformer stand-in for that); the audio
VAE is the caller's, since a random one would make decoded sound meaningless.

A random encoder's features share a large constant part, and what tells two clips or two moments apart is a small
deviation from it; a trained encoder's features vary at their own scale. Given calibration clips, the encoders'
output layers are set so that their features are centred and scaled on those clips (per feature for CLIP's towers,
one scale for Synchformer, whose last layer only allows that exactly), which is what makes them usable as frozen
stand-ins.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
from transformers import CLIPConfig, CLIPModel, CLIPVisionModelWithProjection, SpeechT5HifiGan

from ..loaders.single_file_synchformer import (
    _RENAMES,
    SYNCHFORMER_PREFIX,
    convert_synchformer_checkpoint_to_diffusers,
)
from ..models import SynchformerEncoder
from ..pipelines import LuminaV2APipeline
from ..utils.atomic import atomic_output_file
from ..utils.media_io import VideoFrames
from .builtin_models import (
    tiny_clip_image_encoder,
    tiny_clip_image_processor,
    tiny_clip_text_encoder,
    tiny_tokenizer,
    tiny_v2a_transformer,
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


def _moments(features: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and standard deviation over every token (those where `mask` is set)."""
    flat = features.flatten(0, -2).double()
    if mask is not None:
        flat = flat[mask.flatten().bool()]
    return flat.mean(0), flat.std(0).clamp_min(1e-6)


@torch.no_grad()
def calibrate_encoders(pipeline: LuminaV2APipeline, captions: Sequence[str], videos: Sequence[VideoFrames]) -> None:
    """Sets the output layers of `pipeline`'s three encoders, in place, so that the features it takes from `captions`
    and `videos` (over the shortest video) are centred with unit spread: CLIP text token features and frame features
    per feature (the affine of the text tower's last LayerNorm; the image tower's last LayerNorm shift and its
    projection rows), Synchformer features with one scale (its aggregator's residual branches and CLS token, through
    which a common scale passes exactly)."""
    if len(captions) < 2 or len(captions) != len(videos):
        raise ValueError(
            f"`captions` and `videos` must be two or more pairs, got {len(captions)} captions and {len(videos)} videos."
        )
    duration = min(len(video.frames) / video.fps for video in videos)

    text, mask = pipeline.encode_prompt(list(captions))
    mean, std = _moments(text, mask)
    norm = pipeline.text_encoder.final_layer_norm
    norm.weight.copy_((norm.weight / std).float())
    norm.bias.copy_(((norm.bias - mean) / std).float())

    image_encoder = pipeline.image_encoder
    mean, std = _moments(pipeline.encode_frames(list(videos), duration))
    projection = image_encoder.visual_projection.weight
    # The projection has no bias: centre its input (the LayerNorm's output) instead, then scale its rows.
    centre = torch.linalg.lstsq(projection.double(), mean[:, None]).solution[:, 0]
    image_encoder.vision_model.post_layernorm.bias.sub_(centre.float())
    projection.copy_((projection / std[:, None]).float())

    mean, std = _moments(pipeline.encode_sync(list(videos), duration))
    scale = float(1.0 / std.mean())
    aggregator = pipeline.sync_encoder.spatial_aggregator
    for parameter in (
        aggregator.cls_token,
        aggregator.layer.self_attn.out_proj.weight,
        aggregator.layer.self_attn.out_proj.bias,
        aggregator.layer.linear2.weight,
        aggregator.layer.linear2.bias,
    ):
        parameter.mul_(scale)
    aggregator.layer.linear2.bias.sub_((scale * mean).float())


def write_tiny_v2a_sources(
    output_dir: str | os.PathLike,
    vae: AutoencoderKL,
    vocoder: SpeechT5HifiGan | None = None,
    seed: int = 0,
    calibration_captions: Sequence[str] | None = None,
    calibration_videos: Sequence[VideoFrames] | None = None,
    sync_encoder: SynchformerEncoder | None = None,
) -> TinyV2ASources:
    """Writes tiny random CLIP (`clip/`), Synchformer (`synchformer_state_dict.pth`; `sync_encoder`, such as one
    `showcase.sync_pretraining` trained, instead of a random one) and, with `vae` and `vocoder` (tiny random by
    default), AudioLDM (`audioldm/`) under `output_dir`; weights drawn from `seed`, and the encoders calibrated on the
    captions and videos given (`calibrate_encoders`)."""
    if not isinstance(vae, AutoencoderKL):
        raise TypeError(f"`vae` must be a diffusers `AutoencoderKL` (AudioLDM's mel VAE layout), got {type(vae)}.")
    if (calibration_captions is None) != (calibration_videos is None):
        raise ValueError("Pass both `calibration_captions` and `calibration_videos`, or neither.")
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
        clip = CLIPModel(clip_config).eval()
        # Drawn even when one is given, so that the other components' weights are the same either way.
        random_sync_encoder = SynchformerEncoder(**TINY_SYNCHFORMER_SETTINGS).eval()
        vocoder = vocoder or tiny_vocoder()
        transformer = tiny_v2a_transformer()
    finally:
        torch.random.set_rng_state(generator_state)
    sync_encoder = random_sync_encoder if sync_encoder is None else sync_encoder
    tokenizer = tiny_tokenizer(model_max_length=clip_config.text_config.max_position_embeddings)
    image_processor = tiny_clip_image_processor()

    if calibration_videos is not None:
        # The image tower with its projection, sharing the CLIP model's weights, as the pipeline loads it.
        image_encoder = CLIPVisionModelWithProjection(clip_config.vision_config).eval()
        image_encoder.vision_model = clip.vision_model
        image_encoder.visual_projection = clip.visual_projection
        pipeline = LuminaV2APipeline(
            transformer=transformer,
            scheduler=FlowMatchEulerDiscreteScheduler(),
            vae=vae,
            vocoder=vocoder,
            text_encoder=clip.text_model,
            tokenizer=tokenizer,
            image_encoder=image_encoder,
            feature_extractor=image_processor,
            sync_encoder=sync_encoder,
        )
        calibrate_encoders(pipeline, calibration_captions, calibration_videos)

    clip_dir, audioldm_dir = output_dir / "clip", output_dir / "audioldm"
    clip.save_pretrained(clip_dir)
    tokenizer.save_pretrained(clip_dir)
    image_processor.save_pretrained(clip_dir)
    vae.save_pretrained(audioldm_dir / "vae")
    vocoder.save_pretrained(audioldm_dir / "vocoder")
    checkpoint = output_dir / "synchformer_state_dict.pth"
    with atomic_output_file(checkpoint) as temporary:
        torch.save(synchformer_to_original_state_dict(sync_encoder), temporary)
    return TinyV2ASources(clip_dir, audioldm_dir, checkpoint, sync_encoder.config.num_attention_heads)


def assemble_tiny_v2a_pipeline(
    output_path: str | os.PathLike,
    sources: TinyV2ASources,
    clip_duration: float,
    hidden_size: int = 64,
    num_layers: int = 2,
    frequency_patch: int = 16,
    seed: int = 0,
) -> Path:
    """An untrained Lumina-V2A pipeline assembled from `sources` by `assemble_v2a_pipeline`, as from the released
    models, with a small transformer (4 heads, `frequency_patch` latent mel bins per token) whose position table
    covers clips of `clip_duration` seconds."""
    from ..pipelines.lumina_v2a.assembly import assemble_v2a_pipeline
    from ..pipelines.lumina_v2a.audio_codec import LATENT_FRAMES_PER_SECOND

    return assemble_v2a_pipeline(
        output_path,
        sources.synchformer_checkpoint,
        clip_model=str(sources.clip_model),
        audioldm_model=str(sources.audioldm_model),
        transformer_settings={
            "patch_size": (1, frequency_patch),
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "num_attention_heads": 4,
            "num_kv_heads": 4,
            "multiple_of": 16,
            "context_dim": 64,
            "max_latent_frames": 8 * round(clip_duration * LATENT_FRAMES_PER_SECOND / 8 + 1),
        },
        synchformer_num_attention_heads=sources.synchformer_num_attention_heads,
        seed=seed,
        overwrite=True,
    )
