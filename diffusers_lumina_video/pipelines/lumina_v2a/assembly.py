"""A Lumina-V2A pipeline folder from released component models and a freshly initialised transformer.

No Lumina-V2A weights were ever released, so training starts here: CLIP (text and image towers), AudioLDM's mel VAE
and HiFi-GAN vocoder, and MMAudio's Synchformer state dict are loaded with their own libraries, a
`LuminaV2ATransformerModel` is built to fit their feature widths, and everything is saved as one
`DiffusionPipeline` folder whose model card says the transformer is untrained.
"""

import logging
import os
from pathlib import Path

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from ...model_card import create_v2a_model_card
from ...models import LuminaV2ATransformerModel, SynchformerEncoder
from ...utils.atomic import build_folder_atomically
from ...utils.component_paths import check_component_path
from ...utils.output_paths import check_output_folder
from .audio_codec import load_audio_components
from .pipeline_lumina_v2a import LuminaV2APipeline


logger = logging.getLogger(__name__)

DEFAULT_CLIP_MODEL = "openai/clip-vit-large-patch14"
DEFAULT_AUDIOLDM_MODEL = "cvssp/audioldm-s-full-v2"
# The transformer settings a user may choose; the feature widths come from the encoders.
TRANSFORMER_SETTINGS = (
    "patch_size",
    "hidden_size",
    "num_layers",
    "num_attention_heads",
    "num_kv_heads",
    "multiple_of",
    "context_dim",
    "rope_theta",
    "max_latent_frames",
)
# MMAudio's linear time schedule: no shift.
DEFAULT_SHIFT = 1.0


def assemble_v2a_pipeline(
    output_path: str | os.PathLike,
    synchformer_checkpoint: str | os.PathLike,
    clip_model: str = DEFAULT_CLIP_MODEL,
    audioldm_model: str = DEFAULT_AUDIOLDM_MODEL,
    transformer_settings: dict | None = None,
    synchformer_num_attention_heads: int = 12,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    r"""
    Builds and saves an untrained Lumina-V2A pipeline.

    Args:
        output_path: The folder to write; `DiffusionPipeline.from_pretrained(output_path)` loads it.
        synchformer_checkpoint: MMAudio's `synchformer_state_dict.pth`.
        clip_model: A CLIP folder or Hub id with both towers (text and image), its tokenizer and image processor.
        audioldm_model: An AudioLDM folder or Hub id in the public layout (`vae/` and `vocoder/`).
        transformer_settings: Any of `TRANSFORMER_SETTINGS` for `LuminaV2ATransformerModel` (its defaults otherwise).
        synchformer_num_attention_heads: The Synchformer's head count (not stored in its weights; 12 when released).
        seed: Seed of the transformer's initial weights.
        overwrite: Replace `output_path` if it exists and is not empty.
    """
    output_path = Path(output_path)
    check_output_folder(output_path, "output_path")
    if output_path.is_dir() and any(output_path.iterdir()) and not overwrite:
        raise FileExistsError(f"`output_path` {output_path} is not empty; pass `overwrite=True` to replace it.")
    if not Path(synchformer_checkpoint).is_file():
        raise FileNotFoundError(f"`synchformer_checkpoint` {synchformer_checkpoint} does not exist.")
    check_component_path("clip_model", clip_model)
    check_component_path("audioldm_model", audioldm_model)
    settings = dict(transformer_settings or {})
    unknown = sorted(set(settings) - set(TRANSFORMER_SETTINGS))
    if unknown:
        raise ValueError(f"`transformer_settings` has {unknown}; allowed: {list(TRANSFORMER_SETTINGS)}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"`seed` must be an integer in [0, 2**63), got {seed!r}.")

    from transformers import AutoImageProcessor, AutoTokenizer, CLIPTextModel, CLIPVisionModelWithProjection

    logger.info(
        f"Loading CLIP from {clip_model}, AudioLDM from {audioldm_model}, Synchformer from {synchformer_checkpoint}."
    )
    text_encoder = CLIPTextModel.from_pretrained(clip_model).eval()
    image_encoder = CLIPVisionModelWithProjection.from_pretrained(clip_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(clip_model)
    feature_extractor = AutoImageProcessor.from_pretrained(clip_model)
    vae, vocoder = load_audio_components(audioldm_model)
    sync_encoder = SynchformerEncoder.from_single_file(
        synchformer_checkpoint, num_attention_heads=synchformer_num_attention_heads
    )

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        transformer = LuminaV2ATransformerModel(
            visual_feat_dim=image_encoder.config.projection_dim,
            text_feat_dim=text_encoder.config.hidden_size,
            sync_feat_dim=sync_encoder.config.hidden_size,
            **settings,
        )
    finally:
        torch.random.set_rng_state(generator_state)
    pipeline = LuminaV2APipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=DEFAULT_SHIFT),
        vae=vae,
        vocoder=vocoder,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        image_encoder=image_encoder,
        feature_extractor=feature_extractor,
        sync_encoder=sync_encoder,
    )
    card = create_v2a_model_card(
        model_id=str(output_path.resolve()),
        components={
            "CLIP": str(clip_model),
            "AudioLDM": str(audioldm_model),
            "Synchformer": Path(synchformer_checkpoint).name,
        },
        num_parameters=sum(p.numel() for p in transformer.parameters()),
        trained=False,
    )
    with build_folder_atomically(output_path, overwrite) as folder:
        pipeline.save_pretrained(folder)
        card.save(folder / "README.md")
    logger.info(f"Wrote {output_path}: an untrained Lumina-V2A pipeline.")
    return output_path
