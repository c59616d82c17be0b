"""Audio-visual test data: flash clips with sound written as mp4, the bad files a real crawl holds, and a saved tiny
random V2A pipeline."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from diffusers_lumina_video.showcase.builtin_models import tiny_random_v2a_pipeline
from diffusers_lumina_video.showcase.synthetic_flashes import generate_flash_clip
from diffusers_lumina_video.utils.media_io import export_to_video_with_audio


CLIP_DURATION = 1.0


def save_tiny_v2a_pipeline(folder: Path) -> Path:
    tiny_random_v2a_pipeline(seed=0).save_pretrained(folder)
    return folder


def write_av_clip(path: Path, seed: int, duration: float = CLIP_DURATION, caption: bool = True) -> Path:
    """A 32 px flash clip with its beeps (and its caption in a same-name .txt file)."""
    clip = generate_flash_clip(seed, duration=duration, size=32, num_flashes=round(2 * duration), min_gap=0.12)
    export_to_video_with_audio(clip.frames, clip.audio, clip.sample_rate, path, clip.fps)
    if caption:
        path.with_suffix(".txt").write_text(clip.caption)
    return path


def write_silent_clip(path: Path) -> Path:
    clip = generate_flash_clip(0, duration=CLIP_DURATION, size=32, num_flashes=1)
    return Path(export_to_video_with_audio(clip.frames, np.zeros_like(clip.audio), clip.sample_rate, path, clip.fps))


def write_clip_with_audio_rate(path: Path, sample_rate: int, with_audio: bool = True) -> Path:
    """A 1 s clip (MPEG-4 video, PCM audio at `sample_rate`, or no audio stream) in a container that takes any rate."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=Fraction(25))
        video.width = video.height = 32
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=sample_rate, layout="mono") if with_audio else None
        for index in range(25):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), index * 8, dtype=np.uint8), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is not None:
            tone = (0.3 * np.sin(np.arange(sample_rate) * 0.2) * 32767).astype(np.int16)
            sound = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
            sound.sample_rate, sound.pts = sample_rate, 0
            container.mux(audio.encode(sound))
            container.mux(audio.encode(None))
    return path


def write_bad_clips(folder: Path) -> dict[str, str]:
    """One file of each kind that gives no clip, named after its fault; returns {name: words its reason holds}."""
    write_clip_with_audio_rate(folder / "no_audio.mkv", 16000, with_audio=False)
    write_silent_clip(folder / "silent.mp4")
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    (folder / "empty.mp4").write_bytes(b"")
    write_clip_with_audio_rate(folder / "low_rate.mkv", 1000)
    write_av_clip(folder / "too_short.mp4", seed=5, duration=0.5, caption=False)
    return {
        "no_audio": "no audio stream",
        "silent": "silent audio track",
        "corrupt": "corrupt or unreadable",
        "empty": "corrupt or unreadable",
        "low_rate": "unsupported sample rate 1000 Hz",
        "too_short": "too short: 0.48 s, clips are 1 s",
    }
