"""The picture of a sounding video: frames over the spectrogram, the bounce and the heard onsets marked."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from diffusers_lumina_video.showcase.sound_strip import draw_sound_strip, main, spectrogram
from diffusers_lumina_video.showcase.sounding_shapes import render_sounding_clip
from diffusers_lumina_video.showcase.synthetic_shapes import BOUNCING, ShapeSpec
from diffusers_lumina_video.utils.media_io import export_to_video_with_audio


def test_spectrogram_puts_a_tone_in_its_bin_at_its_time():
    sample_rate = 16000
    audio = np.zeros(sample_rate, dtype=np.float32)
    audio[8000:9600] = np.sin(2 * np.pi * 1000 * np.arange(1600) / sample_rate)
    power, times, frequencies = spectrogram(audio, sample_rate)
    loudest_bin, loudest_frame = np.unravel_index(power.argmax(), power.shape)
    assert abs(frequencies[loudest_bin] - 1000) <= sample_rate / 512
    assert 0.5 <= times[loudest_frame] <= 0.6
    with pytest.raises(ValueError, match="`audio` must hold at least 512 samples"):
        spectrogram(audio[:100], sample_rate)


def test_the_command_marks_the_bounce_and_the_beep_of_a_sounding_clip(tmp_path, capsys):
    clip = render_sounding_clip(ShapeSpec("red", "circle", BOUNCING, "quickly"), seed=3)
    video = tmp_path / "clip.mp4"
    export_to_video_with_audio(clip.frames, clip.audio, clip.sample_rate, video, fps=clip.fps)
    assert main([str(video), "--output", str(tmp_path / "clip.png")]) == 0
    printed = capsys.readouterr().out
    bounces, onsets = (json.loads(found) for found in re.findall(r"(\[[^\]]*\]) s", printed))
    (truth,) = clip.bounce_times
    assert len(bounces) == 1 and abs(bounces[0] - truth) <= 0.08, (truth, printed)
    assert len(onsets) == 1 and abs(onsets[0] - truth) <= 0.04, (truth, printed)  # the beep starts at the bounce
    with Image.open(tmp_path / "clip.png") as image:
        assert image.format == "PNG" and image.width > image.height
    with pytest.raises(ValueError, match="`--output` must end in .png"):
        main([str(video), "--output", str(tmp_path / "clip.jpg")])


def test_draw_writes_beside_the_target_and_leaves_no_partial_file(tmp_path):
    frames = np.zeros((4, 16, 16, 3), dtype=np.uint8)
    path = draw_sound_strip(frames, 8.0, np.zeros(8000, dtype=np.float32), 16000, [0.2], [0.21], tmp_path / "a.png")
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"] and path == tmp_path / "a.png"
