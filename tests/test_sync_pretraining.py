import numpy as np
import pytest
import torch

from diffusers_lumina_video.models import SynchformerEncoder
from diffusers_lumina_video.showcase.sync_pretraining import (
    onset_hit_rate,
    onset_labels,
    pretrain_sync_encoder,
    sync_pixel_values,
    tubelet_seconds,
)
from diffusers_lumina_video.showcase.tiny_v2a_sources import TINY_SYNCHFORMER_SETTINGS
from diffusers_lumina_video.utils.media_io import VideoFrames


FPS = 8


def flash_video(flash_frame: int | None, num_frames: int = 8) -> VideoFrames:
    """A grey clip of 1 s at 8 fps, white at `flash_frame`."""
    frames = np.full((num_frames, 32, 32, 3), 60, dtype=np.uint8)
    if flash_frame is not None:
        frames[flash_frame] = 255
    return VideoFrames(frames=frames, timestamps=np.arange(num_frames) / FPS, fps=float(FPS))


def test_onset_labels_mark_the_tubelet_that_holds_each_onset():
    labels = onset_labels([(0.0, 0.17), (), (5.0,)], num_tubelets=4, tubelet_seconds=0.08)
    assert labels.tolist() == [[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_the_stand_in_learns_when_a_flash_happens_and_says_how_well():
    torch.manual_seed(0)
    encoder = SynchformerEncoder(**TINY_SYNCHFORMER_SETTINGS)
    assert tubelet_seconds(encoder) == pytest.approx(0.08)
    flashes = [None, 1, 2, 3, 4] * 3  # one 16-frame segment at 25 fps: 0.64 s
    videos = [flash_video(frame) for frame in flashes]
    onsets = [() if frame is None else (frame / FPS,) for frame in flashes]
    pixel_values = sync_pixel_values(encoder, videos, 1.0)
    assert pixel_values.shape == (15, 1, 16, 3, 32, 32)
    training = pretrain_sync_encoder(encoder, pixel_values, onsets, num_steps=60, batch_size=5, learning_rate=1e-2)
    assert len(training.losses) == 60 and not encoder.training
    assert np.mean(training.losses[-10:]) < 0.5 * np.mean(training.losses[:10])
    assert onset_hit_rate(encoder, training.head, pixel_values, onsets) >= 0.8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"onsets": [(0.1,)]}, "`onsets` must hold one entry per clip"),
        ({"onsets": [(), ()]}, "`onsets` holds no onset inside the clips"),
        ({"num_steps": 0}, "`num_steps` must be a positive int"),
        ({"batch_size": True}, "`batch_size` must be a positive int"),
    ],
)
def test_pretraining_refuses_bad_arguments(change, message):
    encoder = SynchformerEncoder(**TINY_SYNCHFORMER_SETTINGS)
    pixel_values = sync_pixel_values(encoder, [flash_video(2), flash_video(None)], 1.0)
    arguments = {"encoder": encoder, "pixel_values": pixel_values, "onsets": [(0.25,), ()], "num_steps": 1, **change}
    with pytest.raises(ValueError, match=message):
        pretrain_sync_encoder(**arguments)
