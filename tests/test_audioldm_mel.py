import json
import math

import numpy as np
import pytest
import torch
from conftest import GOLDEN_DIR
from diffusers import DiffusionPipeline
from safetensors.torch import load_file

from diffusers_lumina_video import AudioLDMMelFeatureExtractor


MEL_GOLDEN_DIR = GOLDEN_DIR.parent / "audioldm_mel"
CASES = ["chirp", "noise", "clicks"]
LOG_FLOOR = math.log(1e-3)  # below this mel value only the whole-tensor log tolerance applies


@pytest.fixture(scope="module")
def mel_golden() -> dict[str, torch.Tensor]:
    return load_file(str(MEL_GOLDEN_DIR / "golden.safetensors"))


@pytest.fixture(scope="module")
def target_lengths() -> dict[str, int]:
    spec = json.loads((MEL_GOLDEN_DIR / "golden.json").read_text())
    return {case["name"]: case["target_length"] for case in spec["cases"]}


@pytest.fixture(scope="module")
def extractor() -> AudioLDMMelFeatureExtractor:
    return AudioLDMMelFeatureExtractor()


def assert_log_mel_close(ours: torch.Tensor, reference: torch.Tensor) -> None:
    """The golden README's three checks: linear domain, log domain above 1e-3, whole-tensor log domain."""
    assert ours.shape == reference.shape
    torch.testing.assert_close(ours.exp(), reference.exp(), atol=1e-5, rtol=1e-4)
    loud = reference > LOG_FLOOR
    torch.testing.assert_close(ours[loud], reference[loud], atol=2e-4, rtol=0)
    torch.testing.assert_close(ours, reference, atol=2e-2, rtol=0)


def tone(num_samples: int, frequency: float = 440.0, amplitude: float = 0.3) -> torch.Tensor:
    return amplitude * torch.sin(2 * math.pi * frequency * torch.arange(num_samples) / 16000)


def test_mel_basis(extractor, mel_golden):
    torch.testing.assert_close(torch.from_numpy(extractor.mel_filters).T, mel_golden["mel_basis"], atol=1e-7, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_waveform_prepared(extractor, mel_golden, target_lengths, case):
    prepared = extractor.prepare_waveform(mel_golden[f"{case}/waveform_16k"], target_lengths[case])
    assert prepared.dtype == torch.float32
    torch.testing.assert_close(prepared, mel_golden[f"{case}/waveform_prepared"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_mel_raw(extractor, mel_golden, case):
    log_mel = extractor.log_mel(mel_golden[f"{case}/waveform_prepared"])
    assert_log_mel_close(log_mel, mel_golden[f"{case}/mel_raw"][0].T)


@pytest.mark.parametrize("case", CASES)
def test_fbank(extractor, mel_golden, target_lengths, case):
    features = extractor(
        mel_golden[f"{case}/waveform_16k"].numpy(), sampling_rate=16000, target_length=target_lengths[case]
    ).input_features
    assert isinstance(features, np.ndarray)
    assert_log_mel_close(torch.from_numpy(features[0, 0]), mel_golden[f"{case}/fbank"])


@pytest.mark.parametrize("case", CASES)
def test_vae_input(extractor, mel_golden, target_lengths, case):
    features = extractor(
        mel_golden[f"{case}/waveform_16k"],
        sampling_rate=16000,
        target_length=target_lengths[case],
        return_tensors="pt",
    ).input_features
    assert features.dtype == torch.float32
    assert_log_mel_close(features, mel_golden[f"{case}/vae_input"])


@pytest.mark.parametrize(("num_samples", "frames"), [(16000, 100), (16001, 104), (640, 4), (12345, 80)])
def test_default_target_length_is_whole_latent_frames(extractor, num_samples, frames):
    features = extractor(tone(num_samples), sampling_rate=16000, return_tensors="pt").input_features
    assert features.shape == (1, 1, frames, 64)


def test_batch_shares_the_longest_target_length_and_normalises_each_item(extractor):
    short, long = tone(8000, 300.0), tone(16000, 1000.0, amplitude=0.01)
    batch = extractor([short, long], sampling_rate=16000, return_tensors="pt").input_features
    assert batch.shape == (2, 1, 100, 64)
    # A power-of-two gain is exact in floating point, so the level normalisation must undo it exactly.
    alone = extractor(4.0 * short, sampling_rate=16000, target_length=100, return_tensors="pt").input_features
    torch.testing.assert_close(batch[:1], alone, atol=0, rtol=0)
    torch.testing.assert_close(batch[1:], extractor(long, sampling_rate=16000, return_tensors="pt").input_features)


def test_long_input_is_featurised_whole_then_cut(extractor):
    waveform = torch.randn(16000, generator=torch.Generator().manual_seed(0))
    features = extractor(waveform, sampling_rate=16000, target_length=40, return_tensors="pt").input_features
    whole = extractor.log_mel(extractor.prepare_waveform(waveform, 40))
    assert whole.shape == (101, 64)
    torch.testing.assert_close(features[0, 0], whole[:40])


def test_integer_pcm_and_any_array_layout_give_the_same_features(extractor, mel_golden):
    def features(raw_audio) -> torch.Tensor:
        return extractor(raw_audio, sampling_rate=16000, return_tensors="pt").input_features

    waveform = mel_golden["noise/waveform_16k"]  # on the 16-bit grid: int16 PCM is the same signal scaled by 2**15
    pcm = (waveform * 32768).round().to(torch.int16).numpy()
    torch.testing.assert_close(features(pcm), features(waveform))
    torch.testing.assert_close(features(pcm.astype(">i2")), features(waveform))
    torch.testing.assert_close(features(pcm[::-1]), features(np.ascontiguousarray(pcm[::-1])))


def test_save_and_load_round_trip(tmp_path):
    extractor = AudioLDMMelFeatureExtractor(frame_multiple=8)
    extractor.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").is_file()
    loaded = AudioLDMMelFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == extractor.to_dict()
    np.testing.assert_array_equal(loaded.mel_filters, extractor.mel_filters)
    waveform = tone(3000)
    assert loaded(waveform, sampling_rate=16000).input_features.shape == (1, 1, 24, 64)


class MelPipeline(DiffusionPipeline):
    def __init__(self, feature_extractor: AudioLDMMelFeatureExtractor):
        super().__init__()
        self.register_modules(feature_extractor=feature_extractor)


def test_loads_as_a_diffusers_pipeline_component(tmp_path):
    MelPipeline(AudioLDMMelFeatureExtractor(frame_multiple=8)).save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["feature_extractor"] == ["diffusers_lumina_video", "AudioLDMMelFeatureExtractor"]
    loaded = MelPipeline.from_pretrained(tmp_path)
    assert isinstance(loaded.feature_extractor, AudioLDMMelFeatureExtractor)
    assert loaded.feature_extractor.frame_multiple == 8


@pytest.mark.parametrize(
    ("raw_audio", "kwargs", "error", "match"),
    [
        (tone(1600), {"sampling_rate": 44100}, ValueError, "resample to 16000 first"),
        (torch.zeros(1600), {}, ValueError, r"`raw_audio` is silent or constant"),
        ([tone(1600), torch.full((1600,), 0.25)], {}, ValueError, r"`raw_audio\[1\]` is silent or constant"),
        (torch.tensor([0.1, float("nan")] * 800), {}, ValueError, "`raw_audio` contains NaN or infinite"),
        (np.array([0.1, np.inf] * 800), {}, ValueError, "`raw_audio` contains NaN or infinite"),
        (torch.zeros(0), {}, ValueError, "`raw_audio` is empty"),
        ([], {}, ValueError, "`raw_audio` is an empty list"),
        (torch.randn(2, 1600), {}, ValueError, r"`raw_audio` must be a 1-D waveform or a list of them, .*\(2, 1600\)"),
        ([torch.randn(1, 1600)], {}, ValueError, r"`raw_audio\[0\]` must be 1-D"),
        ([0.1, 0.2], {}, TypeError, r"`raw_audio\[0\]` must be a 1-D numpy array or torch tensor"),
        ("audio.wav", {}, TypeError, "`raw_audio` must be a 1-D numpy array or torch tensor, or a list"),
        (np.ones(1600, dtype=complex), {}, TypeError, "`raw_audio` must hold real samples"),
        (tone(1600), {"target_length": 0}, ValueError, "`target_length` must be a positive int"),
        (tone(1600), {"target_length": 2.5}, TypeError, "`target_length` must be a positive int"),
        (tone(1600), {"target_length": True}, TypeError, "`target_length` must be a positive int"),
        (tone(320), {"target_length": 2}, ValueError, "`target_length` 2 is too short for this audio"),
        (tone(1600), {"return_tensors": "tf"}, ValueError, "`return_tensors` must be one of"),
    ],
)
def test_bad_input_is_refused(extractor, raw_audio, kwargs, error, match):
    kwargs = {"sampling_rate": 16000, **kwargs}
    with pytest.raises(error, match=match):
        extractor(raw_audio, **kwargs)


def test_prepare_waveform_validates_its_arguments(extractor):
    with pytest.raises(ValueError, match="`waveform` is silent or constant"):
        extractor.prepare_waveform(torch.ones(100), 4)
    with pytest.raises(ValueError, match="`target_length` must be a positive int"):
        extractor.prepare_waveform(tone(100), -4)
