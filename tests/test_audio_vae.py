import pytest
import torch

from diffusers_lumina_video.processors import AudioLDMMelFeatureExtractor
from diffusers_lumina_video.showcase.audio_vae import (
    standardise_latent_channels,
    train_audio_vae,
    waveforms_to_mels,
)
from diffusers_lumina_video.showcase.builtin_models import tiny_audio_vae
from diffusers_lumina_video.showcase.synthetic_flashes import generate_flash_clip


@pytest.fixture(scope="module")
def flash_mels() -> torch.Tensor:
    clips = [generate_flash_clip(seed, duration=1.0, num_flashes=1) for seed in range(2)]
    return waveforms_to_mels([clip.audio for clip in clips], AudioLDMMelFeatureExtractor(), 16000)


def test_audio_vae_learns_the_mels_and_gets_standardised_latent_channels(flash_mels):
    assert flash_mels.shape == (2, 1, 100, 64)
    torch.manual_seed(0)
    vae = tiny_audio_vae()
    training = train_audio_vae(vae, flash_mels, num_steps=8, batch_size=2, learning_rate=1e-2)
    assert len(training.losses) == 8
    assert training.losses[-1] < 0.9 * training.losses[0]
    assert vae.config.scaling_factor == 1.0 and not vae.training
    assert len(training.latent_mean) == len(training.latent_std) == vae.config.latent_channels
    with torch.no_grad():
        latents = vae.encode(flash_mels).latent_dist.mode()
    torch.testing.assert_close(latents.mean(dim=(0, 2, 3)), torch.zeros(8), atol=1e-4, rtol=0)
    torch.testing.assert_close(latents.std(dim=(0, 2, 3)), torch.ones(8), atol=1e-4, rtol=0)


def test_standardising_the_latent_channels_leaves_every_decoded_sound_and_posterior_as_it_was(flash_mels):
    torch.manual_seed(0)
    vae = tiny_audio_vae()
    with torch.no_grad():
        before = vae.encode(flash_mels).latent_dist
        decoded_before = vae.decode(before.mode()).sample
        noise = torch.randn_like(before.mean)
        sample_before = vae.decode(before.mean + before.std * noise).sample
    mean, std = standardise_latent_channels(vae, flash_mels)
    with torch.no_grad():
        after = vae.encode(flash_mels).latent_dist
        torch.testing.assert_close(after.mode(), (before.mode() * 0.5 - mean[:, None, None]) / std[:, None, None])
        torch.testing.assert_close(vae.decode(after.mode()).sample, decoded_before, atol=1e-5, rtol=1e-4)
        sample_after = vae.decode(after.mean + after.std * noise).sample
    torch.testing.assert_close(sample_after, sample_before, atol=1e-5, rtol=1e-4)
    assert vae.config.scaling_factor == 1.0


def test_audio_vae_training_is_reproducible(flash_mels):
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append(train_audio_vae(tiny_audio_vae(), flash_mels, num_steps=2, batch_size=1, seed=3).losses)
    assert runs[0] == runs[1]


def test_loud_bins_can_weigh_more_and_the_posterior_mode_can_be_decoded(flash_mels):
    def first_loss(**kwargs) -> float:
        torch.manual_seed(0)
        return train_audio_vae(tiny_audio_vae(), flash_mels, 1, batch_size=2, seed=3, **kwargs).losses[0]

    torch.manual_seed(0)
    vae = tiny_audio_vae()
    batch = flash_mels[torch.randint(2, (2,), generator=torch.Generator().manual_seed(3))]
    with torch.no_grad():
        posterior = vae.encode(batch).latent_dist
        error = (vae.decode(posterior.mode()).sample - batch).abs()
        kl = 1e-6 * posterior.kl().mean()
    plain = (error.mean() + kl).item()
    assert first_loss(sample_posterior=False) == pytest.approx(plain, rel=1e-5)
    loud = ((error * (1 + 10 * batch.exp())).mean() + kl).item()
    assert first_loss(sample_posterior=False, loud_weight=10.0) == pytest.approx(loud, rel=1e-5)
    assert first_loss() != pytest.approx(plain, rel=1e-5)  # a posterior sample by default


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mels": torch.zeros(2, 100, 64)}, r"`mels` must be a tensor \[N, 1, T, bins\]"),
        ({"num_steps": 0}, "`num_steps` must be a positive int"),
        ({"batch_size": 1.5}, "`batch_size` must be a positive int"),
        ({"learning_rate": -1.0}, "`learning_rate` must be a number >= 0"),
        ({"loud_weight": -1.0}, "`loud_weight` must be a number >= 0"),
        ({"vae": torch.nn.Linear(1, 1)}, "`vae` must be a diffusers `AutoencoderKL`"),
    ],
)
def test_audio_vae_training_refuses_bad_arguments(flash_mels, change, message):
    arguments = {"vae": tiny_audio_vae(), "mels": flash_mels, "num_steps": 1, **change}
    error = TypeError if "vae" in change else ValueError
    with pytest.raises(error, match=message):
        train_audio_vae(**arguments)
