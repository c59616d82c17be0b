import math

import pytest
import torch
from diffusers import AutoencoderKL
from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

from diffusers_lumina_video import AudioLDMMelFeatureExtractor
from diffusers_lumina_video.pipelines.lumina_v2a.audio_codec import (
    LATENT_FRAMES_PER_SECOND,
    SAMPLES_PER_LATENT_FRAME,
    check_audio_components,
    latents_to_waveforms,
    load_audio_components,
    waveforms_to_latents,
)
from diffusers_lumina_video.showcase.builtin_models import tiny_audio_vae, tiny_vocoder


@pytest.fixture(scope="module")
def vae() -> AutoencoderKL:
    torch.manual_seed(0)
    return tiny_audio_vae()


@pytest.fixture(scope="module")
def vocoder() -> SpeechT5HifiGan:
    torch.manual_seed(0)
    return tiny_vocoder()


@pytest.fixture(scope="module")
def extractor() -> AudioLDMMelFeatureExtractor:
    return AudioLDMMelFeatureExtractor()


def noise(num_samples: int, seed: int = 0) -> torch.Tensor:
    return 0.1 * torch.randn(num_samples, generator=torch.Generator().manual_seed(seed))


def vocoder_like_tiny(**overrides) -> SpeechT5HifiGan:
    config = tiny_vocoder().config.to_dict()
    config.update(overrides)
    return SpeechT5HifiGan(SpeechT5HifiGanConfig(**config)).eval()


def test_layout_constants():
    assert SAMPLES_PER_LATENT_FRAME == 640
    assert LATENT_FRAMES_PER_SECOND == 25


@torch.no_grad()
def test_encode_shapes_and_scaling(vae, extractor):
    waveforms = [noise(16000), noise(9000, seed=1)]
    features = extractor(waveforms, sampling_rate=16000, return_tensors="pt").input_features
    assert features.shape == (2, 1, 100, 64)
    latents = waveforms_to_latents(waveforms, 16000, vae, extractor)
    assert latents.shape == (2, 8, 25, 16)
    torch.testing.assert_close(latents, vae.encode(features).latent_dist.mode() * vae.config.scaling_factor)


@torch.no_grad()
def test_encode_mode_is_deterministic_and_sampling_follows_the_generator(vae, extractor):
    waveform = noise(6400)
    mode = waveforms_to_latents(waveform, 16000, vae, extractor)
    torch.testing.assert_close(waveforms_to_latents(waveform, 16000, vae, extractor), mode, atol=0, rtol=0)

    def sample(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return waveforms_to_latents(waveform, 16000, vae, extractor, sample_posterior=True, generator=generator)

    torch.testing.assert_close(sample(3), sample(3), atol=0, rtol=0)
    assert not torch.equal(sample(3), mode)
    assert not torch.equal(sample(3), sample(4))


@torch.no_grad()
def test_encode_refuses_another_sampling_rate(vae, extractor):
    with pytest.raises(ValueError, match="resample to 16000 first"):
        waveforms_to_latents(noise(6400), 22050, vae, extractor)


@torch.no_grad()
def test_decode_shapes_scaling_and_length(vae, vocoder):
    latents = torch.randn(2, 8, 5, 16, generator=torch.Generator().manual_seed(0))
    waveforms = latents_to_waveforms(latents, vae, vocoder)
    assert waveforms.shape == (2, 5 * 640)
    assert waveforms.dtype == torch.float32
    mel = vae.decode(latents / vae.config.scaling_factor).sample
    assert mel.shape == (2, 1, 20, 64)
    torch.testing.assert_close(waveforms, vocoder(mel.squeeze(1))[:, : 5 * 640])
    torch.testing.assert_close(latents_to_waveforms(latents, vae, vocoder, num_samples=3001), waveforms[:, :3001])


@torch.no_grad()
def test_waveform_round_trip_keeps_the_length(vae, vocoder, extractor):
    num_samples = math.ceil(0.37 * 16000)
    latents = waveforms_to_latents(noise(num_samples), 16000, vae, extractor)
    assert latents.shape[2] == math.ceil(num_samples / 640)
    assert latents_to_waveforms(latents, vae, vocoder, num_samples=num_samples).shape == (1, num_samples)


@pytest.mark.parametrize(
    ("shape", "num_samples", "match"),
    [
        ((1, 4, 5, 16), None, r"`latents` must be \[B, 8, T_lat, 16\], got \(1, 4, 5, 16\)"),
        ((8, 5, 16), None, r"`latents` must be \[B, 8, T_lat, 16\]"),
        ((1, 8, 5, 32), None, r"`latents` must be \[B, 8, T_lat, 16\]"),
        ((1, 8, 5, 16), 3201, r"`num_samples` must be an int in \[1, 3200\]"),
        ((1, 8, 5, 16), 0, r"`num_samples` must be an int in \[1, 3200\]"),
        ((1, 8, 5, 16), 1.5, r"`num_samples` must be an int"),
    ],
)
def test_decode_refuses_bad_input(vae, vocoder, shape, num_samples, match):
    with pytest.raises(ValueError, match=match):
        latents_to_waveforms(torch.zeros(shape), vae, vocoder, num_samples=num_samples)


def test_load_from_the_public_layout(tmp_path, vae, vocoder):
    vae.save_pretrained(tmp_path / "vae")
    vocoder.save_pretrained(tmp_path / "vocoder")
    loaded_vae, loaded_vocoder = load_audio_components(tmp_path, dtype=torch.float16)
    assert isinstance(loaded_vae, AutoencoderKL) and isinstance(loaded_vocoder, SpeechT5HifiGan)
    assert loaded_vae.dtype == loaded_vocoder.dtype == torch.float16
    assert loaded_vae.config.scaling_factor == vae.config.scaling_factor
    torch.testing.assert_close(loaded_vocoder.conv_post.weight.float(), vocoder.conv_post.weight, atol=1e-3, rtol=1e-3)


def test_load_refuses_an_incomplete_folder(tmp_path, vae):
    vae.save_pretrained(tmp_path / "vae")
    with pytest.raises(FileNotFoundError, match="lacks the vocoder subfolder"):
        load_audio_components(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder or a Hub repository id"):
        load_audio_components(tmp_path / "missing")


def test_load_refuses_mismatched_components(tmp_path, vae):
    vae.save_pretrained(tmp_path / "vae")
    vocoder_like_tiny(sampling_rate=22050).save_pretrained(tmp_path / "vocoder")
    with pytest.raises(ValueError, match="vocoder runs at 22050 Hz, expected 16000"):
        load_audio_components(tmp_path)


def test_mismatched_components_are_all_named(vocoder, extractor):
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 8),
        latent_channels=4,
        norm_num_groups=4,
    )
    with pytest.raises(
        ValueError, match="1-channel image.*4 latent channels, expected 8.*down-samples 2x, expected 4x"
    ):
        check_audio_components(vae, vocoder)
    mismatched = vocoder_like_tiny(model_in_dim=80, upsample_rates=[4, 4, 4, 4], upsample_kernel_sizes=[8, 8, 8, 8])
    with pytest.raises(ValueError, match="takes 80 mel bins, expected 64.*256 samples per mel frame, expected 160"):
        check_audio_components(tiny_audio_vae(), mismatched)
    with pytest.raises(ValueError, match="feature_extractor makes 80 mel bins at 16000 Hz with a hop of 160"):
        check_audio_components(tiny_audio_vae(), vocoder, AudioLDMMelFeatureExtractor(feature_size=80))
    with pytest.raises(TypeError, match="`vocoder` must be a transformers `SpeechT5HifiGan`"):
        check_audio_components(tiny_audio_vae(), extractor)
    with pytest.raises(TypeError, match="`vae` must be a diffusers `AutoencoderKL`"):
        check_audio_components(vocoder, vocoder)
