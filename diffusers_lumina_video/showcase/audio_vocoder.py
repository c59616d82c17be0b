"""A vocoder fitted to a few tones: transformers' `SpeechT5HifiGan` (the class a V2A pipeline loads) with its weights
set so that it plays each tone with the loudness the log-mel spectrogram shows at that tone's mel bin.

A random vocoder turns a log-mel spectrogram into noise whose loudness follows it only roughly, so the onsets and
pitches of generated beeps are lost in the written file; training a HiFi-GAN from scratch takes hours. For sounds made
of known tones, the HiFi-GAN layout can be an additive synthesiser instead, with one up-sampling of 160 (AudioLDM's
hop) and these weights:

- the first convolution reads each tone's mel bin and gives `knots` ramps `L - t_j` per tone, each with its negation
  (the layer after it is a leaky ReLU; the pair makes an exact ReLU of `L - t_j`);
- the up-sampling turns them into `sum_j s_j relu(L - t_j)` times a Hann-windowed sine grain per mel frame; grains two
  hops long at one hop apart add up to a steady sine (of the tone rounded to whole cycles per hop, so that grains
  agree in phase: 440 Hz plays at 400 Hz, 880 at 900, 1760 at 1800, 3520 at 3500), whose loudness follows `L`;
- the residual blocks pass their input through; the last convolution sums the tones (each with its negation, again for
  the leaky ReLU before it), and the closing tanh barely bends a beep of half scale.

`fit_tone_vocoder` fits the loudness curve of each tone (`s_j >= 0`, least squares) from spectrograms and their
waveforms: the amplitude of the tone in the waveform against `L`, from a first knot `t_0` that the frames without the
tone stay under (all of them, or a share `quiet_quantile`: an audio VAE's reconstruction leaks a beep into the frames
beside it, as loud as many reconstructed beeps, and a first knot above those leaves such beeps silent). The waveform
is the clip as played, not as the mel features normalise it (peak 0.5), so that a clip of a quiet hiss alone, whose
normalised spectrogram is a loud hiss, stays quiet. Sound that is not one of the tones (the hiss, a shape's
harmonics) is not played.
"""

from collections.abc import Sequence

import numpy as np
import torch
from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

from ..pipelines.lumina_v2a.audio_codec import HOP_LENGTH, MEL_BINS, SAMPLE_RATE
from ..processors import AudioLDMMelFeatureExtractor


# Amplitude of a tone below which a mel frame holds none of it, relative to the loudest amplitude of that tone.
QUIET = 0.02


def played_frequency(frequency: float) -> float:
    """The frequency a tone plays at: the nearest whole number of cycles per hop (100 Hz steps at 16 kHz)."""
    step = SAMPLE_RATE / HOP_LENGTH
    return max(1, round(frequency / step)) * step


def tone_mel_bin(frequency: float, feature_extractor: AudioLDMMelFeatureExtractor) -> int:
    """The mel bin of `feature_extractor` that a tone at `frequency` (Hz) falls in: the one whose filter weighs the
    tone's FFT bin most."""
    fft_bin = round(frequency * feature_extractor.n_fft / SAMPLE_RATE)
    return int(np.argmax(feature_extractor.mel_filters[fft_bin]))


def tone_amplitudes(waveforms: np.ndarray, frequency: float) -> np.ndarray:
    """Amplitude `[N, F]` of the sine at `frequency` in each hop-centred, two-hop Hann window of waveforms `[N, S]`
    (`F = S // HOP_LENGTH`): mel frame `i`'s moment, as AudioLDM's centred STFT places it."""
    waveforms = np.asarray(waveforms, dtype=np.float64)
    frames = waveforms.shape[1] // HOP_LENGTH
    padded = np.pad(waveforms, ((0, 0), (HOP_LENGTH, HOP_LENGTH)))
    window = np.hanning(2 * HOP_LENGTH + 1)[:-1]
    phasor = np.exp(-2j * np.pi * frequency * np.arange(2 * HOP_LENGTH) / SAMPLE_RATE) * window
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * HOP_LENGTH, axis=1)[:, ::HOP_LENGTH][:, :frames]
    return 2 * np.abs(windows @ phasor) / window.sum()


def _nonnegative_least_squares(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`argmin |design @ s - target|` over `s >= 0`, by refitting without the columns that come out negative."""
    active = np.ones(design.shape[1], dtype=bool)
    solution = np.zeros(design.shape[1])
    while active.any():
        solution[:] = 0.0
        solution[active] = np.linalg.lstsq(design[:, active], target, rcond=None)[0]
        if (solution >= 0).all():
            break
        active &= solution > 0
    return np.clip(solution, 0.0, None)


def fit_tone_vocoder(
    mels: torch.Tensor | np.ndarray,
    waveforms: torch.Tensor | np.ndarray,
    tones: Sequence[float],
    knots: int = 4,
    feature_extractor: AudioLDMMelFeatureExtractor | None = None,
    quiet_quantile: float = 1.0,
) -> SpeechT5HifiGan:
    r"""
    A vocoder that plays `tones` (Hz) with the loudness fitted on these spectrograms and waveforms.

    Args:
        mels: Log-mel spectrograms `[N, T, 64]`, as the pipeline's VAE decodes them (`waveforms_to_mels`, squeezed).
        waveforms: The sound of each, `[N, >= T * 160]` at 16 kHz, at the level it should be played at.
        tones: The frequencies of the tones, each in its own mel bin.
        knots: Pieces of each tone's loudness curve (a sum of `knots` ramps).
        feature_extractor: The mel features of `mels` (AudioLDM's by default), for the bin of each tone.
        quiet_quantile: The share of the frames without a tone (its amplitude under `QUIET` of its loudest) whose
            level stays under the tone's first knot, so plays nothing: 1 for all of them; lower plays the frames
            beside a reconstructed beep that the reconstruction made loud.
    """
    mels, waveforms = np.asarray(mels, dtype=np.float64), np.asarray(waveforms, dtype=np.float64)
    if mels.ndim != 3 or mels.shape[2] != MEL_BINS:
        raise ValueError(f"`mels` must be [N, T, {MEL_BINS}], got {mels.shape}.")
    if waveforms.ndim != 2 or len(waveforms) != len(mels) or waveforms.shape[1] < mels.shape[1] * HOP_LENGTH:
        raise ValueError(
            f"`waveforms` must be [{len(mels)}, >= {mels.shape[1] * HOP_LENGTH}] (the mels' frames x {HOP_LENGTH}), "
            f"got {waveforms.shape}."
        )
    if isinstance(knots, bool) or not isinstance(knots, int) or knots < 1:
        raise ValueError(f"`knots` must be a positive int, got {knots!r}.")
    if not tones or not all(0 < tone < SAMPLE_RATE / 2 for tone in tones):
        raise ValueError(f"`tones` must be frequencies between 0 and {SAMPLE_RATE // 2} Hz, got {list(tones)}.")
    if not 0.0 < quiet_quantile <= 1.0:
        raise ValueError(f"`quiet_quantile` must be in (0, 1], got {quiet_quantile}.")
    feature_extractor = feature_extractor or AudioLDMMelFeatureExtractor()
    mel_bins = [tone_mel_bin(tone, feature_extractor) for tone in tones]
    if len(set(mel_bins)) < len(mel_bins):
        raise ValueError(f"`tones` {list(tones)} must each fall in a mel bin of its own, got bins {mel_bins}.")

    channels = 2 * knots * len(tones)  # a ramp and its negation per knot and tone
    config = SpeechT5HifiGanConfig(
        model_in_dim=MEL_BINS,
        sampling_rate=SAMPLE_RATE,
        upsample_initial_channel=channels,
        upsample_rates=[HOP_LENGTH],
        upsample_kernel_sizes=[4 * HOP_LENGTH],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1]],
        normalize_before=False,
    )
    vocoder = SpeechT5HifiGan(config).eval()
    slope = config.leaky_relu_slope  # of the leaky ReLU after the first convolution (the one before the last: 0.01)
    frames = mels.shape[1]
    grain = np.hanning(2 * HOP_LENGTH + 1)[:-1]  # periodic: grains one hop apart sum to one
    # The up-sampling puts kernel tap m of input frame i at sample 160 i + m - 240: a grain centred on tap 240 is
    # centred on frame i's moment.
    centre = (4 * HOP_LENGTH - HOP_LENGTH) // 2
    taps = np.arange(centre - HOP_LENGTH, centre + HOP_LENGTH)
    pre_weight = np.zeros((channels, MEL_BINS, 7))
    pre_bias = np.zeros(channels)
    up_weight = np.zeros((channels, channels // 2, 4 * HOP_LENGTH))
    post_weight = np.zeros((1, channels // 2, 7))
    for index, (tone, mel_bin) in enumerate(zip(tones, mel_bins, strict=True)):
        levels = mels[:, :, mel_bin].reshape(-1)
        amplitudes = tone_amplitudes(waveforms[:, : frames * HOP_LENGTH], tone).reshape(-1)
        quiet = amplitudes < QUIET * amplitudes.max()
        start = np.quantile(levels[quiet], quiet_quantile) if quiet.any() else levels.min()
        thresholds = np.linspace(start, max(levels.max(), start + 1e-3), knots + 1)[:-1]
        design = np.maximum(levels[:, None] - thresholds[None], 0.0)
        scales = _nonnegative_least_squares(design, amplitudes)
        sine = grain * np.sin(2 * np.pi * played_frequency(tone) * (taps - centre) / SAMPLE_RATE)
        for knot, (threshold, scale) in enumerate(zip(thresholds, scales, strict=True)):
            ramp, negated = 2 * (index * knots + knot), 2 * (index * knots + knot) + 1
            pre_weight[ramp, mel_bin, 3], pre_bias[ramp] = 1.0, -threshold
            pre_weight[negated, mel_bin, 3], pre_bias[negated] = -1.0, threshold
            # relu(x) = (leaky(x) + slope leaky(-x)) / (1 - slope^2); the sine goes to the tone's +/- pair.
            for channel, weight in ((ramp, 1.0), (negated, slope)):
                up_weight[channel, 2 * index, taps] = scale * weight / (1 - slope**2) * sine
                up_weight[channel, 2 * index + 1, taps] = -scale * weight / (1 - slope**2) * sine
        # x = (leaky(x) - leaky(-x)) / (1 + 0.01) for the final leaky ReLU's default slope.
        post_weight[0, 2 * index, 3], post_weight[0, 2 * index + 1, 3] = 1 / 1.01, -1 / 1.01

    with torch.no_grad():
        for parameter in vocoder.parameters():
            parameter.zero_()  # the residual blocks' convolutions included: they pass their input through
        vocoder.conv_pre.weight.copy_(torch.from_numpy(pre_weight))
        vocoder.conv_pre.bias.copy_(torch.from_numpy(pre_bias))
        vocoder.upsampler[0].weight.copy_(torch.from_numpy(up_weight))
        vocoder.conv_post.weight.copy_(torch.from_numpy(post_weight))
    return vocoder
