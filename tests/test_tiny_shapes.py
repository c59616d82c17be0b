import copy
import json
import re
import time

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from PIL import Image
from synthetic_media import save_tiny_pipeline
from transformers import PreTrainedTokenizerFast

from diffusers_lumina_video.showcase.builtin_models import (
    TINY_SHAPES_DEFAULTS,
    TINY_SHAPES_FPS,
    tiny_random_pipeline,
    tiny_shapes_path,
)
from diffusers_lumina_video.showcase.shapes_benchmark import (
    frame_strip,
    heads_for_nearer_edge,
    measure_adherence,
    score_clips,
    spearman,
    sweep_correlation,
)
from diffusers_lumina_video.showcase.shapes_model import (
    caption_feature_distances,
    shapes_tokenizer,
    write_untrained_pipeline,
)
from diffusers_lumina_video.showcase.shapes_vae import (
    fit_encoder_to_decoder,
    random_clips,
    random_crops,
    shapes_vae,
    train_shapes_vae,
)
from diffusers_lumina_video.showcase.stages import export_half_precision
from diffusers_lumina_video.showcase.synthetic_shapes import (
    BOUNCING,
    CLIP_FORMAT_V1,
    CLIP_FORMAT_V2,
    CLIP_FORMAT_V3,
    CLIP_FORMAT_V4,
    CLIP_FORMAT_V5,
    ShapeSpec,
    render_shape_clip,
    split_specs,
)
from diffusers_lumina_video.showcase.train_tiny_shapes import (
    _render_data,
    _stage_settings,
    _training_config,
    build_parser,
    check_args,
)


def test_spearman_matches_hand_computed_ranks():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties share their mean rank: ranks x = [0.5, 0.5, 2, 3], y = [0, 1, 2, 3]
    assert spearman([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(np.corrcoef([0.5, 0.5, 2, 3], [0, 1, 2, 3])[0, 1])
    assert np.isnan(spearman([1, 1], [1, 2]))
    assert sweep_correlation({0.0: [1.0, 1.5], 5.0: [2.0, 3.0]}) > 0.8


class _PromptRecorder:
    """Stands in for a pipeline: records the prompts and returns the generator's own clip of each spec."""

    def __init__(self, clips: dict[str, np.ndarray]):
        self.clips, self.prompts = clips, []
        self.transformer = torch.nn.Module()  # the benchmark times its forward passes

    def set_progress_bar_config(self, **kwargs):
        pass

    def __call__(self, prompts, generator, output_type, **kwargs):
        self.prompts += prompts
        return type("Output", (), {"frames": [self.clips[prompt] for prompt in prompts]})


@pytest.mark.parametrize("without_speed", [False, True])
def test_adherence_prompts_with_or_without_the_speed_word(without_speed):
    specs = [ShapeSpec("blue", "square", "right", "slowly"), ShapeSpec("red", "triangle", "up", "quickly")]
    prompts = [spec.caption_without_speed if without_speed else spec.caption for spec in specs]
    clips = {prompt: render_shape_clip(spec, seed=0) / 255.0 for prompt, spec in zip(prompts, specs, strict=True)}
    pipe = _PromptRecorder(clips)
    result = measure_adherence(pipe, specs, [0, 1], without_speed=without_speed)
    assert pipe.prompts == prompts
    assert result.accuracy == {"colour": 1.0, "shape": 1.0, "direction": 1.0} and result.clips == 2
    assert result.smoothness == 1.0 and result.bounce_inside is None and result.toward_nearer_edge is None


def test_adherence_reads_bouncing_and_smoothness_of_v2_clips():
    specs = [
        ShapeSpec("green", "circle", BOUNCING, "slowly"),
        ShapeSpec("yellow", "square", BOUNCING, "quickly"),
        ShapeSpec("blue", "triangle", "left", "slowly"),
    ]
    clips = {s.caption: render_shape_clip(s, seed=5, clip_format=CLIP_FORMAT_V2)[1:] / 255.0 for s in specs}
    result = measure_adherence(_PromptRecorder(clips), specs, [0, 1, 2], bouncing=True)
    assert result.accuracy == {"colour": 1.0, "shape": 1.0, "direction": 1.0}
    assert result.smoothness == 1.0 and result.bounce_inside == 1.0 and result.toward_nearer_edge == 1.0
    still = {caption: clip[[0] * len(clip)] for caption, clip in clips.items()}  # a model that draws no motion
    result = measure_adherence(_PromptRecorder(still), specs, [0, 1, 2], bouncing=True)
    assert result.smoothness == 0.0 and result.bounce_inside == 0.0 and result.accuracy["direction"] == 0.0
    # a model that moves shapes one way but never bounces them: the two kinds of motion reported apart
    one_way = {caption: still[caption] if BOUNCING in caption else clip for caption, clip in clips.items()}
    result = measure_adherence(_PromptRecorder(one_way), specs, [0, 1, 2], bouncing=True)
    assert result.by_motion["straight"] == {"colour": 1.0, "shape": 1.0, "direction": 1.0, "smoothness": 1.0}
    assert result.by_motion["bouncing"]["direction"] == 0.0 and result.accuracy["direction"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="`bouncing` must be True when `specs` hold bouncing ones"):
        measure_adherence(_PromptRecorder(clips), specs, [0, 1, 2])


def test_the_generators_own_clips_score_as_a_perfect_model_walled_or_not():
    for clip_format in (CLIP_FORMAT_V2, CLIP_FORMAT_V3, CLIP_FORMAT_V4, CLIP_FORMAT_V5):
        specs = ShapeSpec.all(clip_format.directions)[::7]  # every motion among them
        clips = [render_shape_clip(s, i, clip_format=clip_format)[1:] / 255.0 for i, s in enumerate(specs)]
        result = score_clips(specs, clips, bouncing=True)
        assert result.accuracy == {"colour": 1.0, "shape": 1.0, "direction": 1.0} and result.smoothness == 1.0
        assert result.bounce_inside == 1.0 and result.one_way_toward_farther_edge == 1.0 and result.seconds == 0.0


def test_a_bounce_heads_for_the_nearer_edge_when_its_first_steps_go_towards_it():
    def track(start, step):
        return np.stack([start + step * np.arange(17), np.full(17, 30.0)], axis=1)

    assert heads_for_nearer_edge(track(20.0, -1.0), width=64)  # left of the middle, going left
    assert not heads_for_nearer_edge(track(20.0, 1.0), width=64)
    assert heads_for_nearer_edge(track(45.0, 1.5), width=64) and not heads_for_nearer_edge(track(45.0, -1.5), 64)


def test_vae_training_is_seeded_and_lowers_the_loss():
    specs = [ShapeSpec("red", "square", "right", "slowly")]  # 9 frames of a quick one would leave a 32 px frame
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        vae = shapes_vae(latent_channels=4)
        runs.append(
            train_shapes_vae(vae, specs, steps=3, batch_size=1, crop=16, size=32, num_frames=9, learning_rate=5e-3)
        )
    assert runs[0] == runs[1]
    assert runs[0][-1] < runs[0][0]


def test_fitting_the_encoder_leaves_the_decoder_and_brings_its_videos_round_trip_closer():
    specs = [ShapeSpec("red", "square", "right", "slowly")]
    torch.manual_seed(0)
    vae = shapes_vae(latent_channels=4, temporal_compression_ratio=2)
    train_shapes_vae(vae, specs, steps=2, batch_size=1, crop=16, size=32, num_frames=9, learning_rate=5e-3)
    latents = torch.randn(2, 4, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    decoder = {name: value.clone() for name, value in vae.decoder.state_dict().items()}

    def round_trip_error() -> float:
        with torch.no_grad():
            videos = vae.decode(latents).sample.clamp(-1, 1)
            return float((vae.decode(vae.encode(videos).latent_dist.mode()).sample - videos).abs().mean())

    before = round_trip_error()
    runs = []
    for _ in range(2):
        fitted = copy.deepcopy(vae)
        runs.append(fit_encoder_to_decoder(fitted, latents, specs, steps=4, batch_size=1, crop=16, learning_rate=5e-3))
    assert runs[0] == runs[1]
    vae = fitted
    assert all(torch.equal(value, decoder[name]) for name, value in vae.decoder.state_dict().items())
    assert all(param.requires_grad for param in vae.parameters()) and not vae.training
    assert round_trip_error() < before
    with pytest.raises(ValueError, match="`crop` must be a multiple of 4 in \\(0, 32\\]"):
        fit_encoder_to_decoder(vae, latents, specs, steps=1, crop=10)


def test_export_ships_the_given_vae_in_half_precision(tmp_path):
    source = save_tiny_pipeline(tmp_path / "trained")
    other = tiny_random_pipeline(seed=1).vae
    other.save_pretrained(tmp_path / "fitted_vae")
    export_half_precision(source, tmp_path / "shipped", vae=tmp_path / "fitted_vae")
    shipped = DiffusionPipeline.from_pretrained(tmp_path / "shipped")
    for name, value in shipped.vae.state_dict().items():  # saved in half precision, loaded back in full
        assert torch.equal(value, other.state_dict()[name].half().float()), name


def test_vae_refuses_bad_settings():
    with pytest.raises(ValueError, match="`crop` must be a multiple of 16"):
        train_shapes_vae(shapes_vae(), [ShapeSpec("red", "square", "right", "quickly")], steps=1, crop=24)
    with pytest.raises(
        ValueError, match="`num_frames` must be 1 \\+ a multiple of 2 x the VAE's temporal compression 4"
    ):
        train_shapes_vae(shapes_vae(), [ShapeSpec("red", "square", "right", "quickly")], steps=1, num_frames=5)


def test_random_crops_keep_frames_aligned():
    clips = random_clips([ShapeSpec("blue", "circle", "up", "slowly")], 2, np.random.default_rng(0), 32, 5)
    crops = random_crops(clips, 16, np.random.default_rng(0))
    assert crops.shape == (2, 3, 5, 16, 16)
    bouncing = [ShapeSpec("red", "circle", BOUNCING, "quickly")]
    assert random_clips(bouncing, 2, np.random.default_rng(0), clip_format=CLIP_FORMAT_V2).shape == (2, 3, 17, 64, 64)


def test_the_shipped_models_clip_format_and_tokenizer_are_unchanged():
    # the training script's clips: what the model makes, and the first frame the training cache drops
    assert CLIP_FORMAT_V2.num_frames == TINY_SHAPES_DEFAULTS["num_frames"] + 1
    assert CLIP_FORMAT_V2.size == TINY_SHAPES_DEFAULTS["height"] and CLIP_FORMAT_V2.fps == TINY_SHAPES_FPS
    shipped = PreTrainedTokenizerFast.from_pretrained(tiny_shapes_path() / "tokenizer")
    assert shapes_tokenizer().get_vocab() == shipped.get_vocab()  # the default rebuilds the shipped model's
    # the first stage's vocabulary (v1 clips) is the shipped one without the bouncing words, ids kept
    first_stage = shapes_tokenizer(CLIP_FORMAT_V1.caption_words).get_vocab()
    assert {word: shipped.get_vocab()[word] for word in first_stage} == first_stage
    assert set(shipped.get_vocab()) - set(first_stage) == {"bouncing", "and"}
    caption = ShapeSpec("red", "circle", BOUNCING, "slowly").caption
    assert "<unk>" not in shipped.tokenize(caption)
    assert "<unk>" in shapes_tokenizer(CLIP_FORMAT_V1.caption_words).tokenize(caption)


def test_untrained_pipeline_loads_and_tells_captions_apart(tmp_path):
    write_untrained_pipeline(tmp_path / "pipe", shapes_vae(), hidden_size=64, num_layers=1)
    pipe = DiffusionPipeline.from_pretrained(tmp_path / "pipe")
    assert type(pipe).__name__ == "LuminaVideoPipeline"
    # A rebuilt folder carries the sampling settings the shipped one does.
    written, shipped = (
        json.loads((f / "model_index.json").read_text()) for f in (tmp_path / "pipe", tiny_shapes_path())
    )
    for key in ("sampling_presets", "default_sampling_preset"):
        assert written[key] == shipped[key]
    assert [tuple(p) for p in pipe.transformer.config.patch_sizes] == [(1, 2, 2), (2, 2, 2), (2, 4, 4)]
    assert "<unk>" not in pipe.tokenizer.tokenize("a yellow triangle moving down, quickly")
    captions = [s.caption for s in ShapeSpec.all()[:12]]
    distances = caption_feature_distances(pipe, captions)
    assert distances[~torch.eye(len(captions), dtype=bool)].min() > 0.01
    video = pipe("a red circle moving left, slowly", height=64, width=64, num_frames=8, num_inference_steps=1)
    assert video.frames.shape == (1, 8, 64, 64, 3)


def test_frame_strip_has_one_row_per_clip():
    clips = [np.zeros((4, 16, 16, 3)), np.ones((4, 16, 16, 3))]
    strip = frame_strip(clips, ["a", "b"])
    assert strip.size == (64, 2 * (16 + 14))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--train-steps", "0"], "`--train-steps` must be >= 1"),
        (["--bouncing-repeats", "0"], "`--bouncing-repeats` must be >= 1"),
        (["--coarse-scales-only"], "`--coarse-scales-only` trains the coarse patchifications of a trained model"),
        (["--multi-scale-patches", "1x2x2", "2x2x2"], "`--multi-scale-patches` picks the patchifications of"),
        (["--multi-scale", "--multi-scale-patches", "2x2x2", "2x4x4"], "`--multi-scale-patches` must name 1x2x2"),
        (["--multi-scale", "--multi-scale-patches", "1x2x2"], "and at least one coarser patchification"),
        (["--hidden-size", "96"], "`--hidden-size` must be a positive multiple of 64"),
        (["--threads", "4"], "`--threads` must be 1 or 2"),
        (["--learning-rate", "0"], "`--learning-rate` must be > 0"),
        (["--seed", "-1"], r"`--seed` must be in \[0, 2\*\*31\)"),
        (["--vae-refine-steps", "-1"], r"`--vae-refine-steps` must be >= 0 \(0: no refinement\)"),
        (["--encoder-steps", "-1"], r"`--encoder-steps` must be >= 0 \(0: no fitting\)"),
        (["--vae-crop", "24"], "`--vae-crop` must be a multiple of 16 from 16 to 64"),
        (["--vae-learning-rate", "-1"], "`--vae-learning-rate` must be > 0"),
    ],
)
def test_training_script_refuses_bad_settings(tmp_path, flags, message):
    args = build_parser().parse_args(["--output-dir", str(tmp_path / "run"), *flags])
    with pytest.raises(ValueError, match=message):
        check_args(args)


@pytest.mark.parametrize(
    ("flags", "trained", "stage_key"),
    [
        ([], ["1x2x2"], None),
        (["--multi-scale"], ["1x2x2", "2x2x2", "2x4x4"], None),
        (["--multi-scale", "--multi-scale-patches", "2x2x2", "1x2x2"], ["1x2x2", "2x2x2"], ["1x2x2", "2x2x2"]),
    ],
)
def test_multi_scale_recipe_trains_the_chosen_patchifications(tmp_path, flags, trained, stage_key):
    args = build_parser().parse_args(["--output-dir", str(tmp_path), *flags])
    check_args(args)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "metadata.jsonl").write_text("")
    config = _training_config(args, tmp_path)
    assert config.patch_sizes == trained
    assert list(config.timestep_shifts) == trained
    # runs from before the option keep their finished stages
    assert _stage_settings(args)["transformer"].get("multi_scale_patches") == stage_key


def test_bouncing_captions_can_get_more_clips_and_only_then_does_the_data_stage_change(tmp_path):
    def data_stage(*flags):
        args = build_parser().parse_args(["--output-dir", str(tmp_path), "--clip-format", "v2", *flags])
        return args, _stage_settings(args)["data"]

    plain_args, plain = data_stage()
    assert "bouncing_repeats" not in plain  # runs from before the flag keep their finished stages
    args, repeated = data_stage("--bouncing-repeats", "3", "--clips-per-spec", "1")
    assert repeated["bouncing_repeats"] == 3
    _render_data(tmp_path / "data", args)
    captions = [
        json.loads(line)["caption"] for line in (tmp_path / "data" / "metadata.jsonl").read_text().splitlines()
    ]
    bouncing = sum(BOUNCING in caption for caption in captions)
    train_specs, _ = split_specs(CLIP_FORMAT_V2.directions)
    expected = sum(spec.direction == BOUNCING for spec in train_specs)
    assert bouncing == 3 * expected and len(captions) == len(train_specs) + 2 * expected


def test_training_script_refuses_a_file_as_output(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_args(build_parser().parse_args(["--output-dir", str(tmp_path / "file")]))


def test_training_script_writes_the_vae_stages_and_reuses_them(tmp_path):
    from diffusers_lumina_video.showcase.train_tiny_shapes import run

    flags = ["--output-dir", str(tmp_path / "run"), "--clips-per-spec", "1", "--vae-steps", "2"]
    flags += ["--vae-batch-size", "1", "--vae-refine-steps", "1", "--threads", "1", "--stop-after", "vae_refine"]
    run(build_parser().parse_args(flags))
    work = tmp_path / "run" / "work"
    assert len(list((work / "data").rglob("*.mp4"))) == 82  # one clip per training caption
    # the shipped model's settings as before the clip format became an option, so finished runs stay done
    assert set(json.loads((work / "data.done.json").read_text())["settings"]) == {
        "seed",
        "frames",
        "size",
        "clips_per_spec",
        "speedless_captions",
    }
    report = json.loads((work / "vae_refine.done.json").read_text())
    assert set(report["attributes_kept"]) == {"colour", "shape", "direction"} and report["scaling_factor"] > 0
    strip = Image.open(work / "vae_refine" / "reconstructions.png")
    assert strip.size == (8 * 64, 12 * (64 + 14))  # 6 held-out clips, each above its reconstruction
    stamps = {path.name: path.stat().st_mtime_ns for path in work.glob("*.done.json")}
    run(build_parser().parse_args(flags))  # every stage is done with these settings: nothing is redone
    assert {path.name: path.stat().st_mtime_ns for path in work.glob("*.done.json")} == stamps


def test_training_script_writes_v2_clips_behind_a_flag(tmp_path, monkeypatch):
    from diffusers_lumina_video.showcase import synthetic_shapes
    from diffusers_lumina_video.showcase.train_tiny_shapes import run
    from diffusers_lumina_video.training.data import read_manifest, read_video_clip

    def a_few(directions):  # the first training specs that bounce and that move straight: a tiny dataset
        train, held_out = split(directions)
        return [s for s in train if s.direction == BOUNCING][:3] + train[:2], held_out

    split = synthetic_shapes.split_specs
    monkeypatch.setattr(synthetic_shapes, "split_specs", a_few)
    flags = ["--output-dir", str(tmp_path / "run"), "--clips-per-spec", "1", "--threads", "1", "--stop-after", "data"]
    assert build_parser().parse_args(flags).clip_format == "v1"  # the shipped model's clips stay the default
    run(build_parser().parse_args([*flags, "--clip-format", "v2"]))
    work = tmp_path / "run" / "work"
    manifest = work / "data" / "metadata.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [row["caption"].split(",")[0] for row in rows] == [
        "a red circle bouncing left and right",
        "a red circle bouncing left and right",
        "a red square bouncing left and right",
        "a red circle moving right",
        "a red circle moving right",
    ]
    assert all(len(row["bounce_frames"]) == 1 for row in rows[:3]) and all("bounce_frames" not in r for r in rows[3:])
    clip = read_video_clip(read_manifest(manifest)[0].path, 17, None)
    assert len(clip.frames) == 17 and clip.source_fps == 8
    assert json.loads((work / "data.done.json").read_text())["settings"]["clip_format"] == "v2"
    assert not (work / "vae").exists()


@pytest.mark.parametrize("ratio", [4, 2])
def test_the_first_latent_frame_decodes_into_identical_frames(ratio):
    # why the v2 VAE compresses time 2x: the decoder repeats frames to upsample time and pads the first latent frame
    # with itself, so the frames it decodes into are the same whatever the weights, and a shape stands still there
    torch.manual_seed(0)
    vae = shapes_vae(latent_channels=4, temporal_compression_ratio=ratio).eval()
    with torch.no_grad():
        frames = vae.decode(torch.randn(1, 4, 4, 4, 4)).sample[0]
    assert frames.shape[1] == 4 * ratio
    first = frames[:, :ratio]
    assert torch.equal(first, first[:, :1].expand_as(first))
    assert not torch.allclose(frames[:, ratio - 1], frames[:, ratio])


def test_vae_refuses_frames_its_temporal_compression_does_not_divide():
    vae = shapes_vae(latent_channels=4, temporal_compression_ratio=2)
    spec = [ShapeSpec("red", "square", "right", "quickly")]
    message = (
        r"1 \+ a multiple of 2 x the VAE's temporal compression 2 \(an even count of latent frames after the first\)"
    )
    with pytest.raises(ValueError, match=message + ", got 7"):  # three latent frames after the first
        train_shapes_vae(vae, spec, steps=1, size=32, crop=16, num_frames=7)


def test_v2_vae_starts_from_a_given_vae_at_2x_temporal_compression(tmp_path):
    from diffusers_lumina_video.showcase.train_tiny_shapes import run

    shapes_vae(latent_channels=4).save_pretrained(tmp_path / "start")
    flags = ["--output-dir", str(tmp_path / "run"), "--clip-format", "v2", "--vae-init", str(tmp_path / "start")]
    flags += ["--vae-steps", "1", "--vae-batch-size", "1", "--vae-refine-steps", "0", "--threads", "1"]
    run(build_parser().parse_args([*flags, "--stop-after", "vae_refine"]))
    work = tmp_path / "run" / "work"
    report = json.loads((work / "vae.done.json").read_text())
    assert report["settings"]["vae_init"] == str(tmp_path / "start")
    assert report["settings"]["compression"] == 2 and report["settings"]["weight"] == 30.0
    assert 0.0 <= report["smoothness"] <= 1.0
    config = json.loads((work / "vae_refine" / "config.json").read_text())
    assert config["temporal_compression_ratio"] == 2 and config["latent_channels"] == 4


def test_training_script_refuses_a_vae_init_that_is_no_vae(tmp_path):
    args = build_parser().parse_args(["--output-dir", str(tmp_path / "run"), "--vae-init", str(tmp_path)])
    with pytest.raises(ValueError, match="is neither a VAE folder nor a pipeline folder with vae/"):
        check_args(args)


def test_a_formats_model_carries_its_frames_and_both_schedules():
    from diffusers_lumina_video.showcase.train_tiny_shapes import format_presets

    presets = format_presets(CLIP_FORMAT_V2)
    assert set(presets) == {"tiny-shapes", "tiny-shapes-MultiScale"}
    for settings in presets.values():  # the frames after the first, at the clips' size and rate
        assert (settings["num_frames"], settings["height"], settings["fps"]) == (16, 64, 8)
    assert presets["tiny-shapes"]["patch_size"] == (1, 2, 2)
    assert [patch for _, patch in presets["tiny-shapes-MultiScale"]["patch_size"]] == [(2, 2, 2), (1, 2, 2)]
    # the shipped folder carries the same schedule as a new export of its clip format would
    shipped = json.loads((tiny_shapes_path() / "model_index.json").read_text())["sampling_presets"]
    assert shipped["tiny-shapes-MultiScale"]["patch_size"] == json.loads(
        json.dumps(presets["tiny-shapes-MultiScale"]["patch_size"])
    )
    v1 = format_presets(CLIP_FORMAT_V1)
    assert v1["tiny-shapes"]["num_frames"] == 8
    assert [patch for _, patch in v1["tiny-shapes-MultiScale"]["patch_size"]] == [(2, 4, 4), (2, 2, 2), (1, 2, 2)]


def test_transformer_timer_counts_only_forward_passes():
    from diffusers_lumina_video.showcase.shapes_benchmark import TransformerTimer

    class Slow(torch.nn.Module):
        def forward(self, x):
            time.sleep(0.05)
            return x

    module = Slow()
    with TransformerTimer(module) as timer:
        module(torch.zeros(1))
        module(torch.zeros(1))
        time.sleep(0.1)
    module(torch.zeros(1))  # after the context: not counted, hooks removed
    assert 0.1 <= timer.seconds < 0.2 and not module._forward_hooks and not module._forward_pre_hooks


def test_animated_preview_loops_the_clips_side_by_side(tmp_path):
    from diffusers_lumina_video.showcase.shapes_benchmark import animated_preview

    clips = [render_shape_clip(ShapeSpec("red", "circle", BOUNCING, "slowly"), clip_format=CLIP_FORMAT_V2) / 255.0] * 2
    animated_preview(clips, tmp_path / "preview.gif", fps=8)
    gif = Image.open(tmp_path / "preview.gif")
    assert (gif.n_frames, gif.size, gif.info["loop"]) == (17, (2 * 2 * 64, 2 * 64), 0)
    assert abs(gif.info["duration"] - 125) <= 10  # 8 fps, in the GIF's hundredths of a second
    with pytest.raises(ValueError, match=r"`clips` must have one length, got \[16, 17\]"):
        animated_preview([clips[0], clips[0][:16]], tmp_path / "bad.gif", fps=8)


def test_benchmark_samples_with_the_models_own_schedules():
    from types import SimpleNamespace

    from diffusers_lumina_video.showcase.run_shapes_benchmark import _schedules
    from diffusers_lumina_video.showcase.shapes_benchmark import MULTI_SCALE, SINGLE_SCALE

    own = {"tiny-shapes": {"patch_size": [1, 2, 2]}, "tiny-shapes-MultiScale": {"patch_size": [[0.0, [2, 4, 4]]]}}
    pipe = SimpleNamespace(config=SimpleNamespace(sampling_presets=own, default_sampling_preset="tiny-shapes"))
    assert _schedules(pipe) == {"single_scale": (1, 2, 2), "multi_scale": [(0.0, (2, 4, 4))]}
    bare = SimpleNamespace(config=SimpleNamespace(sampling_presets=None, default_sampling_preset=None))
    assert _schedules(bare) == {"single_scale": SINGLE_SCALE, "multi_scale": MULTI_SCALE}
    other = [(0.0, (2, 2, 2)), (0.7, (1, 2, 2))]
    assert _schedules(pipe, other) == {"single_scale": (1, 2, 2), "multi_scale": other}


def test_benchmark_reads_a_coarse_to_fine_schedule_and_names_the_flag_when_it_is_wrong(capsys):
    from diffusers_lumina_video.showcase.run_shapes_benchmark import build_parser

    parse = build_parser().parse_args
    args = parse(["--model", "m", "--output", "o", "--coarse-to-fine", "[[0, [2, 2, 2]], [0.7, [1, 2, 2]]]"])
    assert args.coarse_to_fine == [(0.0, (2, 2, 2)), (0.7, (1, 2, 2))]
    assert parse(["--model", "m", "--output", "o"]).coarse_to_fine is None
    for text, message in [
        ("[[0.2, [2, 2, 2]]]", "`--coarse-to-fine` schedule must start at t_start 0.0"),
        ("[[0, [2, 2]]]", "`--coarse-to-fine` takes [t_start, [pF, pH, pW]] pairs of positive integers"),
        ("[[0, [2, 2, 2]], [0.5, [1, 2, 2]], [0.4, [2, 4, 4]]]", "needs increasing t_start values"),
        ("not json", "argument --coarse-to-fine: Expecting value"),
    ]:
        with pytest.raises(SystemExit):
            parse(["--model", "m", "--output", "o", "--coarse-to-fine", text])
        assert message in capsys.readouterr().err


def test_benchmark_takes_the_built_in_name_and_refuses_what_is_not_a_video_model_before_loading(tmp_path):
    from diffusers_lumina_video.showcase import run_shapes_benchmark

    loaded = []
    parse = run_shapes_benchmark.build_parser().parse_args
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_shapes_benchmark, "_load", lambda path, shift: loaded.append(path) or 1 / 0)
        with pytest.raises(ZeroDivisionError):
            run_shapes_benchmark.run(parse(["--model", "tiny-shapes", "--output", str(tmp_path / "out")]))
    assert loaded == [str(tiny_shapes_path())]
    for flags, message in [
        (["--model", "tiny-shapes-v2a"], "`--model` tiny-shapes-v2a is a built-in sound model, not a video one"),
        (["--model", str(tmp_path)], f"`--model` must be `tiny-shapes` or a pipeline folder, got '{tmp_path}'"),
        (["--model", "tiny-shapes", "--untrained", "nowhere"], "`--untrained` must be `tiny-shapes` or a pipeline"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            run_shapes_benchmark.run(parse([*flags, "--output", str(tmp_path / "out")]))
    assert not (tmp_path / "out").exists()


def test_progressive_training_starts_from_a_shorter_formats_model_and_keeps_its_words(tmp_path, monkeypatch):
    from diffusers_lumina_video.showcase import synthetic_shapes
    from diffusers_lumina_video.showcase.train_tiny_shapes import run

    split = synthetic_shapes.split_specs
    monkeypatch.setattr(
        synthetic_shapes, "split_specs", lambda directions: tuple(specs[:2] for specs in split(directions))
    )
    torch.manual_seed(0)
    write_untrained_pipeline(
        tmp_path / "v1", shapes_vae(), seed=3, hidden_size=64, num_layers=1, caption_words=CLIP_FORMAT_V1.caption_words
    )
    flags = ["--output-dir", str(tmp_path / "run"), "--clip-format", "v2", "--init-from", str(tmp_path / "v1")]
    flags += ["--clips-per-spec", "1", "--vae-steps", "1", "--vae-batch-size", "1", "--vae-refine-steps", "0"]
    run(build_parser().parse_args([*flags, "--threads", "1", "--stop-after", "initial"]))
    start = DiffusionPipeline.from_pretrained(tmp_path / "v1")
    initial = DiffusionPipeline.from_pretrained(tmp_path / "run" / "work" / "initial")
    assert initial.vae.config.temporal_compression_ratio == 2  # the start's VAE, trained on at the new compression
    start_weights, weights = start.transformer.state_dict(), initial.transformer.state_dict()
    assert all(torch.equal(start_weights[name], weights[name]) for name in start_weights)
    assert initial.transformer.config.hidden_size == 64  # its width, not the flag's default
    caption = "a red circle moving left, slowly"
    embeds = [
        pipe.encode_prompt(caption, do_classifier_free_guidance=False, device="cpu")[0] for pipe in (start, initial)
    ]
    assert torch.equal(*embeds)  # a word the start knew has the features the transformer learnt it by
    bouncing = initial.tokenizer.convert_tokens_to_ids("bouncing")
    table = initial.text_encoder.get_input_embeddings().weight
    assert bouncing == len(start.tokenizer) and table.shape[0] == len(initial.tokenizer)
    assert table[bouncing].std() > 0.5 * table[:bouncing].std()  # a word of its own, not the mean of the others
    settings = json.loads((tmp_path / "run" / "work" / "initial.done.json").read_text())["settings"]
    assert settings["init_from"] == str(tmp_path / "v1") and settings["vae_init"] == str(tmp_path / "v1" / "vae")


def test_progressive_training_refuses_a_start_that_is_no_pipeline_or_a_second_vae(tmp_path):
    write_untrained_pipeline(tmp_path / "v1", shapes_vae(), hidden_size=64, num_layers=1)
    for extra, message in [
        (["--init-from", str(tmp_path)], "is not a pipeline folder"),
        (["--init-from", str(tmp_path / "v1"), "--vae-init", str(tmp_path / "v1")], "not both"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_args(build_parser().parse_args(["--output-dir", str(tmp_path / "run"), *extra]))


def test_no_vae_steps_keep_the_start_models_vae_as_it_is(tmp_path, monkeypatch):
    from diffusers import AutoencoderKLCogVideoX

    from diffusers_lumina_video.showcase import synthetic_shapes
    from diffusers_lumina_video.showcase.train_tiny_shapes import run

    split = synthetic_shapes.split_specs
    monkeypatch.setattr(synthetic_shapes, "split_specs", lambda directions: tuple(s[:2] for s in split(directions)))
    start = shapes_vae(temporal_compression_ratio=2)
    start.register_to_config(scaling_factor=0.7)
    write_untrained_pipeline(tmp_path / "v2", start, hidden_size=64, num_layers=1)
    flags = ["--output-dir", str(tmp_path / "run"), "--clip-format", "v2", "--init-from", str(tmp_path / "v2")]
    flags += ["--clips-per-spec", "1", "--vae-steps", "0", "--vae-refine-steps", "0", "--threads", "1"]
    run(build_parser().parse_args([*flags, "--stop-after", "vae_refine"]))
    kept = AutoencoderKLCogVideoX.from_pretrained(tmp_path / "run" / "work" / "vae_refine")
    assert kept.config.scaling_factor == 0.7
    start_weights = start.state_dict()
    assert all(torch.equal(start_weights[name], weight) for name, weight in kept.state_dict().items())
    with pytest.raises(ValueError, match=r"`--vae-steps 0` keeps a given VAE as it is: give `--vae-init` or"):
        check_args(build_parser().parse_args(["--output-dir", str(tmp_path / "other"), "--vae-steps", "0"]))
