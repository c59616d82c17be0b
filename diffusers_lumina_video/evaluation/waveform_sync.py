"""Does a written video's sound follow its picture? Measured on the waveform a player plays, not on a spectrogram.

The sound of an mp4 is read back (`hear_video`), its onsets detected from the short-time energy (relative to the
clip's loudest moment, above an absolute silence floor so that a quiet background has none), and each onset named by
the tone nearest to its dominant frequency. `score_sound` pools clips: onset F1 against the true event times within
a tolerance (60 ms by default), the share of detected onsets whose tone is the clip's, and onsets per clip among the
clips that should be silent. `onsets_moved_by` says how far the onsets of a delayed video's sound moved.

    from diffusers_lumina_video.evaluation.waveform_sync import hear_video, score_sound
    from diffusers_lumina_video.showcase.sounding_shapes import COLOUR_TONES, read_sounding_manifest

    records = read_sounding_manifest("sounding/manifest.csv")
    heard = [hear_video(record.path, COLOUR_TONES) for record in records]
    score = score_sound([r.bounce_times for r in records], [r.spec.colour for r in records], heard)
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..pipelines.lumina_v2a.audio_codec import SAMPLE_RATE
from ..utils.media_io import read_audio
from .audio_events import detect_onsets, dominant_frequency, nearest_colour, pooled_match


# Largest offset (seconds) of a detected onset from its true event that still counts as a hit.
ONSET_TOLERANCE = 0.06
# RMS level (dB of full scale) below which the sound is silence: a beep at half scale is about -9 dB, the hiss under
# a sounding shape clip -54 dB, the noise floor of a flash clip -80 dB.
SILENCE_DB = -40.0
# Seconds after an onset whose spectrum names its pitch: most of a 0.1 s beep, little of what follows.
PITCH_WINDOW = 0.08


@dataclass(frozen=True)
class HeardSound:
    """The sound events of one clip: when each starts (seconds), its dominant frequency (Hz) and the nearest tone."""

    onsets: tuple[float, ...]
    frequencies: tuple[float, ...]
    names: tuple[str, ...]


@dataclass(frozen=True)
class SoundScore:
    """Clips pooled: every true event and every detected onset counts once."""

    onset_f1: float
    precision: float
    recall: float
    mean_absolute_offset: float  # seconds, over matched pairs (nan if none)
    mean_signed_offset: float  # detected minus true, over matched pairs (nan if none)
    pitch_accuracy: float  # share of the onsets detected in clips with events that name the clip's tone (nan if none)
    onsets_per_silent_clip: float  # mean onsets of the clips without events (nan if there are none)


def hear_waveform(
    waveform: np.ndarray,
    sample_rate: int,
    tones: dict[str, float],
    threshold: float = 0.1,
    floor_db: float = SILENCE_DB,
    min_gap: float = 0.1,
    pitch_window: float = PITCH_WINDOW,
) -> HeardSound:
    """The onsets of mono `waveform` (`detect_onsets` on 5 ms windows: rises through `threshold` x the loudest
    window, at least `min_gap` s apart, windows below `floor_db` silent) and the tone of `tones` (name -> Hz) nearest
    to the dominant frequency of the `pitch_window` seconds after each."""
    if not tones:
        raise ValueError("`tones` is empty; pass each name's tone frequency (Hz).")
    if not pitch_window > 0:
        raise ValueError(f"`pitch_window` must be > 0 seconds, got {pitch_window}.")
    waveform = np.asarray(waveform, dtype=np.float64).reshape(-1)
    onsets = detect_onsets(waveform, sample_rate, threshold=threshold, min_gap=min_gap, floor_db=floor_db)
    duration = len(waveform) / sample_rate
    # An onset in the last few milliseconds has too few samples for a spectrum: it is heard from its 16 last ones.
    frequencies = [
        dominant_frequency(waveform, sample_rate, min(onset, duration - 16 / sample_rate), onset + pitch_window)
        for onset in onsets
    ]
    return HeardSound(
        tuple(onsets), tuple(frequencies), tuple(nearest_colour(frequency, tones) for frequency in frequencies)
    )


def hear_video(
    path: str | os.PathLike, tones: dict[str, float], sample_rate: int = SAMPLE_RATE, **kwargs
) -> HeardSound:
    """`hear_waveform` of the first audio stream of the video (or audio) file `path`, read at `sample_rate`."""
    return hear_waveform(read_audio(path, sample_rate), sample_rate, tones, **kwargs)


def score_sound(
    event_times: Sequence[Sequence[float]],
    names: Sequence[str | None],
    heard: Sequence[HeardSound],
    tolerance: float = ONSET_TOLERANCE,
) -> SoundScore:
    """Onset F1 of `heard[i].onsets` against the true `event_times[i]` (seconds, in the same clip's time) within
    `tolerance`, pitch accuracy against `names[i]` (the tone clip `i` should sound, None for a silent clip), and the
    onsets per clip of the clips without events."""
    if not len(event_times) == len(names) == len(heard) > 0:
        raise ValueError(
            "`event_times`, `names` and `heard` must hold one entry per clip and at least one, got "
            f"{len(event_times)}, {len(names)} and {len(heard)}."
        )
    if not tolerance > 0:
        raise ValueError(f"`tolerance` must be > 0 seconds, got {tolerance}.")
    match = pooled_match(event_times, [clip.onsets for clip in heard], tolerance)
    named = [
        heard_name == name
        for times, name, clip in zip(event_times, names, heard, strict=True)
        if times
        for heard_name in clip.names
    ]
    silent = [len(clip.onsets) for times, clip in zip(event_times, heard, strict=True) if not times]
    return SoundScore(
        onset_f1=match.f1,
        precision=match.precision,
        recall=match.recall,
        mean_absolute_offset=match.mean_absolute_offset,
        mean_signed_offset=match.mean_signed_offset,
        pitch_accuracy=float(np.mean(named)) if named else float("nan"),
        onsets_per_silent_clip=float(np.mean(silent)) if silent else float("nan"),
    )


def onsets_moved_by(
    before: Sequence[Sequence[float]],
    after: Sequence[Sequence[float]],
    shift: float,
    tolerance: float = ONSET_TOLERANCE,
) -> float:
    """How far (seconds) the onsets `after` (per clip) lie from `before` once those are moved by the expected
    `shift`: `shift` plus the mean offset of the pairs matched within `tolerance` (nan if none match). A sound that
    follows a video delayed by `shift` gives `shift`."""
    moved = [[time + shift for time in times] for times in before]
    return shift + pooled_match(moved, after, tolerance).mean_signed_offset
