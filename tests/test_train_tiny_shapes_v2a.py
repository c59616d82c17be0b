import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from safetensors.torch import load_file
from transformers import SpeechT5HifiGan

from diffusers_lumina_video.evaluation.waveform_sync import hear_video, hear_waveform
from diffusers_lumina_video.pipelines import LuminaV2APipeline
from diffusers_lumina_video.pipelines.lumina_v2a.audio_codec import check_audio_components, load_audio_components
from diffusers_lumina_video.processors import AudioLDMMelFeatureExtractor
from diffusers_lumina_video.showcase import synthetic_shapes, train_tiny_shapes_v2a
from diffusers_lumina_video.showcase.audio_vae import build_audio_vae, waveforms_to_mels
from diffusers_lumina_video.showcase.audio_vocoder import (
    fit_tone_vocoder,
    played_frequency,
    tone_amplitudes,
    tone_mel_bin,
)
from diffusers_lumina_video.showcase.builtin_models import tiny_shapes_v2a_path
from diffusers_lumina_video.showcase.measure_shapes_v2a import main as measure_main
from diffusers_lumina_video.showcase.shapes_vae import shapes_vae
from diffusers_lumina_video.showcase.sounding_shapes import (
    COLOUR_TONES,
    read_sounding_manifest,
    render_sounding_clip,
    write_generated_clips,
)
from diffusers_lumina_video.showcase.stages import Stage, can_resume, run_stages
from diffusers_lumina_video.showcase.synthetic_shapes import (
    BOUNCING,
    CLIP_FORMAT_V2,
    SHAPE_COLOURS,
    ShapeSpec,
    render_shape,
)
from diffusers_lumina_video.utils.media_io import read_video


TRAIN_SPECS = [
    *(ShapeSpec(colour, "circle", BOUNCING, "slowly") for colour in SHAPE_COLOURS),
    ShapeSpec("red", "square", "left", "quickly"),
    ShapeSpec("blue", "triangle", "up", "slowly"),
]
HELD_OUT_SPECS = [ShapeSpec("green", "square", BOUNCING, "quickly"), ShapeSpec("yellow", "circle", "down", "slowly")]
TINY = [
    "--clips-per-spec=1",
    "--eval-clips-per-spec=1",
    "--audio-vae-steps=2",
    "--sync-encoder-steps=2",
    "--audio-vae-channels",
    "8",
    "8",
    "8",
    "--hidden-size=16",
    "--frequency-patch=2",
    "--num-layers=1",
    "--train-steps=2",
    "--batch-size=2",
    "--num-inference-steps=2",
    "--threads=1",
]


@pytest.fixture(scope="module")
def video_vae(tmp_path_factory):
    folder = tmp_path_factory.mktemp("video-vae")
    torch.manual_seed(0)
    shapes_vae(temporal_compression_ratio=2).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def few_specs():
    """The script's clips, of a few captions instead of all of them."""
    patch = pytest.MonkeyPatch()
    patch.setattr(synthetic_shapes, "split_specs", lambda directions: (TRAIN_SPECS, HELD_OUT_SPECS))
    yield
    patch.undo()


def arguments(output_dir, video_vae, *extra):
    return train_tiny_shapes_v2a.build_parser().parse_args(
        ["--output-dir", str(output_dir), "--video-vae", str(video_vae), *TINY, *extra]
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory, video_vae, few_specs):
    output_dir = tmp_path_factory.mktemp("v2a-run")
    pipeline = train_tiny_shapes_v2a.run(arguments(output_dir, video_vae))
    return output_dir, pipeline


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--clips-per-spec", "0", "`--clips-per-spec` must be >= 1, got 0."),
        ("--train-steps", "0", "`--train-steps` must be >= 1"),
        ("--bouncing-repeats", "0", "`--bouncing-repeats` must be >= 1"),
        ("--sync-encoder-steps", "0", "`--sync-encoder-steps` must be >= 1"),
        ("--seed", "-1", "`--seed` must be in [0, 2**31)"),
        ("--learning-rate", "0", "`--learning-rate` must be > 0"),
        ("--guidance-scale", "0.5", "`--guidance-scale` must be >= 1"),
        ("--hidden-size", "24", "`--hidden-size` must be a positive multiple of 16"),
        ("--frequency-patch", "3", "`--frequency-patch` must divide the 16 latent mel bins"),
        ("--frequency-patch", "4", "`--hidden-size` must be at least the 32 values a token carries"),
        ("--threads", "3", "`--threads` must be 1 or 2"),
        ("--vocoder-quiet-quantile", "0", "`--vocoder-quiet-quantile` must be in (0, 1]"),
        ("--vocoder-quiet-quantile", "1.5", "`--vocoder-quiet-quantile` must be in (0, 1]"),
    ],
)
def test_bad_settings_are_refused_naming_the_flag_before_any_work(tmp_path, video_vae, flag, value, message):
    output_dir = tmp_path / "out"
    with pytest.raises(ValueError) as error:
        train_tiny_shapes_v2a.run(arguments(output_dir, video_vae, flag, value))
    assert message in str(error.value)
    assert not output_dir.exists()


def test_audio_vae_channels_and_the_video_vae_are_checked(tmp_path, video_vae):
    with pytest.raises(ValueError, match=r"`--audio-vae-channels` must be multiples of 4"):
        train_tiny_shapes_v2a.run(arguments(tmp_path / "out", video_vae, "--audio-vae-channels", "8", "6", "8"))
    with pytest.raises(ValueError, match=r"`--video-vae` .* is neither an AutoencoderKLCogVideoX folder"):
        train_tiny_shapes_v2a.run(arguments(tmp_path / "out", tmp_path))
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"`--output-dir` .* is a file"):
        train_tiny_shapes_v2a.run(arguments(tmp_path / "file", video_vae))
    assert not (tmp_path / "out").exists()


def test_the_run_makes_a_half_precision_v2a_pipeline_that_loads_and_sounds_a_clip(run):
    output_dir, folder = run
    assert sorted(path.name for path in (folder / "transformer").iterdir()) == [
        "config.json",
        "diffusion_pytorch_model.safetensors",
    ]
    for weights in folder.glob("*/*.safetensors"):
        assert {tensor.dtype for tensor in load_file(weights).values()} == {torch.float16}, weights
    pipeline = DiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    assert isinstance(pipeline, LuminaV2APipeline)
    assert isinstance(pipeline.vocoder, SpeechT5HifiGan) and pipeline.vocoder.config.upsample_rates == [160]
    video = read_video(output_dir / "work" / "data" / "held_out" / "video" / "shape_00000.mp4")
    audio = pipeline(video=video.frames, fps=video.fps, prompt="a green square bouncing", num_inference_steps=2).audios
    assert audio.shape == (1, 32000) and np.isfinite(audio).all()


def test_the_run_reports_the_vocoder_and_the_trained_and_untrained_sound(run):
    output_dir, _ = run
    results = json.loads((output_dir / "results.json").read_text())
    assert list(results) == list(train_tiny_shapes_v2a.STAGES)
    assert results["vocoder"]["fitted_on"] in results["vocoder"]["train_choice"]
    vocoder = results["vocoder"]["held_out"]
    assert list(vocoder) == ["original sound", "vocoder (true mel)", "audio VAE + vocoder"]
    # The fitted vocoder plays the held-out bounce from its true mel spectrogram, at its colour's pitch.
    assert vocoder["vocoder (true mel)"]["onset_f1"] == 1.0 and vocoder["vocoder (true mel)"]["pitch_accuracy"] == 1.0
    assert vocoder["vocoder (true mel)"]["onsets_per_silent_clip"] == 0.0
    measured = results["measure"]["held_out"]
    assert list(measured) == ["untrained", "trained"]
    assert {
        "onset_f1",
        "pitch_accuracy",
        "onsets_per_silent_clip",
        "onsets_moved_by",
        "delayed_onset_f1",
        "seconds_per_clip",
    } <= set(measured["trained"])
    assert len(list((output_dir / "measure" / "trained-delayed").glob("*.mp4"))) == len(HELD_OUT_SPECS)
    table = (output_dir / "results.md").read_text()
    assert "| vocoder (true mel) | 1.00 |" in table and "| trained |" in table and "onsets moved by" in table


def test_a_rerun_reuses_every_stage_and_a_changed_setting_redoes_only_what_it_touches(
    run, video_vae, few_specs, caplog
):
    output_dir, _ = run
    markers = {path.name: path.stat().st_mtime_ns for path in (output_dir / "work").glob("*.done.json")}
    assert len(markers) == len(train_tiny_shapes_v2a.STAGES)
    with caplog.at_level(logging.INFO, logger="diffusers_lumina_video.showcase.stages"):
        train_tiny_shapes_v2a.run(arguments(output_dir, video_vae))
    assert caplog.text.count("is done with these settings; reusing") == len(markers)
    assert markers == {path.name: path.stat().st_mtime_ns for path in (output_dir / "work").glob("*.done.json")}
    train_tiny_shapes_v2a.run(arguments(output_dir, video_vae, "--guidance-scale=1.5", "--stop-after=measure"))
    changed = [name for name, time in markers.items() if (output_dir / "work" / name).stat().st_mtime_ns != time]
    assert changed == ["measure.done.json"]


def test_stages_stop_after_the_one_named_and_a_changed_start_empties_unfinished_work(tmp_path):
    calls = []
    stages = [
        Stage(name, tmp_path / name, {"value": 1}, lambda folder, name=name: calls.append(name) or {"ran": name})
        for name in ("first", "second")
    ]
    done = run_stages(stages, tmp_path, stop_after="first")
    assert calls == ["first"] and list(done) == ["first"] and done["first"]["ran"] == "first"
    with pytest.raises(ValueError, match=r"`stop_after` must be one of \['first', 'second'\], got 'third'"):
        run_stages(stages, tmp_path, stop_after="third")

    folder = tmp_path / "training"
    assert not can_resume(folder, {"steps": 2})
    (folder / "checkpoint").write_text("")
    assert can_resume(folder, {"steps": 2}) and (folder / "checkpoint").is_file()
    assert not can_resume(folder, {"steps": 3}) and not (folder / "checkpoint").exists()


def _sounds(specs, seed):
    clips = [render_sounding_clip(spec, seed + index) for index, spec in enumerate(specs)]
    mels = waveforms_to_mels([clip.audio for clip in clips], AudioLDMMelFeatureExtractor(), 16000)[:, 0]
    return clips, mels, np.stack([clip.audio for clip in clips])


def test_the_fitted_vocoder_plays_each_bounce_at_its_time_and_pitch_and_loads_in_a_v2a_pipeline(tmp_path):
    specs = [
        *(ShapeSpec(c, s, BOUNCING, "slowly") for c in SHAPE_COLOURS for s in ("circle", "square")),
        TRAIN_SPECS[4],
    ]
    _, mels, waveforms = _sounds(specs, seed=0)
    vocoder = fit_tone_vocoder(mels, waveforms, list(COLOUR_TONES.values()))
    vocoder.save_pretrained(tmp_path / "audioldm" / "vocoder")
    build_audio_vae([8, 8, 8], seed=0).save_pretrained(tmp_path / "audioldm" / "vae")
    _, loaded = load_audio_components(tmp_path / "audioldm")
    assert isinstance(loaded, SpeechT5HifiGan)
    check_audio_components(build_audio_vae([8, 8, 8], seed=0), loaded)

    held_out = [ShapeSpec(colour, "triangle", BOUNCING, "quickly") for colour in SHAPE_COLOURS] + [TRAIN_SPECS[5]]
    clips, mels, _ = _sounds(held_out, seed=100)
    with torch.no_grad():
        played = loaded(mels).numpy()
    for clip, waveform in zip(clips, played, strict=True):
        heard = hear_waveform(waveform, 16000, COLOUR_TONES)
        if clip.bounce_times:
            assert heard.names == (clip.spec.colour,), (clip.spec, heard)
            assert abs(heard.onsets[0] - clip.bounce_times[0]) <= 0.02
            assert heard.frequencies[0] == played_frequency(COLOUR_TONES[clip.spec.colour])
        else:  # a shape moving one way: the hiss is not played
            assert heard.onsets == () and np.abs(waveform).max() < 1e-3


def test_a_lower_quiet_quantile_plays_the_beeps_a_reconstruction_leaks_beside_them():
    specs = [ShapeSpec("red", shape, BOUNCING, "slowly") for shape in ("circle", "square")] + [TRAIN_SPECS[4]]
    clips, mels, waveforms = _sounds(specs, seed=0)
    red_bin = tone_mel_bin(COLOUR_TONES["red"], AudioLDMMelFeatureExtractor())
    # One frame without a beep as loud at red's bin as the loudest beep: what a VAE's leak beside a beep looks like.
    leaked = mels.clone()
    leaked[2, 10, red_bin] = mels[:2, :, red_bin].max()
    tones = list(COLOUR_TONES.values())
    for quiet_quantile, heard_beeps in ((1.0, False), (0.99, True)):
        vocoder = fit_tone_vocoder(leaked, waveforms, tones, quiet_quantile=quiet_quantile)
        with torch.no_grad():
            played = vocoder(mels).numpy()
        for clip, waveform in zip(clips, played, strict=True):
            heard = hear_waveform(waveform, 16000, COLOUR_TONES)
            if clip.bounce_times and heard_beeps:
                assert heard.names == ("red",) and abs(heard.onsets[0] - clip.bounce_times[0]) <= 0.02
            else:  # the first knot above every beep, or a clip without one
                assert heard.onsets == ()


def test_tone_amplitudes_read_a_sine_and_played_frequencies_are_whole_cycles_per_hop():
    time = np.arange(16000) / 16000
    amplitudes = tone_amplitudes(0.3 * np.sin(2 * np.pi * 440 * time)[None], 440)
    assert amplitudes.shape == (1, 100) and amplitudes[0, 2:-2] == pytest.approx(0.3, rel=0.02)
    assert [played_frequency(tone) for tone in COLOUR_TONES.values()] == [400, 900, 1800, 3500]


def test_the_fitted_vocoder_refuses_what_it_cannot_fit():
    mels, waveforms = torch.zeros(2, 8, 64), np.zeros((2, 8 * 160))
    with pytest.raises(ValueError, match=r"`mels` must be \[N, T, 64\]"):
        fit_tone_vocoder(torch.zeros(2, 8, 32), waveforms, [440])
    with pytest.raises(ValueError, match=r"`waveforms` must be \[2, >= 1280\]"):
        fit_tone_vocoder(mels, waveforms[:, :100], [440])
    with pytest.raises(ValueError, match=r"must each fall in a mel bin of its own"):
        fit_tone_vocoder(mels, waveforms, [440, 445])
    with pytest.raises(ValueError, match=r"`tones` must be frequencies between 0 and 8000 Hz"):
        fit_tone_vocoder(mels, waveforms, [9000])
    with pytest.raises(ValueError, match=r"`quiet_quantile` must be in \(0, 1\]"):
        fit_tone_vocoder(mels, waveforms, [440], quiet_quantile=0.0)


def test_the_measurement_script_refuses_a_pipeline_that_is_not_a_folder(tmp_path, capsys):
    (tmp_path / "manifest.csv").write_text("")
    with pytest.raises(SystemExit):
        measure_main(["--manifest", str(tmp_path / "manifest.csv"), "--pipeline", "trained", "--output-dir", "out"])
    assert "--pipeline must be NAME=FOLDER of a pipeline folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        measure_main(
            ["--manifest", str(tmp_path / "manifest.csv"), "--pipeline", "a=tiny-shapes", "--output-dir", "x"]
        )
    assert "`--pipeline` tiny-shapes is a built-in video model, not a sound one" in capsys.readouterr().err


def test_the_measurement_script_takes_the_built_in_sound_model_by_name(tmp_path, monkeypatch):
    from diffusers_lumina_video.showcase import measure_shapes_v2a

    measured = {}
    monkeypatch.setattr(measure_shapes_v2a, "measure_pipelines", lambda pipelines, *a, **k: measured.update(pipelines))
    monkeypatch.setattr(measure_shapes_v2a, "sound_table", lambda results: "")
    monkeypatch.setattr(measure_shapes_v2a, "write_results", lambda *args: None)
    (tmp_path / "manifest.csv").write_text("")
    flags = ["--manifest", str(tmp_path / "manifest.csv"), "--pipeline", "shipped=tiny-shapes-v2a"]
    assert measure_main([*flags, "--output-dir", str(tmp_path / "out")]) == 0
    assert measured == {"shipped": tiny_shapes_v2a_path()}


def test_the_measurement_script_generates_videos_of_held_out_or_seen_captions(tmp_path, monkeypatch):
    from diffusers_lumina_video.showcase import measure_shapes_v2a

    written = []

    def write(pipe, specs, clips_per_spec, folder, seed):
        written.append((list(specs), clips_per_spec, seed))
        return folder / "manifest.csv"

    video_model = SimpleNamespace(set_progress_bar_config=lambda **kwargs: None)  # only handed to the writer
    monkeypatch.setattr(DiffusionPipeline, "from_pretrained", lambda *args, **kwargs: video_model)
    monkeypatch.setattr(measure_shapes_v2a, "write_generated_clips", write)
    monkeypatch.setattr(measure_shapes_v2a, "measure_pipelines", lambda *args, **kwargs: {})
    monkeypatch.setattr(measure_shapes_v2a, "sound_table", lambda results: "")
    monkeypatch.setattr(measure_shapes_v2a, "write_results", lambda *args: None)
    seen, held_out = synthetic_shapes.split_specs(synthetic_shapes.TINY_SHAPES_CLIP_FORMAT.directions)
    flags = ["--video-model", "tiny-shapes", "--pipeline", "a=tiny-shapes-v2a", "--output-dir", str(tmp_path)]
    assert measure_main([*flags, "--clips-per-spec", "3"]) == 0
    assert measure_main([*flags, "--captions", "seen", "--seed", "1000"]) == 0
    assert written == [(held_out, 3, 0), (seen, 2, 1000)]


def test_the_audio_vae_trains_on_windows_around_each_bounce_and_one_from_every_clip():
    clips = [render_sounding_clip(spec, seed) for seed, spec in enumerate((TRAIN_SPECS[0], TRAIN_SPECS[4]))]
    mels = waveforms_to_mels([clip.audio for clip in clips], AudioLDMMelFeatureExtractor(), 16000)[:, 0]
    windows = train_tiny_shapes_v2a._audio_vae_windows(mels, clips, seed=0)
    per_bounce = train_tiny_shapes_v2a.WINDOWS_PER_BOUNCE
    assert windows.shape == (2 + per_bounce, 1, train_tiny_shapes_v2a.AUDIO_VAE_WINDOW, 64)
    # Every window around the bounce holds the beep: the loudest moment of the clip.
    loudest = mels[0].max()
    assert all(window.max() == loudest for window in windows[1 : 1 + per_bounce])


class RenderingVideoModel:
    """Stands in for a video pipeline: "draws" each caption's clip of a batch with the shape generator (seeded by its
    generator), at 8 fps as `tiny-shapes`' settings say."""

    config = SimpleNamespace(default_sampling_preset="own", sampling_presets={"own": {"fps": 8}})

    def __init__(self):
        self.clips, self.batch_sizes = [], []

    def __call__(self, prompt, generator, output_type):
        self.batch_sizes.append(len(prompt))
        frames = []
        for caption, seeded in zip(prompt, generator, strict=True):
            spec = next(spec for spec in TRAIN_SPECS + HELD_OUT_SPECS if spec.caption == caption)
            self.clips.append(render_shape(spec, int(seeded.initial_seed()), clip_format=CLIP_FORMAT_V2))
            frames.append(self.clips[-1].frames.astype(np.float32) / 255)
        return SimpleNamespace(frames=frames)


def test_generated_clips_are_written_with_the_bounces_read_off_their_frames(tmp_path):
    model = RenderingVideoModel()
    manifest = write_generated_clips(model, HELD_OUT_SPECS, clips_per_spec=2, folder=tmp_path, seed=5, batch_size=3)
    records = read_sounding_manifest(manifest)
    assert model.batch_sizes == [3, 1]
    assert [record.spec for record in records] == [HELD_OUT_SPECS[0]] * 2 + [HELD_OUT_SPECS[1]] * 2
    assert [record.seed for record in records] == [5, 6, 7, 8]
    assert all(record.caption == record.spec.caption and record.path.is_file() for record in records)
    for record, clip in zip(records, model.clips, strict=True):
        if record.spec.direction == BOUNCING:
            # the generator's bounce, in seconds of the written video (8 fps)
            assert record.bounce_times == pytest.approx([clip.bounces[0] / 8], abs=0.05)
        else:
            assert record.bounce_times == ()
        written = np.asarray(read_video(record.path).frames, dtype=np.float32)
        assert written.shape == clip.frames.shape
        assert np.abs(written - clip.frames).mean() < 4  # the video as generated, but for the codec's loss


def test_sounded_generated_clips_beep_where_their_frames_bounce_at_the_colour_pitch(tmp_path):
    model = RenderingVideoModel()
    manifest = write_generated_clips(
        model, HELD_OUT_SPECS, clips_per_spec=1, folder=tmp_path, seed=5, sound=True, manifest_name="generated.csv"
    )
    assert manifest == tmp_path / "generated.csv"
    bouncing, one_way = read_sounding_manifest(manifest)
    heard = hear_video(bouncing.path, COLOUR_TONES)
    assert len(heard.onsets) == 1 and heard.onsets[0] == pytest.approx(bouncing.bounce_times[0], abs=0.03)
    assert heard.names == (bouncing.spec.colour,)
    assert hear_video(one_way.path, COLOUR_TONES).onsets == ()


def test_the_script_adds_sounded_generated_videos_to_the_training_clips(tmp_path, video_vae, few_specs, monkeypatch):
    model = RenderingVideoModel()
    monkeypatch.setattr(DiffusionPipeline, "from_pretrained", lambda *args, **kwargs: model)
    model.set_progress_bar_config = lambda **kwargs: None
    output_dir = tmp_path / "out"
    flags = ("--generated-clips-per-spec=1", "--bouncing-repeats=2", "--stop-after=data")
    train_tiny_shapes_v2a.run(arguments(output_dir, video_vae, *flags))
    records = read_sounding_manifest(output_dir / "work" / "data" / "train" / "manifest.csv")
    generator, generated = records[: len(records) // 2], records[len(records) // 2 :]
    assert [record.background for record in generated] == ["generated"] * len(generated)
    assert [record.spec for record in generated] == [record.spec for record in generator]
    assert len(generated) == len(TRAIN_SPECS) + 4  # the 4 bouncing captions twice
    for record, clip in zip(generated, model.clips, strict=True):
        assert record.path.is_file() and len(record.bounce_times) == len(clip.bounces)
    report = json.loads((output_dir / "work" / "data.done.json").read_text())
    assert report["generated_clips"] == len(generated) and report["generated_clips_that_bounce"] == 8
    with pytest.raises(ValueError, match=r"`--generated-clips-per-spec` must be >= 0, got -1"):
        train_tiny_shapes_v2a.run(arguments(tmp_path / "other", video_vae, "--generated-clips-per-spec=-1"))
    with pytest.raises(ValueError, match=r"`--video-model` tiny-shapes-v2a is a built-in sound model"):
        train_tiny_shapes_v2a.run(arguments(tmp_path / "other", video_vae, "--video-model=tiny-shapes-v2a"))
    assert not (tmp_path / "other").exists()


def test_the_measurement_script_takes_a_manifest_or_a_video_model_and_refuses_a_model_that_is_not_one(
    tmp_path, capsys
):
    with pytest.raises(SystemExit):
        measure_main(["--pipeline", "trained=x", "--output-dir", "out"])
    assert "one of the arguments --manifest --video-model is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        measure_main(["--video-model", str(tmp_path), "--pipeline", "trained=x", "--output-dir", "out"])
    assert "`--video-model` must be `tiny-shapes` or a pipeline folder" in capsys.readouterr().err


def test_the_measurement_scores_an_onset_a_frame_from_the_bounce_as_missed_within_60_ms_and_found_within_a_frame():
    from diffusers_lumina_video.evaluation.waveform_sync import HeardSound
    from diffusers_lumina_video.showcase.measure_shapes_v2a import score_heard, sound_table

    times, names = [(0.5,), (1.0,), ()], ["red", "blue", None]
    heard = [
        HeardSound((0.6,), (440.0,), ("red",)),  # 100 ms late: inside the 125 ms frame, outside the 60 ms
        HeardSound((1.02,), (880.0,), ("blue",)),  # on time
        HeardSound((), (), ()),  # silent, as it should be
    ]
    score = score_heard(times, names, heard, fps=8.0)
    assert (score["onset_f1"], score["precision"], score["recall"]) == (0.5, 0.5, 0.5)
    assert score["within_a_frame"] == {"onset_f1": 1.0, "precision": 1.0, "recall": 1.0}
    # At 25 fps a frame is 40 ms: the late onset is missed there too.
    assert score_heard(times, names, heard, fps=25.0)["within_a_frame"]["onset_f1"] == 0.5
    extra = {"onsets_moved_by": 0.5, "delayed_onset_f1": 1.0, "seconds_per_clip": 0.1}
    assert "| trained | 0.50 | 0.50 | 0.50 | 1.00 (1.00 / 1.00) |" in sound_table({"trained": {**score, **extra}})
    # A run measured before this score still prints its table.
    del score["within_a_frame"]
    assert "| trained | 0.50 | 0.50 | 0.50 | n/a |" in sound_table({"trained": {**score, **extra}})
