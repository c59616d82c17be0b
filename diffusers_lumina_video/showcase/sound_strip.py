"""A picture of a sounding video: its frames in a strip over the spectrogram of its sound, on one time axis, with the
bounce read off the frames and the onsets heard in the sound marked on both, so a person sees at a glance whether a
beep falls where the shape turns.

    python -m diffusers_lumina_video.showcase.sound_strip ball.mp4 --output ball.png
"""

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..evaluation.waveform_sync import hear_waveform
from ..utils.atomic import atomic_output_file
from ..utils.media_io import AUDIO_SAMPLE_RATE, read_audio, read_video
from .sounding_shapes import COLOUR_TONES, read_bounce_times
from .stages import run_script


# Window and hop of the spectrogram (samples at 16 kHz): 32 ms windows every 8 ms.
WINDOW, HOP = 512, 128
MAX_FREQUENCY = 4000.0  # the four tones lie below it


def spectrogram(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log power `[bins, frames]` (dB) of a centred, Hann-windowed STFT of `audio`, with each frame's centre (seconds)
    and each bin's frequency (Hz)."""
    if len(audio) < WINDOW:
        raise ValueError(f"`audio` must hold at least {WINDOW} samples, got {len(audio)}.")
    spectrum = torch.stft(
        torch.as_tensor(audio, dtype=torch.float32),
        n_fft=WINDOW,
        hop_length=HOP,
        window=torch.hann_window(WINDOW),
        return_complex=True,
    )
    power = spectrum.abs().square().numpy()
    times = np.arange(power.shape[1]) * HOP / sample_rate
    return 10 * np.log10(power + 1e-10), times, np.fft.rfftfreq(WINDOW, 1 / sample_rate)


def draw_sound_strip(
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray,
    sample_rate: int,
    bounces: Sequence[float],
    onsets: Sequence[float],
    path: str | Path,
    title: str = "",
) -> Path:
    """Writes the PNG `path`: `frames` (`[T, H, W, 3]` uint8, frame `i` drawn over `[i / fps, (i + 1) / fps]`) above
    the spectrogram of `audio`, with the `bounces` (solid) and sound `onsets` (dashed), in seconds, over both."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    duration = len(frames) / fps
    figure = Figure(figsize=(max(6.0, 1.2 * len(frames)), 4.2))
    strip_axis, sound_axis = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    strip_axis.imshow(np.concatenate(list(frames), axis=1), extent=(0, duration, 0, 1), aspect="auto")
    strip_axis.set_yticks([])
    power, times, frequencies = spectrogram(audio, sample_rate)
    shown = frequencies <= MAX_FREQUENCY
    sound_axis.pcolormesh(times, frequencies[shown], power[shown], shading="auto", cmap="magma")
    sound_axis.set_ylabel("Hz")
    sound_axis.set_xlabel("time (s)")
    sound_axis.set_xlim(0, duration)
    for axis in (strip_axis, sound_axis):
        for index, moment in enumerate(bounces):
            axis.axvline(moment, color="white", linewidth=2, label="bounce (frames)" if index == 0 else None)
        for index, moment in enumerate(onsets):
            axis.axvline(
                moment, color="cyan", linestyle="--", linewidth=1.5, label="onset (sound)" if index == 0 else None
            )
    if bounces or onsets:
        sound_axis.legend(loc="upper right", fontsize=8, facecolor="black", labelcolor="white")
    strip_axis.set_title(title or "frames, and the spectrogram of their sound")
    figure.tight_layout()
    with atomic_output_file(Path(path)) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    return Path(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m diffusers_lumina_video.showcase.sound_strip", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("video", type=Path, help="An mp4 with a sound track, such as `generate --with-audio` writes.")
    parser.add_argument("--output", type=Path, required=True, help="The .png to write.")
    parser.add_argument("--title", default="", help="Above the strip (default: a description of the picture).")
    return parser


def run(args: argparse.Namespace) -> Path:
    """Reads the video and its sound, the bounce off its frames and the onsets off its sound, and draws them."""
    if args.output.suffix != ".png":
        raise ValueError(f"`--output` must end in .png, got {args.output}.")
    video = read_video(args.video)
    audio = read_audio(args.video, AUDIO_SAMPLE_RATE)
    heard = hear_waveform(audio, AUDIO_SAMPLE_RATE, COLOUR_TONES)
    bounces = read_bounce_times(video.frames, video.fps)
    path = draw_sound_strip(video.frames, video.fps, audio, AUDIO_SAMPLE_RATE, bounces, heard.onsets, args.output)
    print(f"Wrote {path}: bounces {[round(t, 3) for t in bounces]} s, onsets {[round(t, 3) for t in heard.onsets]} s")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    return run_script(build_parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
