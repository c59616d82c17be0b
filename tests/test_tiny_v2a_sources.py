import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline

from diffusers_lumina_video.loaders.single_file_synchformer import convert_synchformer_checkpoint_to_diffusers
from diffusers_lumina_video.models import SynchformerEncoder
from diffusers_lumina_video.pipelines import LuminaV2APipeline
from diffusers_lumina_video.pipelines.lumina_v2a.assembly import assemble_v2a_pipeline
from diffusers_lumina_video.showcase.builtin_models import tiny_audio_vae
from diffusers_lumina_video.showcase.synthetic_flashes import generate_flash_clip
from diffusers_lumina_video.showcase.tiny_v2a_sources import (
    TINY_SYNCHFORMER_SETTINGS,
    synchformer_to_original_state_dict,
    write_tiny_v2a_sources,
)
from diffusers_lumina_video.utils.media_io import VideoFrames


def test_synchformer_weights_go_to_mmaudio_names_and_back():
    encoder = SynchformerEncoder(**TINY_SYNCHFORMER_SETTINGS)
    original = synchformer_to_original_state_dict(encoder)
    assert all(key.startswith("vfeat_extractor.") for key in original)
    assert {"vfeat_extractor.patch_embed_3d.proj.weight", "vfeat_extractor.blocks.0.timeattn.qkv.weight"} <= set(
        original
    )
    converted = convert_synchformer_checkpoint_to_diffusers(original, expected_shapes=encoder.state_dict())
    assert all(torch.equal(converted[key], value) for key, value in encoder.state_dict().items())


def test_tiny_sources_assemble_into_a_working_pipeline(tmp_path):
    vae = tiny_audio_vae()
    sources = write_tiny_v2a_sources(tmp_path / "sources", vae, seed=1)
    path = assemble_v2a_pipeline(
        tmp_path / "v2a",
        sources.synchformer_checkpoint,
        clip_model=str(sources.clip_model),
        audioldm_model=str(sources.audioldm_model),
        transformer_settings={
            "hidden_size": 32,
            "num_layers": 1,
            "num_attention_heads": 2,
            "num_kv_heads": 2,
            "context_dim": 16,
        },
        synchformer_num_attention_heads=sources.synchformer_num_attention_heads,
    )
    pipe = DiffusionPipeline.from_pretrained(path)
    assert isinstance(pipe, LuminaV2APipeline)
    assert pipe.sync_encoder.config.frame_size == TINY_SYNCHFORMER_SETTINGS["frame_size"]
    assert all(
        torch.equal(a, b) for a, b in zip(pipe.vae.state_dict().values(), vae.state_dict().values(), strict=True)
    )
    again = write_tiny_v2a_sources(tmp_path / "again", vae, seed=1)
    assert (
        torch.load(again.synchformer_checkpoint, weights_only=True).keys()
        == torch.load(sources.synchformer_checkpoint, weights_only=True).keys()
    )
    assert (again.clip_model / "model.safetensors").read_bytes() == (
        sources.clip_model / "model.safetensors"
    ).read_bytes()


def test_a_given_synchformer_is_written_in_place_of_a_random_one_and_the_rest_stays_the_same(tmp_path):
    vae = tiny_audio_vae()
    torch.manual_seed(5)
    trained = SynchformerEncoder(**{**TINY_SYNCHFORMER_SETTINGS, "num_attention_heads": 4})
    given = write_tiny_v2a_sources(tmp_path / "given", vae, seed=1, sync_encoder=trained)
    default = write_tiny_v2a_sources(tmp_path / "default", vae, seed=1)
    assert given.synchformer_num_attention_heads == 4
    written = torch.load(given.synchformer_checkpoint, weights_only=True)
    expected = synchformer_to_original_state_dict(trained)
    assert written.keys() == expected.keys() and all(torch.equal(written[k], expected[k]) for k in written)
    random_one = torch.load(default.synchformer_checkpoint, weights_only=True)
    assert not torch.equal(
        written["vfeat_extractor.patch_embed_3d.proj.weight"], random_one["vfeat_extractor.patch_embed_3d.proj.weight"]
    )
    # the CLIP towers are drawn from the same seed either way
    assert (given.clip_model / "model.safetensors").read_bytes() == (
        default.clip_model / "model.safetensors"
    ).read_bytes()


def test_calibrated_encoders_give_centred_features_of_unit_spread(tmp_path):
    clips = [generate_flash_clip(seed, duration=1.0, num_flashes=1, size=32) for seed in range(4)]
    videos = [VideoFrames(c.frames, np.arange(len(c.frames)) / c.fps, c.fps) for c in clips]
    captions = [c.caption for c in clips]
    sources = write_tiny_v2a_sources(
        tmp_path / "sources", tiny_audio_vae(), calibration_captions=captions, calibration_videos=videos
    )
    path = assemble_v2a_pipeline(
        tmp_path / "v2a",
        sources.synchformer_checkpoint,
        clip_model=str(sources.clip_model),
        audioldm_model=str(sources.audioldm_model),
        transformer_settings={"hidden_size": 32, "num_layers": 1, "num_attention_heads": 2, "num_kv_heads": 2},
        synchformer_num_attention_heads=sources.synchformer_num_attention_heads,
    )
    pipe = DiffusionPipeline.from_pretrained(path)
    with torch.no_grad():
        text, mask = pipe.encode_prompt(captions)
        visual = pipe.encode_frames(videos, 1.0).flatten(0, 1)
        sync = pipe.encode_sync(videos, 1.0).flatten(0, 1)
    text = text[mask.bool()]
    for features in (text, visual):
        torch.testing.assert_close(features.mean(0), torch.zeros(features.shape[1]), atol=1e-3, rtol=0)
        torch.testing.assert_close(features.std(0), torch.ones(features.shape[1]), atol=1e-3, rtol=0)
    torch.testing.assert_close(sync.mean(0), torch.zeros(sync.shape[1]), atol=1e-3, rtol=0)
    assert sync.std(0).mean().item() == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="Pass both `calibration_captions` and `calibration_videos`"):
        write_tiny_v2a_sources(tmp_path / "other", tiny_audio_vae(), calibration_captions=captions)
