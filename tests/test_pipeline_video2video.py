"""`LuminaVideoVideoToVideoPipeline`: its inputs, sizes and strength, the text-to-video parity at strength 1, the
rectified-flow start, callbacks and outputs, and the text-to-video features (caches, offload, LoRA, compile) on it."""

import accelerate
import diffusers
import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DiffusionPipeline, FirstBlockCacheConfig, TaylorSeerCacheConfig
from diffusers.utils import export_to_video
from torch._dynamo.testing import CompileCounterWithBackend

import diffusers_lumina_video
from diffusers_lumina_video import LuminaVideoPipeline, LuminaVideoVideoToVideoPipeline
from diffusers_lumina_video.pipelines.lumina_video import denoising
from diffusers_lumina_video.showcase.builtin_models import tiny_random_pipeline


STEPS = 4
SMALL = {"height": 32, "width": 32, "num_inference_steps": STEPS, "guidance_scale": 2.0}


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _clip(num_frames: int = 5, height: int = 32, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def t2v() -> LuminaVideoPipeline:
    pipe = tiny_random_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipe(t2v) -> LuminaVideoVideoToVideoPipeline:
    return LuminaVideoVideoToVideoPipeline.from_pipe(t2v)


def _run(pipe, video=None, **kwargs):
    call = {"prompt": "a cat", "generator": _seeded(), "output_type": "latent", **SMALL, **kwargs}
    return pipe(video=video, **call).frames


@pytest.fixture
def no_model_work(pipe, monkeypatch):
    """Fails the test if the VAE encodes or the transformer or text encoder runs."""

    def fail(*args, **kwargs):
        raise AssertionError("model work before the inputs were checked")

    for module in (pipe.vae, pipe.transformer, pipe.text_encoder):
        monkeypatch.setattr(module, "forward", fail)
    monkeypatch.setattr(pipe.vae, "encode", fail)


# ---------------------------------------------------------------- loading
def test_registered_and_loads_from_any_lumina_video_folder(tiny_pipeline_dir, t2v):
    assert diffusers_lumina_video.LuminaVideoVideoToVideoPipeline is LuminaVideoVideoToVideoPipeline
    assert diffusers.LuminaVideoVideoToVideoPipeline is LuminaVideoVideoToVideoPipeline
    loaded = LuminaVideoVideoToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    assert type(loaded) is LuminaVideoVideoToVideoPipeline
    assert type(DiffusionPipeline.from_pretrained(tiny_pipeline_dir)) is LuminaVideoPipeline  # the folder's own
    shared = LuminaVideoVideoToVideoPipeline.from_pipe(t2v)
    assert shared.transformer is t2v.transformer and shared.vae is t2v.vae


# ---------------------------------------------------------------- strength and the time axis
def test_strength_one_is_text_to_video_with_the_same_noise(pipe, t2v):
    expected = t2v("a cat", num_frames=5, generator=_seeded(), output_type="latent", **SMALL).frames
    torch.testing.assert_close(_run(pipe, _clip(), strength=1.0), expected)  # same generator, the video fully noised
    noise = torch.randn(1, 4, 2, 4, 4, generator=_seeded(3))
    expected = t2v("a cat", latents=noise, output_type="latent", **SMALL).frames
    torch.testing.assert_close(_run(pipe, latents=noise, strength=1.0), expected)


@pytest.mark.parametrize(("strength", "first"), [(1.0, 0), (0.75, 1), (0.5, 2), (0.3, 3)])
def test_strength_runs_the_last_steps_of_the_text_to_video_grid(pipe, t2v, strength, first):
    t2v("a cat", num_frames=5, output_type="latent", **SMALL)
    grid = t2v.scheduler.timesteps.clone()
    seen = []
    _run(pipe, _clip(), strength=strength, callback_on_step_end=lambda p, i, t, _: seen.append((i, t)) or {})
    assert [i for i, _ in seen] == list(range(STEPS - first))
    torch.testing.assert_close(torch.stack([t for _, t in seen]), grid[first:])
    assert pipe.num_timesteps == STEPS - first


def test_start_is_the_video_noised_to_the_first_kept_time(pipe, monkeypatch):
    """With a zero velocity nothing moves, so the output is the start: `t * video + (1 - t) * noise`."""
    monkeypatch.setattr(
        denoising, "video_velocity", lambda transformer, guider, latents, *args: torch.zeros_like(latents)
    )
    clip = _clip()
    start = _run(pipe, clip, strength=0.5)
    pixels = pipe.video_processor.preprocess_video(
        [PIL.Image.fromarray(f) for f in np.concatenate([clip, clip[-1:].repeat(3, axis=0)])], 32, 32
    )
    video = pipe.vae.encode(pixels).latent_dist.mode() * pipe.vae.config.scaling_factor
    noise = torch.randn(video.shape, generator=_seeded())
    time = 1.0 - float(pipe.scheduler.sigmas[0])  # the grid starts at its third point (index 2 of 4)
    assert 0.0 < time < 1.0
    torch.testing.assert_close(start, time * video + (1 - time) * noise, atol=1e-5, rtol=1e-5)


def test_schedules_are_read_on_the_text_to_video_time_axis(pipe, monkeypatch):
    """A late start meets only the late values of the time-aware arguments: here the fine patch and no guidance."""
    velocity = denoising.video_velocity
    steps = []

    def recording(transformer, guider, latents, time, text, motion_score, patch_size, *args):
        steps.append((round(time, 3), tuple(patch_size), guider.num_conditions > 1))
        return velocity(transformer, guider, latents, time, text, motion_score, patch_size, *args)

    monkeypatch.setattr(denoising, "video_velocity", recording)
    # The tiny pipeline's grid (shift 8, 4 steps) starts its steps at t = 0, 0.04, 0.11 and 0.27.
    schedules = {"patch_size": [(0.0, (2, 4, 4)), (0.1, (1, 2, 2))], "guidance_scale": [(0.0, 4.0), (0.1, 1.0)]}
    _run(pipe, _clip(), strength=1.0, **schedules)
    full = list(steps)
    steps.clear()
    _run(pipe, _clip(), strength=0.5, **schedules)
    assert steps == full[2:]
    assert all(patch == (1, 2, 2) and not guided for _, patch, guided in steps)
    assert {patch for _, patch, _ in full[:2]} == {(2, 4, 4)}


# ---------------------------------------------------------------- inputs, sizes, outputs
def test_every_kind_of_video_input_gives_the_same_result(pipe, tmp_path):
    clip = _clip()
    expected = _run(pipe, clip, strength=0.5)
    as_float = clip.astype(np.float32) / 255
    for video in (as_float, torch.from_numpy(clip), [PIL.Image.fromarray(frame) for frame in clip], clip[None]):
        torch.testing.assert_close(_run(pipe, video, strength=0.5), expected)
    path = tmp_path / "clip.mp4"
    export_to_video(list(as_float), str(path), fps=8)
    assert _run(pipe, str(path), strength=0.5).shape == expected.shape  # lossy, so only the shape is the same


def test_size_and_frame_count_follow_the_video_unless_given(pipe):
    # 44 x 70 rounds to multiples of 16 (8 x the (1, 2, 2) patch): 48 x 64; all 6 frames (the VAE's 8, cropped).
    frames = pipe(video=_clip(6, 44, 70), prompt="a cat", strength=0.5, num_inference_steps=2, output_type="np")
    assert frames.frames.shape == (1, 6, 48, 64, 3)
    given = pipe(
        video=_clip(9, 44, 70), prompt="a cat", strength=0.5, num_inference_steps=2, height=32, width=64, num_frames=3
    )
    assert given.frames.shape == (1, 3, 32, 64, 3)
    multi_scale = pipe(
        video=_clip(1, 40, 40), prompt="a cat", num_inference_steps=2, patch_size=(2, 4, 4), output_type="pt"
    )
    assert multi_scale.frames.shape == (1, 1, 3, 32, 32)  # multiples of 32 for the (2, 4, 4) patch; one frame


def test_first_frames_are_used_and_the_video_is_cropped_not_stretched(pipe, monkeypatch):
    encoded = []
    encode = pipe.encode_video
    monkeypatch.setattr(pipe, "encode_video", lambda pixels, device: encoded.append(pixels) or encode(pixels, device))
    clip = np.zeros((9, 32, 64, 3), dtype=np.uint8)
    clip[:, :, 16:48] = 255  # a white band in the middle half of a 2:1 frame
    clip[5:] = 0
    pipe(video=clip, prompt="a cat", width=32, num_frames=5, num_inference_steps=1, strength=1.0, output_type="latent")
    pixels = encoded[0]
    assert pixels.shape == (1, 3, 8, 32, 32)  # 5 frames need 2 latent frames, which the VAE makes of 8
    assert torch.all(pixels > 0.99)  # the centre crop of the first five frames, the fifth repeated: all white


@pytest.mark.parametrize("output_type", ["np", "pil", "pt", "latent"])
def test_output_types(pipe, output_type):
    output = pipe(video=_clip(), prompt=["a cat", "a dog"], num_videos_per_prompt=2, strength=0.5, **SMALL,
                  output_type=output_type)  # fmt: skip
    frames = output.frames
    if output_type == "pil":
        assert len(frames) == 4 and len(frames[0]) == 5 and frames[0][0].size == (32, 32)
    else:
        expected = {"np": (4, 5, 32, 32, 3), "pt": (4, 5, 3, 32, 32), "latent": (4, 4, 2, 4, 4)}[output_type]
        assert tuple(frames.shape) == expected
    assert isinstance(pipe(video=_clip(), prompt="a cat", **SMALL, return_dict=False), tuple)


def test_one_video_per_prompt(pipe):
    videos = [_clip(seed=1), _clip(seed=2)]
    both = _run(pipe, videos, prompt=["a cat", "a cat"], strength=0.5, generator=[_seeded(0), _seeded(1)])
    alone = _run(pipe, videos[1], strength=0.5, generator=_seeded(1))
    assert not torch.allclose(both[0], both[1])
    torch.testing.assert_close(both[1:], alone, atol=1e-4, rtol=1e-4)  # the noise differs only by batch position


def test_callback_may_replace_latents_and_turn_guidance_off(pipe):
    def callback(p, i, t, tensors):
        p._guidance_scale = 1.0
        return {"latents": torch.zeros_like(tensors["latents"])} if i == 0 else {}

    output = _run(pipe, _clip(), strength=0.5, callback_on_step_end=callback)
    assert output.shape == (1, 4, 2, 4, 4) and torch.isfinite(output).all()


# ---------------------------------------------------------------- refused before model work
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strength": 0.0}, r"`strength` must be a number in \(0, 1\], got 0.0"),
        ({"strength": 1.5}, r"`strength` must be a number in \(0, 1\], got 1.5"),
        ({"strength": float("nan")}, r"`strength` must be a number in \(0, 1\], got nan"),
        ({"strength": True}, r"`strength` must be a number in \(0, 1\], got True"),
        ({"strength": 0.2}, r"`strength=0.2` keeps no step of `num_inference_steps=4` \(the last int\(4 x 0.2\)"),
        ({"video": None}, "Pass exactly one of `video` and `latents`"),
        ({"latents": torch.zeros(1, 4, 2, 4, 4)}, "Pass exactly one of `video` and `latents`"),
        ({"video": []}, "`video` is an empty list of frames"),
        ({"video": np.zeros((0, 32, 32, 3), np.uint8)}, "`video` has no frames"),
        ({"video": np.zeros((5, 32, 32), np.uint8)}, r"`video` frames must be \[F, H, W, 3\]"),
        ({"video": "/no/such/clip.mp4"}, "`video` /no/such/clip.mp4 does not exist"),
        ({"video": [_clip()] * 3}, r"`video` holds 3 videos; pass one \(for every prompt\) or one per prompt \(1\)"),
        ({"num_frames": 6}, r"`num_frames=6` is more than `video` has \(5 frames\); pass at most 5"),
        ({"height": 40}, "`height` and `width` must be positive multiples of 16"),
        ({"prompt": None}, "Pass exactly one of `prompt` and `prompt_embeds`"),
    ],
)
def test_bad_inputs_are_refused_before_model_work(pipe, no_model_work, change, message):
    call = {"video": _clip(), "prompt": "a cat", **SMALL, **change}
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        pipe(**call)


def test_unreadable_video_file_is_refused(pipe, no_model_work, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    with pytest.raises(ValueError, match="`video` cannot be used: `path` .*broken.mp4 is not a media file"):
        pipe(video=str(broken), prompt="a cat", **SMALL)


# ---------------------------------------------------------------- text-to-video features
@pytest.mark.parametrize(
    "config", [FirstBlockCacheConfig(threshold=0.5), TaylorSeerCacheConfig(cache_interval=2)], ids=["fbc", "taylor"]
)
def test_caches_work_on_a_late_start(config):
    pipe = LuminaVideoVideoToVideoPipeline.from_pipe(tiny_random_pipeline())
    calls = [0]
    for layer in pipe.transformer.layers:
        layer.attn.to_q.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    call = {"num_inference_steps": 10, "strength": 0.6}
    reference = _run(pipe, _clip(), **call)
    uncached, calls[0] = calls[0], 0
    pipe.transformer.enable_cache(config)
    cached = _run(pipe, _clip(), **call)
    assert calls[0] < uncached
    assert ((cached - reference).norm() / reference.norm()).item() < 0.1


@pytest.fixture
def cpu_execution_device(monkeypatch):
    """As in test_offload.py: sequential offload onto `cpu` without the index accelerate cannot handle."""
    offload = accelerate.cpu_offload
    monkeypatch.setattr(
        accelerate, "cpu_offload", lambda m, execution_device=None, **k: offload(m, torch.device("cpu"), **k)
    )


@pytest.mark.parametrize("offload", ["model", "group", "sequential"])
def test_offload_matches(offload, request):
    reference = _run(LuminaVideoVideoToVideoPipeline.from_pipe(tiny_random_pipeline()), _clip(), strength=0.5)
    pipe = LuminaVideoVideoToVideoPipeline.from_pipe(tiny_random_pipeline())
    if offload == "model":  # the VAE encodes between the text encoder and the transformer
        pipe.enable_model_cpu_offload(device="cpu")
    elif offload == "group":
        cpu = torch.device("cpu")
        pipe.enable_group_offload(onload_device=cpu, offload_device=cpu, offload_type="block_level",
                                  num_blocks_per_group=1)  # fmt: skip
    else:
        request.getfixturevalue("cpu_execution_device")
        pipe.enable_sequential_cpu_offload(device="cpu")
        assert pipe.vae.encoder.conv_in.conv.weight.device.type == "meta"
    torch.testing.assert_close(_run(pipe, _clip(), strength=0.5), reference)


def test_lora_loaded_into_text_to_video_reaches_video_to_video(tmp_path):
    from test_lora import save_lora

    save_lora(tmp_path)
    t2v = tiny_random_pipeline()
    base = _run(LuminaVideoVideoToVideoPipeline.from_pipe(t2v), _clip(), strength=0.5)
    t2v.load_lora_weights(tmp_path, adapter_name="style")
    pipe = LuminaVideoVideoToVideoPipeline.from_pipe(t2v)
    half = _run(pipe, _clip(), strength=0.5, attention_kwargs={"scale": 0.5})
    assert not torch.allclose(half, base, atol=1e-3)
    pipe.set_adapters("style", adapter_weights=0.5)
    torch.testing.assert_close(_run(pipe, _clip(), strength=0.5), half, atol=1e-5, rtol=0)


def test_compile_without_graph_breaks_or_recompilation():
    torch._dynamo.reset()
    pipe = LuminaVideoVideoToVideoPipeline.from_pipe(tiny_random_pipeline())
    call = {"strength": 0.75, "patch_size": [(0.0, (2, 4, 4)), (0.1, (1, 2, 2))]}  # steps 1 coarse, 2 and 3 fine
    eager = _run(pipe, _clip(), **call)
    counter = CompileCounterWithBackend("aot_eager")
    pipe.transformer.compile_repeated_blocks(fullgraph=True, backend=counter)
    torch.testing.assert_close(_run(pipe, _clip(), **call), eager, atol=1e-4, rtol=1e-4)
    first_run = counter.frame_count
    assert 1 <= first_run <= 3  # as text-to-video's bound for these calls (test_compile.py), fewer than the 6 calls
    _run(pipe, _clip(), strength=0.5, **{k: v for k, v in call.items() if k != "strength"})
    assert counter.frame_count == first_run  # a later start compiles nothing new
