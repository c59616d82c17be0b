import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from synthetic_av_media import CLIP_DURATION, save_tiny_v2a_pipeline, write_av_clip, write_bad_clips

from diffusers_lumina_video import LuminaV2APipeline
from diffusers_lumina_video.pipelines.lumina_v2a.audio_codec import waveforms_to_latents
from diffusers_lumina_video.processors import AudioLDMMelFeatureExtractor
from diffusers_lumina_video.training import av_prepare
from diffusers_lumina_video.training.av_data import AVItem, load_av_items
from diffusers_lumina_video.training.av_prepare import (
    CACHED_TENSORS,
    av_cache_is_current,
    prepare_av_dataset,
)
from diffusers_lumina_video.training.prepare import INDEX_FILE
from diffusers_lumina_video.utils.media_io import read_audio, read_video


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory) -> Path:
    return save_tiny_v2a_pipeline(tmp_path_factory.mktemp("tiny_v2a"))


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    for seed in range(4):
        write_av_clip(folder / f"clip{seed}.mp4", seed, duration=1.5)  # cut to CLIP_DURATION
    return folder


def prepare(pipeline_dir: Path, items: list[AVItem], cache: Path):
    return prepare_av_dataset(pipeline_dir, items, cache, clip_duration=CLIP_DURATION, device="cpu")


def test_cached_tensors_are_the_pipeline_encoders_outputs_of_the_first_seconds(tmp_path, pipeline_dir, clips_dir):
    items, _ = load_av_items(clips_dir)
    summary = prepare(pipeline_dir, items, tmp_path / "cache")
    assert (summary.prepared, summary.reused, summary.skipped) == (4, 0, {})

    index = json.loads((tmp_path / "cache" / INDEX_FILE).read_text())
    assert [clip["name"] for clip in index["clips"]] == [f"clip{i}" for i in range(4)]
    assert index["clips"][2] == {
        "name": "clip2",
        "file": "clip2.safetensors",
        "caption": items[2].caption,
        "path": str(items[2].path),
    }
    pipe = LuminaV2APipeline.from_pretrained(pipeline_dir)
    item = items[2]
    cached = load_file(str(tmp_path / "cache" / "clip2.safetensors"))
    assert sorted(cached) == sorted(CACHED_TENSORS)
    video = read_video(item.path)
    audio = read_audio(item.path)[: round(CLIP_DURATION * 16000)]
    with torch.no_grad():
        text, mask = pipe.encode_prompt([item.caption])
        expected = {
            "audio_latents": waveforms_to_latents([audio], 16000, pipe.vae, AudioLDMMelFeatureExtractor())[0],
            "text_embeds": text[0],
            "text_mask": mask[0],
            "visual_embeds": pipe.encode_frames([video], CLIP_DURATION)[0],
            "sync_embeds": pipe.encode_sync([video], CLIP_DURATION)[0],
        }
    for name, tensor in expected.items():
        torch.testing.assert_close(cached[name], tensor, rtol=0, atol=0, msg=name)
    # One second of 16 kHz audio is 25 AudioLDM latent frames; CLIP sees 8 frames per second.
    assert cached["audio_latents"].shape == (8, 25, 16) and cached["audio_latents"].dtype == torch.float32
    assert cached["visual_embeds"].shape[0] == 8 and cached["text_mask"].dtype == torch.int64
    assert index["shapes"]["audio_latents"] == [8, 25, 16]


def test_only_the_first_seconds_of_a_clip_are_decoded(tmp_path, pipeline_dir, clips_dir, monkeypatch):
    items, _ = load_av_items(clips_dir)
    decoded = {}
    for reader in (read_video, read_audio):
        # Each reader's result is recorded as `encode_clip` gets it.
        def recorded(*args, reader=reader, **kwargs):
            decoded[reader.__name__] = result = reader(*args, **kwargs)
            return result

        monkeypatch.setattr(av_prepare, reader.__name__, recorded)
    prepare(pipeline_dir, items[:1], tmp_path / "cache")
    # Of 1.5 s at 25 fps (38 frames): those before 1 s and the one at 1 s; of the sound, exactly 1 s.
    np.testing.assert_array_equal(decoded["read_video"].timestamps, np.arange(26) / 25)
    assert len(read_video(items[0].path).frames) == 38
    assert len(decoded["read_audio"]) == round(CLIP_DURATION * 16000)


def test_bad_files_are_skipped_by_name_with_their_reason(tmp_path, pipeline_dir, clips_dir, caplog):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("clip0", "clip1"):
        for suffix in (".mp4", ".txt"):
            (data / f"{name}{suffix}").write_bytes((clips_dir / f"{name}{suffix}").read_bytes())
    reasons = write_bad_clips(data)
    items, _ = load_av_items(data)
    with caplog.at_level("INFO", logger=av_prepare.__name__):
        summary = prepare(pipeline_dir, items, tmp_path / "cache")

    assert (summary.prepared, summary.reused) == (2, 0)
    assert sorted(summary.skipped) == sorted(reasons)
    for name, words in reasons.items():
        assert words in summary.skipped[name], (name, summary.skipped[name])
    summary_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Clip preparation:")]
    assert len(summary_lines) == 1 and "2 clip(s) prepared, 0 reused, 6 skipped: " in summary_lines[0]
    assert all(name in summary_lines[0] for name in reasons)
    assert caplog.records[-1].levelname == "WARNING"

    index = json.loads((tmp_path / "cache" / INDEX_FILE).read_text())
    assert [clip["name"] for clip in index["clips"]] == ["clip0", "clip1"]
    assert index["skipped"] == summary.skipped
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "clip0.safetensors",
        "clip1.safetensors",
        "fingerprint.json",
        INDEX_FILE,
    ]


def test_a_current_cache_is_used_without_loading_a_model_and_a_changed_one_reuses_its_clips(
    tmp_path, pipeline_dir, clips_dir, monkeypatch
):
    items, _ = load_av_items(clips_dir)
    cache = tmp_path / "cache"
    prepare(pipeline_dir, items[:3], cache)
    before = {p.name: p.read_bytes() for p in cache.glob("*.safetensors")}
    assert av_cache_is_current(cache, items[:3], CLIP_DURATION, pipeline_dir)
    assert not av_cache_is_current(cache, items, CLIP_DURATION, pipeline_dir)
    assert not av_cache_is_current(cache, items[:3], 0.8, pipeline_dir)

    def no_model(*args, **kwargs):
        raise AssertionError("no model is needed")

    monkeypatch.setattr(LuminaV2APipeline, "from_pretrained", no_model)
    summary = prepare(pipeline_dir, items[:3], cache)
    assert (summary.prepared, summary.reused, summary.skipped) == (0, 3, {})
    monkeypatch.undo()

    # A clip added and one dropped: only the new one is encoded; the kept ones are the same files.
    summary = prepare(pipeline_dir, [items[0], items[2], items[3]], cache)
    assert (summary.prepared, summary.reused) == (1, 2)
    assert sorted(p.name for p in cache.glob("*.safetensors")) == [
        "clip0.safetensors",
        "clip2.safetensors",
        "clip3.safetensors",
    ]
    assert all((cache / name).read_bytes() == before[name] for name in ("clip0.safetensors", "clip2.safetensors"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no staging folder left behind

    # A changed caption makes that clip's file stale.
    changed = [AVItem(items[0].name, items[0].path, "another caption"), items[2], items[3]]
    summary = prepare(pipeline_dir, changed, cache)
    assert (summary.prepared, summary.reused) == (1, 2)


KILLED_PREPARATION = """
import sys, time
from pathlib import Path
from diffusers_lumina_video.training import av_prepare
from diffusers_lumina_video.training.av_data import load_av_items

encode, done = av_prepare.encode_clip, []

def slow_after_two(*args, **kwargs):
    if len(done) == 2:
        print("two done", flush=True)
        time.sleep(60)
    done.append(1)
    return encode(*args, **kwargs)

av_prepare.encode_clip = slow_after_two
items, _ = load_av_items(sys.argv[2])
av_prepare.prepare_av_dataset(sys.argv[1], items, sys.argv[3], clip_duration=1.0)
"""


def test_killed_preparation_is_resumed_from_its_finished_clips(tmp_path, pipeline_dir, clips_dir, monkeypatch):
    """A preparation SIGKILLed after 2 of 4 clips: the next one takes its staging folder over, encodes only the
    other 2, leaves nothing temporary behind and makes the same cache as an uninterrupted preparation."""
    cache = tmp_path / "run" / "cache"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_PREPARATION, str(pipeline_dir), str(clips_dir), str(cache)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "two done"
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    left = list(cache.parent.glob(".cache.tmp-*"))
    assert len(left) == 1 and len(list(left[0].glob("*.safetensors"))) == 2 and not cache.exists()

    encoded = []
    original = av_prepare.encode_clip
    monkeypatch.setattr(av_prepare, "encode_clip", lambda *a, **k: encoded.append(1) or original(*a, **k))
    items, _ = load_av_items(clips_dir)
    summary = prepare(pipeline_dir, items, cache)
    assert (summary.prepared, summary.reused, len(encoded)) == (2, 2, 2)
    assert sorted(p.name for p in cache.parent.iterdir()) == ["cache"]

    fresh = tmp_path / "fresh"
    prepare(pipeline_dir, items, fresh)
    for item in items:
        expected = load_file(str(fresh / item.cache_file))
        # The killed run encoded with one thread, this process with several: float sums may differ in the last bit.
        torch.testing.assert_close(load_file(str(cache / item.cache_file)), expected, rtol=0, atol=1e-6)


def test_a_damaged_clip_file_is_made_again(tmp_path, pipeline_dir, clips_dir):
    items, _ = load_av_items(clips_dir)
    cache = tmp_path / "cache"
    prepare(pipeline_dir, items[:2], cache)
    (cache / "clip1.safetensors").write_bytes(b"damaged")
    summary = prepare(pipeline_dir, items[:3], cache)
    assert (summary.prepared, summary.reused) == (2, 1)
    with safe_open(str(cache / "clip1.safetensors"), framework="pt") as file:
        assert set(file.keys()) == set(CACHED_TENSORS)


def test_arguments_and_durations_are_checked_before_any_clip(tmp_path, pipeline_dir, clips_dir):
    items, _ = load_av_items(clips_dir)
    for duration in (0, -1.0, float("inf"), True, "8"):
        with pytest.raises(ValueError, match="`clip_duration` must be"):
            prepare_av_dataset(pipeline_dir, items, tmp_path / "cache", clip_duration=duration)
    with pytest.raises(ValueError, match="`items` must be a non-empty list of `AVItem`"):
        prepare_av_dataset(pipeline_dir, [], tmp_path / "cache", clip_duration=1.0)
    with pytest.raises(ValueError, match=r"Clip names of `items` must be unique .* 'clip0' and 'clip0'"):
        prepare_av_dataset(pipeline_dir, [items[0], items[0]], tmp_path / "cache", clip_duration=1.0)
    with pytest.raises(ValueError, match=r"`clip_duration` 0.3 s is too short for Synchformer, .* at least 0.64 s"):
        prepare_av_dataset(pipeline_dir, items, tmp_path / "cache", clip_duration=0.3)


def test_no_usable_clip_is_an_error_naming_every_reason(tmp_path, pipeline_dir):
    reasons = write_bad_clips(tmp_path)
    items, _ = load_av_items(tmp_path)
    with pytest.raises(ValueError, match=r"None of the 6 clip\(s\) could be prepared: 0 clip\(s\) prepared") as error:
        prepare(pipeline_dir, items, tmp_path / "cache")
    assert all(name in str(error.value) for name in reasons)
    assert not (tmp_path / "cache").exists()


def test_an_interrupted_preparation_keeps_its_clips_for_the_next_call(tmp_path, pipeline_dir, clips_dir, monkeypatch):
    items, _ = load_av_items(clips_dir)
    original, calls = av_prepare.encode_clip, []

    def interrupted_at_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(av_prepare, "encode_clip", interrupted_at_third)
    with pytest.raises(KeyboardInterrupt):
        prepare(pipeline_dir, items, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
    summary = prepare(pipeline_dir, items, tmp_path / "cache")
    assert (summary.prepared, summary.reused, summary.skipped) == (2, 2, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_a_file_gone_missing_after_listing_is_skipped(tmp_path, pipeline_dir, clips_dir):
    items, _ = load_av_items(clips_dir)
    gone = AVItem("gone", tmp_path / "gone.mp4", "a caption")
    summary = prepare(pipeline_dir, [items[0], gone], tmp_path / "cache")
    assert summary.prepared == 1 and summary.skipped["gone"] == "file not found"
