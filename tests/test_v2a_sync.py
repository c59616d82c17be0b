import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusers_lumina_video.evaluation.audio_events import match_onsets
from diffusers_lumina_video.evaluation.v2a_sync import (
    ClipSync,
    evaluate_flash_sync,
    plot_flash_onsets,
    shift_frames,
    summarize,
)
from diffusers_lumina_video.showcase.builtin_models import tiny_random_v2a_pipeline
from diffusers_lumina_video.showcase.synthetic_flashes import FLASH_COLOURS, read_flash_manifest, write_flash_dataset


TONES = {name: frequency for name, (_, frequency) in FLASH_COLOURS.items()}


def clip_sync(flash_times, onsets, shift=0.0, colour="red", heard="red") -> ClipSync:
    truth = [t + shift for t in flash_times if t + shift < 3.0]
    return ClipSync(
        "c", tuple(flash_times), shift, tuple(onsets), match_onsets(truth, onsets), colour, heard, np.ones(300)
    )


def test_shift_frames_delays_the_video_and_keeps_its_length():
    frames = np.arange(10)[:, None, None, None] * np.ones((1, 2, 2, 3), dtype=np.uint8)
    shifted = shift_frames(frames, fps=10.0, shift=0.3)
    assert shifted.shape == frames.shape and shifted[:4, 0, 0, 0].tolist() == [0, 0, 0, 0]
    assert shifted[4:, 0, 0, 0].tolist() == list(range(1, 7))
    assert shift_frames(frames, 10.0, 0.0) is frames
    with pytest.raises(ValueError, match=r"`shift` must be in \[0, 1.000\) seconds"):
        shift_frames(frames, 10.0, 1.0)


def test_summary_finds_the_shift_that_the_onsets_follow():
    following = [clip_sync([0.3, 1.1, 2.0], [0.81, 1.6, 2.5], shift=0.5), clip_sync([0.5, 1.5], [1.0, 2.0], shift=0.5)]
    summary = summarize(following, duration=3.0)
    assert summary.f1 == 1.0 and summary.mean_absolute_offset == pytest.approx(0.002, abs=1e-6)
    assert summary.best_shift == pytest.approx(0.502, abs=1e-6) and summary.f1_at_zero_shift == 0.0
    replaying = [clip_sync([0.3, 1.1, 2.0], [0.3, 1.1, 2.0], shift=0.5, heard="blue")]
    summary = summarize(replaying, duration=3.0)
    assert (
        summary.best_shift == pytest.approx(0.0, abs=1e-9)
        and summary.f1_at_zero_shift == 1.0
        and summary.colour_accuracy == 0.0
    )
    silent = summarize([clip_sync([0.3, 1.1], [])], duration=3.0)
    assert silent.f1 == 0.0 and np.isnan(silent.best_shift) and np.isnan(silent.mean_absolute_offset)
    with pytest.raises(ValueError, match="`clips` is empty"):
        summarize([], duration=3.0)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flashes")
    return read_flash_manifest(write_flash_dataset(folder, 2, held_out=True, duration=1.6, num_flashes=2))


def test_evaluation_generates_measures_and_plots(held_out, tmp_path):
    pipe = tiny_random_v2a_pipeline()
    pipe.set_progress_bar_config(disable=True)
    kwargs = {"num_inference_steps": 2, "batch_size": 1, "seed": 5}
    results = evaluate_flash_sync(pipe, held_out, TONES, shift=0.5, **kwargs)
    assert [r.clip_id for r in results] == [r.clip_id for r in held_out]
    assert all(r.shift == 0.48 and r.envelope.shape == (160,) and r.heard_colour in TONES for r in results)
    # Nothing is counted at the clip's ends, where a decoder's padding makes the mel loud.
    assert all(0.05 <= t <= 1.55 for r in results for t in (*r.onsets, *(true for true, _ in r.match.matched)))
    batched = evaluate_flash_sync(pipe, held_out, TONES, shift=0.5, **{**kwargs, "batch_size": 2})
    assert all(np.allclose(a.envelope, b.envelope, rtol=1e-4) for a, b in zip(results, batched, strict=True))
    path = plot_flash_onsets({"a": results, "b": batched}, tmp_path / "onsets.png", num_clips=3)
    assert Image.open(path).size[0] > 0


def test_evaluation_refuses_bad_inputs(held_out):
    pipe = tiny_random_v2a_pipeline()
    with pytest.raises(ValueError, match="`records` is empty"):
        evaluate_flash_sync(pipe, [], TONES)
    with pytest.raises(ValueError, match=r"`tones` lacks the colours"):
        evaluate_flash_sync(pipe, held_out, {"nothing": 1.0})
    with pytest.raises(ValueError, match="`batch_size` must be a positive int"):
        evaluate_flash_sync(pipe, held_out, TONES, batch_size=0)
    with pytest.raises(ValueError, match="`conditions` must map each condition name"):
        plot_flash_onsets({"a": []}, "unused.png")


def test_flash_proof_example_without_the_train_extra_stops_at_once_and_says_how_to_install(tmp_path):
    example = Path(__file__).resolve().parents[1] / "examples" / "v2a_flash_proof.py"
    code = (
        "import runpy, sys; sys.modules['matplotlib'] = None; "  # as if matplotlib were not installed
        f"sys.argv = ['v2a_flash_proof.py', '--output_dir', {str(tmp_path / 'out')!r}]; "
        f"runpy.run_path({str(example)!r}, run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert 'needs the [train] extra (matplotlib, for its plot): pip install -e ".[train]"' in result.stderr
    assert not (tmp_path / "out").exists()  # nothing was started
