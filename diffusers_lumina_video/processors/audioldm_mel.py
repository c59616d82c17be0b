"""AudioLDM's waveform -> log-mel front end: the tensor its VAE encoder receives.

It follows AudioLDM's own preprocessing (`wav_to_fbank` and `TacotronSTFT`), including its quirks, so latents made
here match the ones the AudioLDM VAE was trained on: the level is normalised away twice, input longer than
`target_length` is kept whole and only its spectrogram is cut, and the last STFT frame is always dropped.
"""

import math

import numpy as np
import torch
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.audio_utils import mel_filter_bank
from transformers.utils import logging


logger = logging.get_logger(__name__)

RETURN_TENSORS = (None, "np", "pt")


class AudioLDMMelFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Turns 16 kHz mono waveforms into AudioLDM's log-mel spectrograms, laid out `[B, 1, T, 64]` (time along the
    height, mel bins along the width), ready for the AudioLDM `AutoencoderKL`.

    Each waveform is prepared on its own (mean removed, peak normalised to 0.5, zero-padded to `target_length` hops),
    then a centred, reflect-padded STFT (periodic Hann window, magnitude) goes through a Slaney mel filter bank and
    `ln(max(mel, log_floor))`. The defaults are AudioLDM's.

    Args:
        feature_size (`int`, defaults to 64): Number of mel bins.
        sampling_rate (`int`, defaults to 16000): The only sampling rate accepted.
        n_fft (`int`, defaults to 1024): STFT size, also the Hann window length.
        hop_length (`int`, defaults to 160): Samples per mel frame.
        min_frequency (`float`, defaults to 0.0): Lowest mel filter edge, in Hz.
        max_frequency (`float`, defaults to 8000.0): Highest mel filter edge, in Hz.
        log_floor (`float`, defaults to 1e-5): Mel values are clamped to this before the log.
        frame_multiple (`int`, defaults to 4): The default `target_length` is rounded up to a multiple of this, the
            VAE's down-sampling, so that no mel frame is lost in the latent.
    """

    model_input_names = ["input_features"]

    def __init__(
        self,
        feature_size: int = 64,
        sampling_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int = 160,
        min_frequency: float = 0.0,
        max_frequency: float = 8000.0,
        log_floor: float = 1e-5,
        frame_multiple: int = 4,
        padding_value: float = 0.0,
        **kwargs,
    ):
        kwargs.setdefault("return_attention_mask", False)
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.min_frequency = min_frequency
        self.max_frequency = max_frequency
        self.log_floor = log_floor
        self.frame_multiple = frame_multiple
        # librosa's default filter bank (Slaney scale and area normalisation), as AudioLDM builds it.
        self.mel_filters = mel_filter_bank(
            num_frequency_bins=n_fft // 2 + 1,
            num_mel_filters=feature_size,
            min_frequency=min_frequency,
            max_frequency=max_frequency,
            sampling_rate=sampling_rate,
            norm="slaney",
            mel_scale="slaney",
        ).astype(np.float32)

    def default_target_length(self, num_samples: int) -> int:
        """Enough mel frames for `num_samples`, rounded up to `frame_multiple` (25 latent frames per second)."""
        frames = math.ceil(num_samples / self.hop_length)
        return math.ceil(frames / self.frame_multiple) * self.frame_multiple

    def prepare_waveform(self, waveform: np.ndarray | torch.Tensor, target_length: int) -> torch.Tensor:
        """AudioLDM's normalisation and padding of one waveform: what goes into its STFT (float32, peak 0.5).

        The work is done in float64, as AudioLDM does once it has padded, and rounded to float32 at the end.
        """
        waveform = self._validated_waveform(waveform, "waveform")
        target_length = self._validated_target_length(target_length)
        return self._prepare(waveform, target_length)

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Log-mel spectrogram `[..., F, feature_size]` of prepared waveforms `[..., N]`, all STFT frames kept
        (`F = N // hop_length + 1`), computed in float32 on the waveform's device."""
        if waveform.shape[-1] <= self.n_fft // 2:
            raise ValueError(
                f"`waveform` has {waveform.shape[-1]} samples; the centred STFT needs more than {self.n_fft // 2}."
            )
        window = torch.hann_window(self.n_fft, periodic=True, dtype=torch.float32, device=waveform.device)
        spectrum = torch.stft(
            waveform.float(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        mel_filters = torch.from_numpy(self.mel_filters).to(waveform.device)
        mel = mel_filters.T @ spectrum.abs()
        return torch.log(torch.clamp(mel, min=self.log_floor)).transpose(-1, -2)

    def __call__(
        self,
        raw_audio: np.ndarray | torch.Tensor | list[np.ndarray] | list[torch.Tensor],
        sampling_rate: int | None = None,
        target_length: int | None = None,
        return_tensors: str | None = None,
    ) -> BatchFeature:
        """
        Featurises one waveform or a batch.

        Args:
            raw_audio: A 1-D waveform (array or tensor, float or integer PCM) or a list of them, at `sampling_rate`.
            sampling_rate: The rate of `raw_audio`; anything but the extractor's is refused. Pass it so that audio
                at another rate is caught.
            target_length: Mel frames per item. Defaults to `default_target_length` of the longest item. Shorter
                items are zero-padded; longer ones are featurised whole and their spectrogram cut (AudioLDM's rule).
            return_tensors: `"pt"` for torch tensors (on the input's device), `"np"` or `None` for numpy arrays.

        Returns:
            `BatchFeature` whose `input_features` is `[B, 1, target_length, feature_size]` float32.
        """
        if sampling_rate is None:
            logger.warning(
                f"No `sampling_rate` given to {type(self).__name__}; the audio is assumed to be at "
                f"{self.sampling_rate} Hz. Pass it so that audio at another rate is refused."
            )
        elif sampling_rate != self.sampling_rate:
            raise ValueError(
                f"`sampling_rate` is {sampling_rate} but {type(self).__name__} only accepts {self.sampling_rate} Hz; "
                f"resample to {self.sampling_rate} first."
            )
        if return_tensors not in RETURN_TENSORS:
            raise ValueError(f"`return_tensors` must be one of {RETURN_TENSORS}, got {return_tensors!r}.")
        waveforms = self._validated_batch(raw_audio)
        if target_length is None:
            target_length = self.default_target_length(max(waveform.shape[-1] for waveform in waveforms))
        target_length = self._validated_target_length(target_length)
        shortest = min(max(waveform.shape[-1], target_length * self.hop_length) for waveform in waveforms)
        if shortest <= self.n_fft // 2:
            raise ValueError(
                f"`target_length` {target_length} is too short for this audio: the STFT needs more than "
                f"{self.n_fft // 2} samples, i.e. at least {self.n_fft // 2 // self.hop_length + 1} mel frames."
            )

        features = torch.stack(
            [self.log_mel(self._prepare(waveform, target_length))[:target_length] for waveform in waveforms]
        ).unsqueeze(1)
        if return_tensors != "pt":
            features = features.cpu().numpy()
        return BatchFeature({"input_features": features}, tensor_type=return_tensors)

    def _prepare(self, waveform: torch.Tensor, target_length: int) -> torch.Tensor:
        waveform = waveform - waveform.mean()
        waveform = 0.5 * waveform / (waveform.abs().max() + 1e-8)
        waveform = torch.nn.functional.pad(waveform, (0, max(0, target_length * self.hop_length - len(waveform))))
        waveform = 0.5 * waveform / waveform.abs().max()
        return waveform.to(torch.float32).clamp(-1.0, 1.0)

    def _validated_batch(self, raw_audio) -> list[torch.Tensor]:
        if isinstance(raw_audio, (np.ndarray, torch.Tensor)):
            if raw_audio.ndim != 1:
                raise ValueError(
                    f"`raw_audio` must be a 1-D waveform or a list of them, got an array of shape "
                    f"{tuple(raw_audio.shape)}; pass a batch as a list of 1-D waveforms."
                )
            return [self._validated_waveform(raw_audio, "raw_audio")]
        if not isinstance(raw_audio, (list, tuple)):
            raise TypeError(
                f"`raw_audio` must be a 1-D numpy array or torch tensor, or a list of them, got {type(raw_audio)}."
            )
        if len(raw_audio) == 0:
            raise ValueError("`raw_audio` is an empty list; pass at least one waveform.")
        return [self._validated_waveform(item, f"raw_audio[{index}]") for index, item in enumerate(raw_audio)]

    @staticmethod
    def _validated_waveform(waveform, name: str) -> torch.Tensor:
        """`waveform` as a float64 tensor, refusing what AudioLDM's normalisation cannot handle."""
        if isinstance(waveform, np.ndarray):
            if not (np.issubdtype(waveform.dtype, np.floating) or np.issubdtype(waveform.dtype, np.integer)):
                raise TypeError(f"`{name}` must hold real samples, got dtype {waveform.dtype}.")
            waveform = torch.from_numpy(waveform.astype(np.float64))  # any byte order or stride
        elif isinstance(waveform, torch.Tensor):
            if waveform.dtype == torch.bool or waveform.is_complex():
                raise TypeError(f"`{name}` must hold real samples, got dtype {waveform.dtype}.")
        else:
            raise TypeError(f"`{name}` must be a 1-D numpy array or torch tensor, got {type(waveform)}.")
        if waveform.ndim != 1:
            raise ValueError(f"`{name}` must be 1-D (mono samples), got shape {tuple(waveform.shape)}.")
        if waveform.numel() == 0:
            raise ValueError(f"`{name}` is empty.")
        waveform = waveform.to(torch.float64)
        if not torch.isfinite(waveform).all():
            raise ValueError(f"`{name}` contains NaN or infinite samples.")
        if waveform.max() == waveform.min():
            raise ValueError(
                f"`{name}` is silent or constant; AudioLDM normalises each waveform by its peak after removing the "
                "mean, which is undefined for it (AudioLDM itself returns NaN)."
            )
        return waveform

    @staticmethod
    def _validated_target_length(target_length) -> int:
        if isinstance(target_length, bool) or not isinstance(target_length, (int, np.integer)):
            raise TypeError(f"`target_length` must be a positive int (mel frames), got {target_length!r}.")
        if target_length <= 0:
            raise ValueError(f"`target_length` must be a positive int (mel frames), got {target_length}.")
        return int(target_length)
