"""Shape clips with sound: each bounce of a shape off the frame's edge makes a short beep at that moment, its pitch
the shape's colour (the flash clips' four tones, octaves apart) and its timbre the shape (a circle sounds a sine, a
square a band-limited square wave, a triangle a triangle wave). A shape moving one way makes no sound, only the
quiet steady hiss every clip has, so a video-to-audio model must learn *when* from the picture, not only *what* from
the caption.

The clips are what the video model draws: `tiny-shapes` learns from clips of `num_frames` frames whose first frame
the training cache drops with the first latent frame, and generates the frames after it (its `num_frames` setting is
one less), so its frame `j` stands for the clip's frame `j + 1`. A sounding clip's video and sound therefore start at
the rendered clip's frame 1 and last `(num_frames - 1) / fps` seconds (2 s for `CLIP_FORMAT_V2`), and a bounce at
frame `b` of the rendered clip (`RenderedClip.bounces`) sounds at `(b - DROPPED_FRAMES) / fps` seconds: the time at
which a player shows that moment of the written video, and the time `read_bounce_times` reads off its frames.

`pass_through_vae` gives the frames as a video VAE reconstructs them (encode, drop the first latent frame, decode:
`shapes_vae.reconstruct`), so that a V2A model can learn from what it will hear at use. A reconstruction does not keep
the moment of a bounce: a 2x VAE trained on `CLIP_FORMAT_V2` clips showed it about 0.1 s later than the generator
made it (0 to 0.22 s), so a clip through a VAE beeps where its frames bounce (`SoundingClip.with_frames`), as the
sound of a generated video is measured against the bounce read off that video's frames.

`write_sounding_dataset` writes the clips as mp4 (H.264 video, AAC sound) in the VGGSound-style folder the V2A
trainer reads (`video/<id>.mp4` and a `manifest.csv` with `path` and `caption` columns), and keeps each clip's truth in
the manifest (colour, shape, direction, speed, background, seed, and in seconds the bounce moments where the beeps
start and the generator's own):

    from diffusers import AutoencoderKLCogVideoX
    from diffusers_lumina_video.showcase.sounding_shapes import write_sounding_dataset
    from diffusers_lumina_video.showcase.synthetic_shapes import CLIP_FORMAT_V2, split_specs

    training, held_out = split_specs(CLIP_FORMAT_V2.directions)  # held-out colour x shape x motion combinations
    vae = AutoencoderKLCogVideoX.from_pretrained("path/to/the/video/model/vae")  # or none: the clean frames
    write_sounding_dataset("sounding/train", training, clips_per_spec=8, vae=vae)
    write_sounding_dataset("sounding/held-out", held_out, clips_per_spec=2, seed=1)

    lumina-video train-v2a --dataset sounding/train/manifest.csv --clip_duration 2 ...  # the other settings as usual

`read_bounce_times` reads the bounce moments back off frames (a generated video's, say) in the same time;
`write_generated_clips` writes a video model's videos of given captions in the same layout, their bounces read off
their frames, silent (to be sounded by a V2A model measured on them) or with those bounces' beeps (to train on).
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLCogVideoX
from tqdm.auto import tqdm

from ..utils.atomic import atomic_output_file
from ..utils.media_io import export_to_video_with_audio
from .shape_attributes import read_bounce, read_track
from .shapes_vae import reconstruct
from .synthetic_flashes import FLASH_COLOURS, SAMPLE_RATE, read_csv_manifest, tone, tone_track, write_csv_manifest
from .synthetic_shapes import (
    BACKGROUNDS,
    CLIP_FORMAT_V2,
    SHAPE_COLOURS,
    ClipFormat,
    RenderedClip,
    ShapeSpec,
    _check,
    render_shape,
)


# Frames of a rendered clip before the first one the video model draws (its decoder drops the first latent frame).
DROPPED_FRAMES = 1
# Seconds a bounce sounds for.
BOUNCE_SOUND_LENGTH = 0.1
# Standard deviation of the steady hiss under every clip (-54 dB of full scale): loud enough that V2A training does
# not skip a clip without a bounce as silent (`training.av_prepare.SILENCE_PEAK`, a peak of 1e-3), far below a beep
# (about -9 dB) and the silence floor of the onset detector (`evaluation.waveform_sync.SILENCE_DB`, -40 dB).
BACKGROUND_NOISE = 2e-3
# Each colour's tone (Hz): the flash clips' pitches, an octave apart, which a 64-bin mel spectrogram separates.
COLOUR_TONES: dict[str, float] = {name: FLASH_COLOURS[name][1] for name in SHAPE_COLOURS}
# Each shape's timbre: harmonic number -> amplitude relative to the fundamental. Only odd harmonics, none of which
# falls on another colour's tone (those are octaves of one another); above 8 kHz they are left out, so yellow's
# beeps (3520 Hz) are sines whatever the shape.
SHAPE_TIMBRES: dict[str, dict[int, float]] = {
    "circle": {1: 1.0},
    "square": {1: 1.0, 3: 1 / 3, 5: 1 / 5},
    "triangle": {1: 1.0, 3: -1 / 9, 5: 1 / 25},
}
MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = (
    "id",
    "path",
    "caption",
    "colour",
    "shape",
    "direction",
    "speed",
    "background",
    "bounce_times",
    "true_bounce_times",
    "seed",
)


@dataclass(frozen=True)
class SoundingClip:
    """A rendered clip (all its frames and its true path), the frames written (those the video model draws, or their
    VAE reconstruction) and their sound."""

    spec: ShapeSpec
    seed: int
    rendered: RenderedClip
    frames: np.ndarray  # [T - DROPPED_FRAMES, H, W, 3] uint8
    audio: np.ndarray  # mono float32 at `sample_rate`, as long as `frames`
    fps: float
    sample_rate: int
    timbre: bool
    bounce_times: tuple[float, ...]  # seconds from the first of `frames` at which a beep starts

    @property
    def true_bounce_times(self) -> tuple[float, ...]:
        """The generator's bounce moments (`RenderedClip.bounces`) in seconds from the first of `frames`."""
        return _seconds(self.rendered.bounces, self.fps)

    def with_frames(self, frames: np.ndarray) -> "SoundingClip":
        """This clip with other `frames` (its reconstruction by a VAE, say), whose beeps start at the bounce those
        frames show (`read_bounce_times`), or at the generator's moments where none can be read off them."""
        if np.shape(frames) != self.frames.shape:
            raise ValueError(f"`frames` must have the clip's shape {self.frames.shape}, got {np.shape(frames)}.")
        seen = read_bounce_times(frames, self.fps) if self.rendered.bounces else ()
        times = seen or self.true_bounce_times
        audio = beep_track(self.spec, times, len(frames) / self.fps, self.sample_rate, self.timbre, self.seed)
        return replace(self, frames=np.asarray(frames), audio=audio, bounce_times=times)


def _seconds(frames: Sequence[float], fps: float) -> tuple[float, ...]:
    """Moments in frames of a rendered clip as seconds from the first frame the video model draws."""
    return tuple((frame - DROPPED_FRAMES) / fps for frame in frames)


def beep_track(
    spec: ShapeSpec, times: Sequence[float], duration: float, sample_rate: int, timbre: bool, seed: int
) -> np.ndarray:
    """`duration` seconds of the sound of `spec`'s shape bouncing at `times` (a beep of its colour's pitch and its
    shape's timbre, or a sine without `timbre`, at each), over a steady hiss drawn from `seed`."""
    partials = SHAPE_TIMBRES[spec.shape] if timbre else None
    beep = tone(COLOUR_TONES[spec.colour], BOUNCE_SOUND_LENGTH, sample_rate, partials)
    rng = np.random.default_rng([seed, 2])
    return tone_track(round(duration * sample_rate), times, beep, sample_rate, rng, BACKGROUND_NOISE)


def render_sounding_clip(
    spec: ShapeSpec,
    seed: int = 0,
    background: str = "plain",
    speed_jitter: float = 0.0,
    clip_format: ClipFormat = CLIP_FORMAT_V2,
    timbre: bool = True,
    sample_rate: int = SAMPLE_RATE,
) -> SoundingClip:
    """The clip `render_shape` draws for these arguments, less its first frame, with a beep (of the shape's timbre,
    or a sine without `timbre`) at each of the generator's bounces, over a quiet steady hiss drawn from `seed`."""
    rendered = render_shape(spec, seed, background=background, speed_jitter=speed_jitter, clip_format=clip_format)
    frames, fps = rendered.frames[DROPPED_FRAMES:], float(clip_format.fps)
    times = _seconds(rendered.bounces, fps)
    audio = beep_track(spec, times, len(frames) / fps, sample_rate, timbre, seed)
    return SoundingClip(spec, seed, rendered, frames, audio, fps, sample_rate, timbre, times)


def _check_vae_frames(vae: AutoencoderKLCogVideoX, num_frames: int) -> None:
    """Refuses a VAE of another class, or one that cannot give back `num_frames - 1` frames."""
    if not isinstance(vae, AutoencoderKLCogVideoX):
        raise TypeError(f"`vae` must be an AutoencoderKLCogVideoX, got {type(vae).__name__}.")
    ratio = vae.config.temporal_compression_ratio
    if num_frames < 1 + 2 * ratio or (num_frames - 1) % (2 * ratio):
        # The decoder takes latent frames two at a time: an odd count decodes into fewer frames than it encodes.
        raise ValueError(
            f"clips must have 1 + a multiple of {2 * ratio} frames for a VAE of {ratio}x temporal compression (an "
            f"even count of latent frames after the first), got {num_frames}."
        )


@torch.no_grad()
def pass_through_vae(
    vae: AutoencoderKLCogVideoX, clips: Sequence[np.ndarray], batch_size: int = 8
) -> list[np.ndarray]:
    """Frames 1.. of each of `clips` (`[T, H, W, 3]` uint8, all of one shape) as `vae` reconstructs them (posterior
    mode, first latent frame dropped, as the video model's frames are decoded), uint8 `[T - 1, H, W, 3]` each, so
    with the same frames as a `SoundingClip`'s `frames`. Runs on the VAE's device and in its dtype."""
    if not clips:
        raise ValueError("`clips` is empty; pass at least one clip of frames [T, H, W, 3].")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
    shapes = {np.shape(clip) for clip in clips}
    shape = next(iter(shapes))
    if len(shapes) > 1 or len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"`clips` must all be [T, H, W, 3] of one shape, got {sorted(shapes)}.")
    dtypes = {np.asarray(clip).dtype for clip in clips}
    if dtypes != {np.dtype(np.uint8)}:
        raise ValueError(f"`clips` must be uint8 frames, got {sorted(str(dtype) for dtype in dtypes)}.")
    _check_vae_frames(vae, shape[0])
    parameter = next(vae.parameters())
    frames = []
    for start in range(0, len(clips), batch_size):
        batch = torch.from_numpy(np.stack(clips[start : start + batch_size])).permute(0, 4, 1, 2, 3)
        decoded = reconstruct(vae, (batch.float() / 127.5 - 1.0).to(parameter.device, parameter.dtype))
        pixels = ((decoded.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
        frames.extend(pixels.permute(0, 2, 3, 4, 1).cpu().numpy())
    return frames


def read_bounce_times(frames: np.ndarray, fps: float) -> tuple[float, ...]:
    """The moment (seconds from the first of `frames [T, H, W, 3]`, shown at `fps`) at which the shape reverses
    (`read_bounce` on `read_track`: where lines fitted to either side of the reversal meet), or () if it does not.
    Given a generated video, or a `SoundingClip`'s `frames`, the moment is in the time of its sound."""
    if not fps > 0:
        raise ValueError(f"`fps` must be > 0, got {fps}.")
    bounce = read_bounce(read_track(frames))
    return () if bounce is None else (bounce / fps,)


@dataclass(frozen=True)
class SoundingClipRecord:
    """One row of a written sounding dataset: the clip's file and its truth."""

    clip_id: str
    path: Path
    caption: str
    spec: ShapeSpec
    background: str
    bounce_times: tuple[float, ...]  # seconds in the written video at which a beep starts
    true_bounce_times: tuple[float, ...]  # the generator's bounce moments, in the same time
    seed: int


def write_sounding_dataset(
    folder: str | os.PathLike,
    specs: Sequence[ShapeSpec],
    clips_per_spec: int,
    seed: int = 0,
    speed_jitter: float = 0.25,
    speedless_captions: float = 0.25,
    clip_format: ClipFormat = CLIP_FORMAT_V2,
    timbre: bool = True,
    vae: AutoencoderKLCogVideoX | None = None,
    batch_size: int = 8,
) -> Path:
    """Writes `clips_per_spec` sounding clips of every spec as `video/<id>.mp4` under `folder` with `manifest.csv`
    (columns `MANIFEST_COLUMNS`); returns the manifest. As the shape datasets: every clip has its own seed (from
    `seed`), backgrounds alternate between plain and gradient, a share `speedless_captions` of the captions leaves
    the speed word out. With `vae`, the frames written are those `pass_through_vae` gives (`batch_size` clips at a
    time) and the beeps start where those frames bounce (`SoundingClip.with_frames`). Clips already written are
    kept, so an interrupted run resumes (their frames are computed again for the manifest, not written); the manifest
    is written last."""
    if not specs:
        raise ValueError("`specs` must hold at least one `ShapeSpec`.")
    if isinstance(clips_per_spec, bool) or not isinstance(clips_per_spec, int) or clips_per_spec < 1:
        raise ValueError(f"`clips_per_spec` must be a positive int, got {clips_per_spec!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
    if not 0.0 <= speedless_captions <= 1.0:
        raise ValueError(f"`speedless_captions` must be in [0, 1], got {speedless_captions}.")
    for spec in specs:  # every setting is checked before anything is rendered
        _check(spec, clip_format.size, clip_format.num_frames, BACKGROUNDS[0], speed_jitter, clip_format)
    if vae is not None:
        _check_vae_frames(vae, clip_format.num_frames)
    folder = Path(folder)
    (folder / "video").mkdir(parents=True, exist_ok=True)
    jobs = [(spec, copy) for spec in specs for copy in range(clips_per_spec)]
    jobs = [(spec, copy, seed * 1_000_003 + index) for index, (spec, copy) in enumerate(jobs)]
    rows = []
    progress = tqdm(total=len(jobs), desc="Writing sounding clips", unit="clip")
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start : start + batch_size]
        clips = [
            render_sounding_clip(spec, clip_seed, BACKGROUNDS[copy % 2], speed_jitter, clip_format, timbre)
            for spec, copy, clip_seed in batch
        ]
        if vae is not None:
            reconstructions = pass_through_vae(vae, [clip.rendered.frames for clip in clips], batch_size)
            clips = [clip.with_frames(frames) for clip, frames in zip(clips, reconstructions, strict=True)]
        for index, ((spec, copy, clip_seed), clip) in enumerate(zip(batch, clips, strict=True), start=start):
            path = folder / "video" / f"shape_{index:05d}.mp4"
            if not path.is_file():
                export_to_video_with_audio(clip.frames, clip.audio, clip.sample_rate, path, fps=clip.fps)
            speedless = np.random.default_rng([clip_seed, 1]).random() < speedless_captions
            caption = spec.caption_without_speed if speedless else spec.caption
            truth = (spec.colour, spec.shape, spec.direction, spec.speed, BACKGROUNDS[copy % 2])
            times = (times_text(clip.bounce_times), times_text(clip.true_bounce_times), clip_seed)
            rows.append((path.stem, path.relative_to(folder).as_posix(), caption, *truth, *times))
        progress.update(len(batch))
    progress.close()
    return write_csv_manifest(folder / MANIFEST_NAME, MANIFEST_COLUMNS, rows)


@torch.no_grad()
def write_generated_clips(
    video_pipeline,
    specs: Sequence[ShapeSpec],
    clips_per_spec: int,
    folder: str | os.PathLike,
    seed: int = 0,
    sound: bool = False,
    manifest_name: str = MANIFEST_NAME,
    batch_size: int = 8,
) -> Path:
    """Generates `clips_per_spec` videos of each spec's caption with `video_pipeline` (its own settings; clip `i`
    with seed `seed + i`; `batch_size` at a time), writes them as `video/<id>.mp4` under `folder` with a
    sounding-dataset manifest whose bounce moments are read off the generated frames (`read_bounce_times`); returns
    the manifest. With `sound`, each mp4 carries the sound of those bounces (`beep_track`), so that a V2A model can
    learn from videos as the video model draws them; without, the videos are silent, to be sounded by the model
    measured. The manifest is `folder/manifest_name`."""
    from diffusers.utils import export_to_video

    from ..pipelines.lumina_video.presets import preset_fps
    from .shapes_benchmark import generate_clips

    config = video_pipeline.config
    default = config.default_sampling_preset
    fps = float(preset_fps(default, config.sampling_presets, default))
    folder = Path(folder)
    (folder / "video").mkdir(parents=True, exist_ok=True)
    jobs = [(spec, seed + index) for index, spec in enumerate(s for s in specs for _ in range(clips_per_spec))]
    rows = []
    for start in tqdm(range(0, len(jobs), batch_size), desc="Generating videos", unit="batch"):
        chunk = jobs[start : start + batch_size]
        clips = generate_clips(video_pipeline, [spec for spec, _ in chunk], [s for _, s in chunk], batch_size)
        for index, ((spec, clip_seed), video) in enumerate(zip(chunk, clips, strict=True), start):
            frames = (np.asarray(video) * 255).round().astype(np.uint8)
            times = read_bounce_times(frames, fps)
            path = folder / "video" / f"generated_{index:05d}.mp4"
            if sound:
                audio = beep_track(spec, times, len(frames) / fps, SAMPLE_RATE, True, clip_seed)
                export_to_video_with_audio(frames, audio, SAMPLE_RATE, path, fps=fps)
            else:
                with atomic_output_file(path) as temporary:  # Diffusers' writer takes frames in [0, 1]
                    export_to_video(list(video), str(temporary), fps=fps)
            truth = (spec.colour, spec.shape, spec.direction, spec.speed, "generated")
            rows.append(
                (
                    path.stem,
                    path.relative_to(folder).as_posix(),
                    spec.caption,
                    *truth,
                    times_text(times),
                    "",
                    clip_seed,
                )
            )
    return write_csv_manifest(folder / manifest_name, MANIFEST_COLUMNS, rows)


def times_text(times: Sequence[float]) -> str:
    """Moments in seconds as a manifest cell holds them (`read_sounding_manifest` reads them back)."""
    return " ".join(f"{time:.4f}" for time in times)


def read_sounding_rows(manifest: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a sounding dataset's manifest as written (`MANIFEST_COLUMNS`), paths relative to its folder."""
    return read_csv_manifest(manifest, MANIFEST_COLUMNS, "sounding shapes")


def read_sounding_manifest(manifest: str | os.PathLike) -> list[SoundingClipRecord]:
    """The clips of a manifest written by `write_sounding_dataset`, paths resolved against its folder."""
    manifest = Path(manifest)
    return [
        SoundingClipRecord(
            clip_id=row["id"],
            path=manifest.parent / row["path"],
            caption=row["caption"],
            spec=ShapeSpec(row["colour"], row["shape"], row["direction"], row["speed"]),
            background=row["background"],
            bounce_times=tuple(float(time) for time in row["bounce_times"].split()),
            true_bounce_times=tuple(float(time) for time in row["true_bounce_times"].split()),
            seed=int(row["seed"]),
        )
        for row in read_sounding_rows(manifest)
    ]
