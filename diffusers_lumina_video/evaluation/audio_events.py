"""Onsets and pitch of sound events, and how well generated onsets match the true ones.

These are the measurements of synchronisation: an onset detector on the waveform's short-time energy, F1 of detected
against true onsets within a tolerance (40 ms by default: one AudioLDM latent frame), the mean offset of the matched
pairs, and the dominant frequency of an event.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OnsetMatch:
    precision: float
    recall: float
    f1: float
    mean_absolute_offset: float  # seconds, over matched pairs (nan if none)
    matched: tuple[tuple[float, float], ...]  # (true, detected) pairs


def _frame_energy(waveform: np.ndarray, sample_rate: int, hop: float) -> tuple[np.ndarray, int]:
    hop_samples = max(1, round(hop * sample_rate))
    frames = len(waveform) // hop_samples
    energy = np.square(waveform[: frames * hop_samples].reshape(frames, hop_samples)).mean(axis=1)
    return energy, hop_samples


def detect_onsets(
    waveform: np.ndarray, sample_rate: int, hop: float = 0.005, threshold: float = 0.1, min_gap: float = 0.1
) -> list[float]:
    """Times (seconds) where the short-time energy rises through `threshold` x its maximum, at least `min_gap`
    apart. The level is relative, so a quiet but clean generation counts as much as a loud one."""
    waveform = np.asarray(waveform, dtype=np.float64).reshape(-1)
    if waveform.size == 0 or not np.isfinite(waveform).all():
        raise ValueError("`waveform` must be a non-empty array of finite samples.")
    energy, hop_samples = _frame_energy(waveform, sample_rate, hop)
    if energy.size == 0 or energy.max() <= 0:
        return []
    above = energy >= threshold * energy.max()
    rising = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    if above[0]:
        rising = np.concatenate([[0], rising])
    onsets: list[float] = []
    for frame in rising:
        time = frame * hop_samples / sample_rate
        if not onsets or time - onsets[-1] >= min_gap:
            onsets.append(time)
    return onsets


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


def dominant_frequency(waveform: np.ndarray, sample_rate: int, start: float = 0.0, end: float | None = None) -> float:
    """The strongest frequency (Hz) of `waveform[start:end]` (seconds), from a Hann-windowed spectrum."""
    waveform = np.asarray(waveform, dtype=np.float64).reshape(-1)
    segment = waveform[round(start * sample_rate) : None if end is None else round(end * sample_rate)]
    if segment.size < 16:
        raise ValueError(f"the segment [{start}, {end}] s holds {segment.size} samples; at least 16 are needed.")
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(segment.size)))
    spectrum[0] = 0.0
    return float(np.fft.rfftfreq(segment.size, d=1.0 / sample_rate)[int(spectrum.argmax())])


def nearest_colour(frequency: float, tones: dict[str, float]) -> str:
    """The name whose tone is closest to `frequency` on a log scale (pitch distance)."""
    return min(tones, key=lambda name: abs(np.log2(frequency / tones[name])))
