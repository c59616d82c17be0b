"""LoRA training data: manifests, media checks, clip decoding, aspect-ratio buckets, motion scores and the cache."""

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from synthetic_media import moving_frames, texture, write_clip, write_dataset, write_image

from diffusers_lumina_video.training import prepare
from diffusers_lumina_video.training.config import TrainingConfig
from diffusers_lumina_video.training.data import (
    bucket_sizes,
    check_media,
    clip_length,
    frames_to_tensor,
    nearest_bucket,
    read_manifest,
    read_video_clip,
)
from diffusers_lumina_video.training.motion import MOTION_SIZE, flow_motion_score
from diffusers_lumina_video.training.prepare import INDEX_FILE, cache_is_current, prepare_dataset


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"), "jsonl")


# ---------------------------------------------------------------------- manifest
@pytest.mark.parametrize("form", ["csv", "jsonl", "folder"])
def test_manifest_forms_read_the_same_samples(tmp_path, form):
    items = read_manifest(write_dataset(tmp_path, form))
    assert [i.path.name for i in items if not i.is_image] == [f"clip{i}.mp4" for i in range(5)]
    assert sum(i.is_image for i in items) == 2
    captions = {i.path.name: i.caption for i in items}
    assert captions["clip1.mp4"] == "a video of w1 w11" and captions["image0.png"] == "w20 w3"
    if form != "folder":  # folders carry no motion scores
        assert [i.motion_score for i in items][:2] == [4.5, None]


def test_missing_caption_column_is_named_with_the_columns_there(dataset_dir):
    with pytest.raises(
        ValueError, match=r"`caption_column` 'text' is not a column .*\['path', 'caption', 'motion_score'\]"
    ):
        read_manifest(dataset_dir, caption_column="text")


def test_missing_files_are_listed(tmp_path):
    manifest = tmp_path / "data.jsonl"
    manifest.write_text(json.dumps({"path": "nowhere.mp4", "caption": "x"}) + "\n")
    with pytest.raises(FileNotFoundError, match=r"1 file\(s\) listed in .* do not exist: .*nowhere\.mp4"):
        read_manifest(manifest)


def test_folder_without_caption_files_is_refused(tmp_path):
    write_clip(tmp_path / "clip.mp4")
    with pytest.raises(FileNotFoundError, match=r"same-name \.txt .*clip\.mp4"):
        read_manifest(tmp_path)


def test_bad_motion_value_names_row_and_column(tmp_path):
    write_clip(tmp_path / "clip.mp4")
    (tmp_path / "data.jsonl").write_text(json.dumps({"path": "clip.mp4", "caption": "x", "motion_score": "fast"}))
    with pytest.raises(ValueError, match=r"row 1: `motion_score` must be a number or empty, got 'fast'"):
        read_manifest(tmp_path / "data.jsonl")


@pytest.mark.parametrize("content", [b"", b"not a video at all"])
def test_empty_or_broken_video_fails_the_media_check(tmp_path, content):
    (tmp_path / "broken.mp4").write_bytes(content)
    (tmp_path / "broken.txt").write_text("caption")
    expected = "zero-length or broken" + (r" \(empty file" if not content else "")
    with pytest.raises(
        ValueError, match=rf"1 sample\(s\) cannot be trained on:\n  - .*broken.mp4: no decodable frame, {expected}"
    ):
        check_media(read_manifest(tmp_path), num_frames=9)


BAD_SAMPLES = {
    "empty caption": ('{"path": "clip.mp4", "caption": "  "}', "clip.mp4: empty or missing caption"),
    "null caption": ('{"path": "clip.mp4", "caption": null}', "clip.mp4: empty or missing caption"),
    "no caption key": ('{"path": "clip.mp4"}', "clip.mp4: empty or missing caption"),
    "short clip": (
        '{"path": "short.mp4", "caption": "x"}',
        r"short.mp4: has 8 frame\(s\) at its own frame rate; a clip needs at least 9",
    ),
    "short at fps": (
        '{"path": "clip.mp4", "caption": "x", "fps": 2}',
        r"clip.mp4: has 3 frame\(s\) at 2 fps; a clip needs at least 9",
    ),
    "short and uncaptioned": (
        '{"path": "short.mp4", "caption": ""}',
        "short.mp4: empty or missing caption; has 8 frame",
    ),
    "broken image": (
        '{"path": "broken.png", "caption": "x"}',
        r"broken.png: no decodable frame, zero-length or broken \(empty file\)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SAMPLES))
def test_unusable_samples_are_named_with_their_fault_before_any_model(tmp_path, case):
    row, message = BAD_SAMPLES[case]
    write_clip(tmp_path / "clip.mp4", num_frames=12, fps=8)
    write_clip(tmp_path / "short.mp4", num_frames=8, fps=8)
    (tmp_path / "broken.png").write_bytes(b"")
    write_image(tmp_path / "fine.png")
    values = json.loads(row)
    fps = values.pop("fps", None)
    (tmp_path / "data.jsonl").write_text(
        json.dumps({"path": "fine.png", "caption": "fine"}) + "\n" + json.dumps(values)
    )
    with pytest.raises(ValueError, match=rf"^1 sample\(s\) cannot be trained on:\n  - .*{message}"):
        check_media(read_manifest(tmp_path / "data.jsonl"), num_frames=17, fps=fps)


def test_every_unusable_sample_is_listed_at_once(tmp_path):
    write_clip(tmp_path / "a.mp4", num_frames=4)
    write_clip(tmp_path / "b.mp4", num_frames=9)
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("")
    with pytest.raises(
        ValueError, match=r"2 sample\(s\).*\n  - .*a.mp4: has 4 frame.*\n  - .*b.mp4: empty or missing caption$"
    ):
        check_media(read_manifest(tmp_path), num_frames=33)


def test_clips_shorter_than_num_frames_but_long_enough_for_one_clip_pass(tmp_path):
    write_clip(tmp_path / "a.mp4", num_frames=12)
    (tmp_path / "a.txt").write_text("a")
    check_media(read_manifest(tmp_path), num_frames=33)


# ---------------------------------------------------------------------- clips
def test_clip_lengths_are_one_plus_multiples_of_eight():
    assert [clip_length(n, 33) for n in (8, 9, 16, 17, 30, 40)] == [0, 9, 9, 17, 25, 33]


def test_clip_is_resampled_to_the_requested_rate(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", num_frames=40, fps=16, velocity=(0, 1))
    native = read_video_clip(path, num_frames=9, fps=None)
    halved = read_video_clip(path, num_frames=9, fps=8, extra_times=(0.0, 0.5, 1.0, 5.0))
    assert len(native.frames) == len(halved.frames) == 9 and native.source_fps == 16
    # Every other source frame: frame 4 at 8 fps is frame 8 at 16 fps (lossy codec, so compare loosely).
    assert np.abs(halved.frames[4].astype(int) - native.frames[8].astype(int)).mean() < 3
    assert len(halved.frames_at_times) == 3  # 5.0 s is past the end of a 2.5 s clip


def test_short_clip_uses_fewer_frames_or_fails_clearly(tmp_path):
    assert len(read_video_clip(write_clip(tmp_path / "a.mp4", num_frames=12), num_frames=33, fps=None).frames) == 9
    with pytest.raises(ValueError, match=r"has 6 frame\(s\) at its own frame rate; a clip needs at least 9"):
        read_video_clip(write_clip(tmp_path / "b.mp4", num_frames=6), num_frames=33, fps=None)


# ---------------------------------------------------------------------- buckets
def test_buckets_keep_the_area_and_are_multiples_of_32():
    buckets = bucket_sizes(256, max_aspect_ratio=4.0)
    assert (256, 256) in buckets and (128, 512) in buckets and (512, 128) in buckets
    for height, width in buckets:
        assert height % 32 == 0 and width % 32 == 0
        assert height * width <= 256 * 256 and max(height, width) / min(height, width) <= 4.0
    assert all(max(h, w) / min(h, w) <= 2 for h, w in bucket_sizes(256, max_aspect_ratio=2.0))


def test_nearest_bucket_follows_the_aspect_ratio():
    buckets = bucket_sizes(256)
    assert nearest_bucket(720, 1280, buckets) == (192, 320)
    assert nearest_bucket(1280, 720, buckets) == (320, 192)
    assert nearest_bucket(500, 500, buckets) == (256, 256)
    assert frames_to_tensor([texture(720, 1280, 0)], (192, 320)).shape == (3, 1, 192, 320)


# ---------------------------------------------------------------------- motion
@pytest.mark.parametrize("pixels_per_frame", [0, 1])
def test_flow_score_recovers_a_known_pan_on_the_reference_scale(pixels_per_frame):
    """A pan of d px per frame of a 96 px wide clip is 6d px at the 576 px width the score is measured at; frames
    0.5 s apart at 8 fps are 4 frames apart, so the mean absolute flow component is (4 * 6d) / 2."""
    frames = moving_frames(9, 64, 96, velocity=(0, pixels_per_frame), seed=3)[::4]
    expected = 4 * pixels_per_frame * MOTION_SIZE[0] / 96 / 2
    assert flow_motion_score(frames, seconds_between=0.5) == pytest.approx(expected, rel=0.05, abs=0.05)


def test_flow_score_rescales_other_frame_spacings_and_transposes_portrait_clips():
    frames = moving_frames(9, 64, 96, velocity=(0, 1), seed=3)
    every_frame = flow_motion_score(frames, seconds_between=1 / 8)
    assert every_frame == pytest.approx(flow_motion_score(frames[::4], seconds_between=0.5), rel=0.05)
    portrait = [np.ascontiguousarray(f.transpose(1, 0, 2)) for f in frames]
    assert flow_motion_score(portrait, seconds_between=1 / 8) == pytest.approx(every_frame, rel=0.05)


# ---------------------------------------------------------------------- preparation
def test_prepare_writes_latents_text_features_and_motion(tmp_path, dataset_dir, tiny_pipeline_dir):
    config = TrainingConfig(
        pretrained_model_name_or_path=str(tiny_pipeline_dir),
        dataset=str(dataset_dir),
        output_dir=str(tmp_path / "run"),
        resolution=64,
        num_frames=9,
    ).validate()
    cache = prepare_dataset(config)
    index = json.loads((cache / INDEX_FILE).read_text())
    assert index["latent_channels"] == 4 and index["text_dim"] == 32
    shapes = [tuple(s["latent_shape"]) for s in index["samples"]]
    # 9 frames -> 3 latent frames, first dropped; 64x64 -> 8x8 latents; 48x160 clips land in the 32x96 bucket.
    assert shapes == [(4, 2, 8, 8)] * 3 + [(4, 2, 4, 12)] * 2 + [(4, 1, 8, 8)] * 2
    motions = [s["motion_score"] for s in index["samples"]]
    assert motions[0] == 4.5 and all(m > 0 for m in motions[1:5]) and motions[5:] == [None, None]
    sample = load_file(str(cache / index["samples"][0]["file"]))
    assert sample["prompt_embeds"].shape[-1] == 32 and torch.isfinite(sample["latents"]).all()
    assert not list(tmp_path.glob("run/.cache*")), "no staging folder may remain"

    # An up-to-date cache is reused; a changed setting makes it stale.
    assert cache_is_current(config, read_manifest(dataset_dir))
    config.resolution = 96
    assert not cache_is_current(config, read_manifest(dataset_dir))


KILLED_PREPARATION = """
import sys, time
from diffusers_lumina_video.training import prepare
from diffusers_lumina_video.training.config import TrainingConfig

encode, done = prepare._encode_pixels, []

def slow_after_three(*args, **kwargs):
    if len(done) == 3:
        print("three done", flush=True)
        time.sleep(60)
    done.append(1)
    return encode(*args, **kwargs)

prepare._encode_pixels = slow_after_three
prepare.prepare_dataset(TrainingConfig(**__import__("json").loads(sys.argv[1])).validate())
"""


def test_killed_preparation_is_resumed_from_its_finished_samples(tmp_path, dataset_dir, tiny_pipeline_dir, caplog):
    """A preparation SIGKILLed after 3 of 7 samples: the next one takes its folder over, encodes only the other 4,
    leaves no temporary behind, and makes the same cache as an uninterrupted preparation."""
    settings = {
        "pretrained_model_name_or_path": str(tiny_pipeline_dir),
        "dataset": str(dataset_dir),
        "output_dir": str(tmp_path / "run"),
        "resolution": 64,
        "num_frames": 9,
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_PREPARATION, json.dumps(settings)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "three done"
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    left = list((tmp_path / "run").glob(".cache.tmp-*"))
    assert len(left) == 1 and len(list(left[0].glob("samples/*.safetensors"))) == 3

    config = TrainingConfig(**settings).validate()
    encoded = []
    original = prepare._encode_pixels
    with caplog.at_level("INFO"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(prepare, "_encode_pixels", lambda *a, **k: encoded.append(1) or original(*a, **k))
        cache = prepare_dataset(config)
    assert "Resuming the preparation left in" in caplog.text and "3 sample(s) are done" in caplog.text
    assert len(encoded) == 4
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".")) == []

    fresh = prepare_dataset(replace(config, output_dir=str(tmp_path / "fresh")))
    resumed_index, fresh_index = (json.loads((c / INDEX_FILE).read_text()) for c in (cache, fresh))
    assert resumed_index["samples"] == fresh_index["samples"]
    for entry in fresh_index["samples"]:
        expected, actual = load_file(str(fresh / entry["file"])), load_file(str(cache / entry["file"]))
        torch.testing.assert_close(actual, expected)
