"""Onsets and pitch of sound events, and how well generated onsets match the true ones.

These are the measurements of synchronisation: an onset detector on an energy envelope (the waveform's short-time
energy, or a log-mel spectrogram's frame energy), F1 of detected against true onsets within a tolerance (40 ms by
default: one AudioLDM latent frame), the mean offset of the matched pairs, and the dominant frequency of an event
(from the waveform's spectrum, or from the strongest mel bin). The mel versions measure what a V2A model's VAE
decodes, before any vocoder.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OnsetMatch:
    precision: float
    recall: float
    f1: float
    mean_absolute_offset: float  # seconds, over matched pairs (nan if none)
    matched: tuple[tuple[float, float], ...]  # (true, detected) pairs


def onsets_from_envelope(
    envelope: np.ndarray, frame_duration: float, threshold: float = 0.1, min_gap: float = 0.1, floor: float = 0.0
) -> list[float]:
    """Times (seconds) of the frames where a non-negative energy `envelope` rises through `threshold` x its maximum,
    at least `min_gap` apart. The level is relative, so a quiet but clean generation counts as much as a loud one;
    only energy at or above `floor` counts at all, so that a clip of background noise alone has no onset."""
    envelope = np.asarray(envelope, dtype=np.float64).reshape(-1)
    if envelope.size == 0 or envelope.max() <= 0 or envelope.max() < floor:
        return []
    above = envelope >= max(threshold * envelope.max(), floor)
    rising = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    if above[0]:
        rising = np.concatenate([[0], rising])
    onsets: list[float] = []
    for frame in rising:
        time = float(frame * frame_duration)
        if not onsets or time - onsets[-1] >= min_gap:
            onsets.append(time)
    return onsets


def detect_onsets(
    waveform: np.ndarray,
    sample_rate: int,
    hop: float = 0.005,
    threshold: float = 0.1,
    min_gap: float = 0.1,
    floor_db: float | None = None,
) -> list[float]:
    """Onsets (seconds) of a waveform, from its short-time energy over windows of `hop` seconds. With `floor_db`,
    windows quieter than that RMS level (dB of full scale, 0 dB for samples of magnitude 1) are silence."""
    waveform = np.asarray(waveform, dtype=np.float64).reshape(-1)
    if waveform.size == 0 or not np.isfinite(waveform).all():
        raise ValueError("`waveform` must be a non-empty array of finite samples.")
    hop_samples = max(1, round(hop * sample_rate))
    frames = len(waveform) // hop_samples
    energy = np.square(waveform[: frames * hop_samples].reshape(frames, hop_samples)).mean(axis=1)
    floor = 0.0 if floor_db is None else 10.0 ** (floor_db / 10.0)  # mean square of that RMS level
    return onsets_from_envelope(energy, hop_samples / sample_rate, threshold, min_gap, floor)


def _check_log_mel(log_mel: np.ndarray) -> np.ndarray:
    log_mel = np.asarray(log_mel, dtype=np.float64)
    if log_mel.ndim != 2 or log_mel.size == 0 or not np.isfinite(log_mel).all():
        raise ValueError(
            f"`log_mel` must be a finite [frames, mel_bins] array (natural log), got shape {log_mel.shape}."
        )
    return log_mel


def detect_mel_onsets(
    log_mel: np.ndarray, frame_rate: float = 100.0, threshold: float = 0.1, min_gap: float = 0.1
) -> list[float]:
    """Onsets (seconds) of a log-mel spectrogram `[frames, mel_bins]` (natural log, `frame_rate` frames per second:
    100 for AudioLDM's 160-sample hop at 16 kHz), from the energy of each frame summed over the bins."""
    return onsets_from_envelope(np.exp(_check_log_mel(log_mel)).sum(axis=1), 1.0 / frame_rate, threshold, min_gap)


def match_onsets(reference: list[float], detected: list[float], tolerance: float = 0.04) -> OnsetMatch:
    """Greedy one-to-one matching, closest pairs first, of detected to true onsets within `tolerance` seconds."""
    pairs = sorted(
        (abs(d - r), i, j) for i, r in enumerate(reference) for j, d in enumerate(detected) if abs(d - r) <= tolerance
    )
    used_reference, used_detected, matched = set(), set(), []
    for _, i, j in pairs:
        if i not in used_reference and j not in used_detected:
            used_reference.add(i)
            used_detected.add(j)
            matched.append((reference[i], detected[j]))
    precision = len(matched) / len(detected) if detected else 0.0
    recall = len(matched) / len(reference) if reference else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    offset = float(np.mean([abs(d - r) for r, d in matched])) if matched else float("nan")
    return OnsetMatch(precision, recall, f1, offset, tuple(sorted(matched)))


@dataclass(frozen=True)
class PooledMatch:
    """Onset matching of several clips counted together: every true and every detected onset counts once."""

    precision: float
    recall: float
    f1: float
    mean_absolute_offset: float  # seconds, over matched pairs (nan if none)
    mean_signed_offset: float  # detected minus true, over matched pairs (nan if none)


def pooled_match(
    reference: Sequence[Sequence[float]], detected: Sequence[Sequence[float]], tolerance: float = 0.04
) -> PooledMatch:
    """`match_onsets` of every clip (true onsets `reference[i]`, detected `detected[i]`), counted together."""
    matches = [match_onsets(list(r), list(d), tolerance) for r, d in zip(reference, detected, strict=True)]
    matched = sum(len(m.matched) for m in matches)
    num_detected, num_reference = sum(len(d) for d in detected), sum(len(r) for r in reference)
    precision = matched / num_detected if num_detected else 0.0
    recall = matched / num_reference if num_reference else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    offsets = [d - r for m in matches for r, d in m.matched]
    if not offsets:
        return PooledMatch(precision, recall, f1, float("nan"), float("nan"))
    return PooledMatch(precision, recall, f1, float(np.mean(np.abs(offsets))), float(np.mean(offsets)))


def dominant_frequency(waveform: np.ndarray, sample_rate: int, start: float = 0.0, end: float | None = None) -> float:
    """The strongest frequency (Hz) of `waveform[start:end]` (seconds), from a Hann-windowed spectrum."""
    waveform = np.asarray(waveform, dtype=np.float64).reshape(-1)
    segment = waveform[round(start * sample_rate) : None if end is None else round(end * sample_rate)]
    if segment.size < 16:
        raise ValueError(f"the segment [{start}, {end}] s holds {segment.size} samples; at least 16 are needed.")
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(segment.size)))
    spectrum[0] = 0.0
    return float(np.fft.rfftfreq(segment.size, d=1.0 / sample_rate)[int(spectrum.argmax())])


def mel_bin_frequencies(mel_filters: np.ndarray, sample_rate: int) -> np.ndarray:
    """The frequency (Hz) each mel bin responds to most, from a filter bank `[frequency_bins, mel_bins]` over the
    `0 .. sample_rate / 2` spectrum (e.g. `AudioLDMMelFeatureExtractor.mel_filters`)."""
    mel_filters = np.asarray(mel_filters)
    if mel_filters.ndim != 2:
        raise ValueError(f"`mel_filters` must be [frequency_bins, mel_bins], got shape {mel_filters.shape}.")
    nyquist_bins = mel_filters.shape[0] - 1
    return mel_filters.argmax(axis=0) * (sample_rate / 2) / nyquist_bins


def dominant_mel_frequency(
    log_mel: np.ndarray,
    bin_frequencies: np.ndarray,
    frame_rate: float = 100.0,
    start: float = 0.0,
    end: float | None = None,
) -> float:
    """The frequency (Hz, `mel_bin_frequencies`) of the mel bin with the most energy in frames `[start, end)`
    (seconds) of a log-mel spectrogram `[frames, mel_bins]`."""
    log_mel = _check_log_mel(log_mel)
    if len(bin_frequencies) != log_mel.shape[1]:
        raise ValueError(
            f"`bin_frequencies` has {len(bin_frequencies)} entries for a spectrogram of {log_mel.shape[1]} bins."
        )
    segment = log_mel[round(start * frame_rate) : None if end is None else round(end * frame_rate)]
    if segment.shape[0] == 0:
        raise ValueError(f"the segment [{start}, {end}] s holds no frame of the spectrogram.")
    return float(bin_frequencies[int(np.exp(segment).sum(axis=0).argmax())])


def nearest_colour(frequency: float, tones: dict[str, float]) -> str:
    """The name whose tone is closest to `frequency` on a log scale (pitch distance)."""
    return min(tones, key=lambda name: abs(np.log2(frequency / tones[name])))
