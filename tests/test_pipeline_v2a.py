import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler

from diffusers_lumina_video import LuminaV2APipeline, LuminaV2APipelineOutput, SynchformerVideoProcessor
from diffusers_lumina_video.pipelines.lumina_v2a.pipeline_lumina_v2a import (
    EXAMPLE_DOC_STRING,
    latent_frame_count,
    sync_segment_count,
)
from diffusers_lumina_video.showcase.builtin_models import (
    TINY_SYNC_DIM,
    tiny_random_pipeline,
    tiny_random_v2a_pipeline,
    tiny_v2a_components,
)
from diffusers_lumina_video.utils.media_io import export_to_video_with_audio, read_audio, read_video, write_wav


FAST = {"num_inference_steps": 2}


@pytest.fixture(scope="module")
def pipe():
    return tiny_random_v2a_pipeline()


def frames(count: int, seed: int = 0, size: tuple[int, int] = (40, 48)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (count, *size, 3), dtype=np.uint8)


def sync_for(duration: float, batch_size: int = 1, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, sync_segment_count(duration) * 8, TINY_SYNC_DIM, generator=generator)


def mmaudio_clock(rate: float, count: int) -> list[float]:
    """MMAudio's tick times: `1 / rate` added up in floating point (not `k / rate`)."""
    ticks, tick = [], 0.0
    for _ in range(count):
        ticks.append(tick)
        tick += 1 / rate
    return ticks


def first_frame_at_or_after(tick: float, fps: float, count: int) -> int:
    """The first of `count` frames stamped `i / fps` shown at `tick`, or the last frame past the end."""
    return next((i for i in range(count) if i / fps >= tick), count - 1)


@pytest.mark.parametrize(("duration", "segments"), [(0.5, 0), (0.64, 1), (1, 2), (2, 5), (5, 14), (8, 24), (10, 30)])
def test_sync_segment_count_follows_mmaudio(duration, segments):
    assert sync_segment_count(duration) == segments


def test_whole_pipeline_shapes_and_output_types(pipe):
    video = frames(30)  # 1.2 s at 25 fps
    output = pipe(video=video, fps=25, prompt="a dog", sync_features=sync_for(1.2), **FAST)
    assert isinstance(output, LuminaV2APipelineOutput) and output.sample_rate == 16000
    assert isinstance(output.audios, np.ndarray) and output.audios.shape == (1, 19200)
    latents = pipe(video=video, fps=25, sync_features=sync_for(1.2), output_type="latent", **FAST).audios
    assert latents.shape == (1, 8, latent_frame_count(1.2, 1), 16) == (1, 8, 30, 16)
    as_tensor = pipe(video=video, fps=25, sync_features=sync_for(1.2), output_type="pt", return_dict=False, **FAST)
    assert isinstance(as_tensor[0], torch.Tensor) and as_tensor[1] == 16000


@pytest.mark.parametrize(("fps", "count"), [(25, 25), (24, 30), (30, 41), (12, 17), (8, 11)])
def test_audio_lasts_as_long_as_the_video_to_one_hop(pipe, fps, count):
    duration = count / fps
    audio = pipe(video=frames(count), fps=fps, sync_features=sync_for(duration), **FAST).audios
    assert abs(audio.shape[1] - duration * 16000) <= 160


def test_float_frames_and_pil_images_read_as_the_same_video(pipe):
    video = frames(25)
    kwargs = {"fps": 25, "sync_features": sync_for(1.0), "output_type": "latent", **FAST}
    outputs = [
        pipe(video=v, **kwargs, generator=torch.Generator().manual_seed(0)).audios
        for v in (video, video.astype(np.float32) / 255, [PIL.Image.fromarray(f) for f in video])
    ]
    torch.testing.assert_close(outputs[1], outputs[0])
    torch.testing.assert_close(outputs[2], outputs[0])


def test_duration_cuts_the_video_and_a_batch_of_videos(pipe):
    videos = [frames(40, seed=1), list(PIL.Image.fromarray(f) for f in frames(40, seed=2))]
    audio = pipe(
        video=videos, fps=25, duration=1.0, prompt=["a", "b"], sync_features=sync_for(1.0, batch_size=2), **FAST
    ).audios
    assert audio.shape == (2, 16000)


@pytest.mark.parametrize(("fps", "count"), [(30, 45), (12, 18), (25, 40)])
def test_clip_sees_the_frames_at_8_fps_whatever_the_video_rate(pipe, fps, count):
    # Frame i is a flat grey of level 4 * i, so the level CLIP receives names the frame it was given.
    video = np.broadcast_to((4 * np.arange(count, dtype=np.uint8))[:, None, None, None], (count, 32, 32, 3))
    seen = []
    hook = pipe.image_encoder.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["pixel_values"]), with_kwargs=True
    )
    try:
        pipe(video=video.copy(), fps=fps, sync_features=sync_for(count / fps), **FAST)
    finally:
        hook.remove()
    processor = pipe.feature_extractor
    red = seen[0][:, 0] * processor.image_std[0] + processor.image_mean[0]
    levels = (red.mean(dim=(1, 2)) * 255).round().int().tolist()
    expected = [4 * first_frame_at_or_after(tick, fps, count) for tick in mmaudio_clock(8, int(8 * count / fps))]
    assert levels == expected


@pytest.mark.parametrize(("fps", "count"), [(30, 30), (12, 12), (25, 25)])
def test_synchformer_sees_the_frames_at_25_fps_in_overlapping_segments(pipe, fps, count):
    # Frame i is a flat grey of level 4 * i, so the level Synchformer receives names the frame it was given.
    video = np.broadcast_to((4 * np.arange(count, dtype=np.uint8))[:, None, None, None], (count, 32, 32, 3))
    seen = []
    hook = pipe.sync_encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        pipe(video=video.copy(), fps=fps, **FAST)
    finally:
        hook.remove()
    pixel_values = seen[0]  # [B, S, 16, 3, H, W] in [-1, 1]
    assert pixel_values.shape == (1, 2, 16, 3, 16, 16)  # 1 s: 25 frames, segments at frames 0 and 8
    levels = ((pixel_values[0, :, :, 0].mean(dim=(-1, -2)) + 1) / 2 * 255).round().int()
    # Tick k takes the first frame at or after it; the last frame serves the ticks past it.
    expected = torch.tensor([4 * first_frame_at_or_after(tick, fps, count) for tick in mmaudio_clock(25, 25)])
    assert levels[0].tolist() == expected[:16].tolist() and levels[1].tolist() == expected[8:24].tolist()


def test_precomputed_sync_features_stand_in_for_the_synchformer(pipe):
    video = frames(30)
    processor = SynchformerVideoProcessor.from_encoder(pipe.sync_encoder)
    sampled = processor.sample_frames(list(video), np.arange(30) / 25, duration=1.0)
    features = pipe.sync_encoder(processor(sampled)).features
    kwargs = {"video": video, "fps": 25, "duration": 1.0, "output_type": "latent", **FAST}
    encoded = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).audios
    given = pipe(**kwargs, sync_features=features, generator=torch.Generator().manual_seed(0)).audios
    torch.testing.assert_close(encoded, given)
    assert not torch.allclose(
        encoded, pipe(**kwargs, sync_features=features * 0, generator=torch.Generator().manual_seed(0)).audios
    )


def test_without_a_sync_encoder_sync_features_are_required():
    components = tiny_v2a_components()
    components["sync_encoder"] = None
    pipe = LuminaV2APipeline(**components)
    with pytest.raises(ValueError, match="no `sync_encoder`; pass precomputed `sync_features`"):
        pipe(video=frames(25), fps=25, **FAST)
    assert pipe(video=frames(25), fps=25, sync_features=sync_for(1.0), **FAST).audios.shape == (1, 16000)


def test_the_example_runs(pipe, tmp_path, monkeypatch):
    pipe.save_pretrained(tmp_path / "lumina-v2a")
    export_to_video_with_audio(
        frames(25, size=(32, 32)), np.zeros(16000, dtype=np.float32), 16000, tmp_path / "silent.mp4", 25
    )
    lines = [line.strip()[4:] for line in EXAMPLE_DOC_STRING.splitlines() if line.strip().startswith(">>>")]
    code = "\n".join(lines).replace("path/to/lumina-v2a", str(tmp_path / "lumina-v2a"))
    monkeypatch.chdir(tmp_path)
    exec(code, {})
    assert read_video(tmp_path / "with_sound.mp4").frames.shape[0] == 25
    assert abs(read_audio(tmp_path / "with_sound.mp4").shape[0] - 16000) <= 160


def test_a_video_file_is_read_with_its_own_frame_rate(pipe, tmp_path):
    path = tmp_path / "clip.mp4"
    export_to_video_with_audio(frames(24, size=(32, 32)), np.zeros(16000, dtype=np.float32) + 0.01, 16000, path, 24)
    audio = pipe(video=str(path), sync_features=sync_for(1.0), **FAST).audios
    assert abs(audio.shape[1] - 16000) <= 160


def _transformer_batch_sizes(pipe, **kwargs) -> list[int]:
    sizes = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kw: sizes.append(kw["hidden_states"].shape[0]), with_kwargs=True
    )
    try:
        pipe(video=frames(25), fps=25, sync_features=sync_for(1.0), **kwargs)
    finally:
        hook.remove()
    return sizes


def test_guidance_schedule_is_the_video_pipelines_and_skips_the_negative_branch(pipe):
    # Lumina time runs 0 (noise) -> 1 (data); with 4 steps the step times are 0, 0.25, 0.5, 0.75.
    assert _transformer_batch_sizes(pipe, num_inference_steps=4, guidance_scale=[(0.0, 5.0), (0.4, 1.0)]) == [
        2,
        2,
        1,
        1,
    ]
    assert _transformer_batch_sizes(pipe, num_inference_steps=2, guidance_scale=1.0) == [1, 1]
    with pytest.raises(ValueError, match="`guidance_scale` schedule must start at t_start 0.0"):
        pipe(video=frames(25), fps=25, sync_features=sync_for(1.0), guidance_scale=[(0.1, 2.0)])


def test_both_pipelines_resolve_a_guidance_schedule_on_the_same_time_grid(pipe):
    schedule = [(0.0, 5.0), (0.3, 2.0), (0.5, 1.0)]

    def guidance_per_step(pipeline, **kwargs) -> list[tuple[float, float]]:
        seen = []
        pipeline(
            **kwargs,
            num_inference_steps=5,
            guidance_scale=schedule,
            output_type="latent",
            callback_on_step_end=lambda p, i, t, tensors: seen.append(
                (round(1 - float(p.scheduler.sigmas[i]), 6), p.guidance_scale)
            ),
        )
        return seen

    video_pipe = tiny_random_pipeline()
    video_pipe.register_modules(scheduler=FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config))
    from_video = guidance_per_step(video_pipe, prompt="a dog", height=32, width=32, num_frames=5)
    from_audio = guidance_per_step(pipe, video=frames(25), fps=25, sync_features=sync_for(1.0))
    assert from_audio == from_video
    assert [value for _, value in from_audio] == [5.0, 5.0, 2.0, 1.0, 1.0]


def test_negative_branch_drops_visual_and_sync_and_uses_the_negative_prompt(pipe):
    seen = []
    hook = pipe.transformer.register_forward_pre_hook(lambda m, a, kw: seen.append(kw), with_kwargs=True)
    try:
        pipe(video=frames(25), fps=25, sync_features=sync_for(1.0), guidance_scale=3.0, **FAST)
        pipe(video=frames(25), fps=25, sync_features=sync_for(1.0), guidance_scale=3.0, negative_prompt="x", **FAST)
    finally:
        hook.remove()
    without, with_negative = seen[0], seen[-1]
    assert without["drop_visual"].tolist() == [False, True] and without["drop_sync"].tolist() == [False, True]
    assert without["drop_text"].tolist() == [False, True]
    assert with_negative["drop_text"].tolist() == [False, False]


def _latents_with_sync_event(pipe, tubelet: int) -> torch.Tensor:
    """Latents for a 1.6 s video (4 Synchformer segments, 20 tubelets of 0.08 s, 40 latent frames) whose only sync
    event is at `tubelet`, seen by both segments that hold it."""
    sync = torch.zeros(1, 32, TINY_SYNC_DIM)
    segment, position = divmod(tubelet, 4)
    for s, j in ((segment, position), (segment - 1, position + 4)):
        if 0 <= s < 4:
            sync[0, 8 * s + j] = 5.0
    return pipe(
        video=frames(40),
        fps=25,
        sync_features=sync,
        output_type="latent",
        generator=torch.Generator().manual_seed(0),
        guidance_scale=1.0,
        **FAST,
    ).audios


def test_a_sync_event_changes_the_audio_where_it_happens(pipe):
    quiet = pipe(
        video=frames(40),
        fps=25,
        sync_features=torch.zeros(1, 32, TINY_SYNC_DIM),
        output_type="latent",
        generator=torch.Generator().manual_seed(0),
        guidance_scale=1.0,
        **FAST,
    ).audios
    for tubelet in (2, 16):
        change = (_latents_with_sync_event(pipe, tubelet) - quiet).abs().mean(dim=(0, 1, 3))
        # Tubelet g covers 0.08 g .. 0.08 (g + 1) s: latent frames 2g and 2g + 1, and the width-7 convolution over
        # tubelets reaches 3 tubelets either side. The audio changes there, and far less anywhere else.
        near = torch.zeros(40, dtype=torch.bool)
        near[max(0, 2 * (tubelet - 3)) : 2 * (tubelet + 3) + 2] = True
        assert change[near].mean() > 10 * change[~near].mean(), (tubelet, change)


def test_callbacks_see_and_replace_latents(pipe):
    seen = []

    def callback(p, step, timestep, tensors):
        seen.append((step, tensors["latents"].shape))
        return {"latents": tensors["latents"] * 0}

    output = pipe(
        video=frames(25),
        fps=25,
        sync_features=sync_for(1.0),
        output_type="latent",
        callback_on_step_end=callback,
        **FAST,
    )
    assert [step for step, _ in seen] == [0, 1] and torch.count_nonzero(output.audios) == 0


def test_save_load_round_trip(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    loaded = DiffusionPipeline.from_pretrained(tmp_path)
    assert isinstance(loaded, LuminaV2APipeline)
    kwargs = {"video": frames(25), "fps": 25, "sync_features": sync_for(1.0), "output_type": "latent", **FAST}
    torch.testing.assert_close(
        loaded(**kwargs, generator=torch.Generator().manual_seed(3)).audios,
        pipe(**kwargs, generator=torch.Generator().manual_seed(3)).audios,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"video": np.zeros((0, 32, 32, 3), np.uint8)}, "`video` has no frames"),
        ({"video": np.zeros((25, 32, 32, 4), np.uint8)}, r"must be \[F, H, W, 3\]"),
        ({"video": np.zeros((1, 32, 32, 3), np.uint8)}, "has 1 frame"),
        ({"video": frames(10)}, "Synchformer needs at least 0.64 s"),
        ({"video": frames(25 * 11)}, "generates at most 10.24 s"),
        ({"fps": 0}, "`fps` must be a positive number"),
        ({"fps": None}, "`fps` must be a positive number"),
        ({"duration": 2.0}, r"`duration` 2.0 s is longer than the video \(1.000 s\)"),
        ({"duration": -1}, "`duration` must be a positive number"),
        ({"sync_features": torch.randn(1, 8, TINY_SYNC_DIM)}, r"`sync_features` must be \[B, S\*8, D\]"),
        ({"sync_features": torch.randn(1, 16, 3)}, r"`sync_features` must be \[B, S\*8, D\]"),
        ({"prompt": ["a", "b"]}, "`prompt` has 2 entries, but there are 1 videos"),
        ({"negative_prompt": 3}, "`negative_prompt` must be a string or a list of strings"),
        ({"num_inference_steps": 0}, "`num_inference_steps` must be an integer >= 1"),
        ({"output_type": "wav"}, "`output_type` must be one of"),
        ({"callback_on_step_end_tensor_inputs": ["noise"]}, "`callback_on_step_end_tensor_inputs` has"),
        ({"video": np.full((25, 8, 8, 3), 2.0)}, "must be finite and in"),
        ({"latents": torch.randn(1, 8, 7, 16)}, r"`latents` must have shape \(1, 8, 25, 16\)"),
    ],
)
def test_bad_inputs_are_refused_before_any_model_runs(pipe, kwargs, message):
    calls = []
    hook = pipe.transformer.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ValueError, match=message):
            pipe(**{"video": frames(25), "fps": 25, "sync_features": sync_for(1.0), **kwargs})
    finally:
        hook.remove()
    assert not calls


def test_a_missing_file_is_named(pipe):
    with pytest.raises(FileNotFoundError, match="`video` /does/not/exist.mp4 does not exist"):
        pipe(video="/does/not/exist.mp4", sync_features=sync_for(1.0))


def test_a_file_that_is_not_a_video_is_refused(pipe, tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(ValueError, match="`video` cannot be used: `path` .*notes.mp4 is not a media file"):
        pipe(video=str(path), sync_features=sync_for(1.0))


def test_a_file_without_video_frames_is_refused(pipe, tmp_path):
    path = write_wav(np.full(16000, 0.1, dtype=np.float32), tmp_path / "sound.wav")
    with pytest.raises(ValueError, match="`video` cannot be used: `path` .*sound.wav has no video stream"):
        pipe(video=path, sync_features=sync_for(1.0))


def test_a_lora_of_the_v2a_transformer_loads_through_the_pipeline(tmp_path):
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from diffusers_lumina_video.loaders.lora_pipeline import LUMINA_VIDEO_LORA_TARGET_MODULES
    from diffusers_lumina_video.showcase.builtin_models import tiny_v2a_transformer

    torch.manual_seed(1)
    trained = tiny_v2a_transformer()
    trained.add_adapter(
        LoraConfig(r=4, target_modules=list(LUMINA_VIDEO_LORA_TARGET_MODULES), init_lora_weights=False)
    )
    LuminaV2APipeline.save_lora_weights(tmp_path, transformer_lora_layers=get_peft_model_state_dict(trained))

    pipe = tiny_random_v2a_pipeline()
    kwargs = {"video": frames(25), "fps": 25, "sync_features": sync_for(1.0), "output_type": "latent", **FAST}
    base = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).audios
    pipe.load_lora_weights(tmp_path)
    adapted = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).audios
    assert not torch.allclose(base, adapted)
    pipe.set_adapters(["default_0"], [0.0])
    torch.testing.assert_close(pipe(**kwargs, generator=torch.Generator().manual_seed(0)).audios, base)


def test_first_block_cache_engages_and_restarts_when_guidance_switches_off():
    from diffusers.hooks import FirstBlockCacheConfig

    pipe = tiny_random_v2a_pipeline()
    kwargs = {"video": frames(25), "fps": 25, "output_type": "latent", "num_inference_steps": 6}
    kwargs["guidance_scale"] = [(0.0, 3.0), (0.5, 1.0)]
    reference = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).audios
    block_calls = []
    hook = pipe.transformer.layers[1].feed_forward.register_forward_pre_hook(lambda *a: block_calls.append(1))
    pipe.transformer.enable_cache(FirstBlockCacheConfig(threshold=10.0))
    try:
        cached = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).audios
    finally:
        pipe.transformer.disable_cache()
        hook.remove()
    assert cached.shape == reference.shape and torch.isfinite(cached).all()
    # A huge threshold reuses every step after the first of each kind of call: 2 kinds, so 2 full runs.
    assert len(block_calls) == 2
    from diffusers.hooks import MagCacheConfig

    pipe.transformer.enable_cache(MagCacheConfig(num_inference_steps=6, mag_ratios=[1.0] * 6))
    try:
        with pytest.raises(ValueError, match="MagCache needs one kind of transformer call"):
            pipe(**kwargs)
    finally:
        pipe.transformer.disable_cache()
