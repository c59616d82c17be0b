import json
from pathlib import Path

import pytest
import torch
from diffusers import AutoModel, DiffusionPipeline
from safetensors.torch import load_file

from diffusers_lumina_video import SynchformerEncoder, SynchformerEncoderOutput, SynchformerVideoProcessor
from diffusers_lumina_video.loaders.single_file_synchformer import (
    convert_synchformer_checkpoint_to_diffusers,
    infer_synchformer_config,
)
from diffusers_lumina_video.loaders.single_file_utils import CheckpointFormatError, UnsafeCheckpointError


GOLDEN_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "golden" / "synchformer_tiny"
CHECKPOINT = GOLDEN_DIR / "synchformer_state_dict.pth"
SHAPES_MANIFEST = GOLDEN_DIR.parents[1] / "reference" / "synchformer_state_dict_shapes.json"
# golden/synchformer_tiny/README.md: a faithful float32 port lands within ~5e-6; preprocessing is exact.
FEATURE_TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}
PREPROCESS_TOLERANCE = {"atol": 1e-6, "rtol": 0}
TINY_HEADS = 4


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN_DIR / "golden.safetensors"))


@pytest.fixture(scope="module")
def encoder() -> SynchformerEncoder:
    return SynchformerEncoder.from_single_file(CHECKPOINT, num_attention_heads=TINY_HEADS)


@pytest.fixture(scope="module")
def golden_run(encoder, golden) -> dict[str, torch.Tensor]:
    """The encoder's output on the golden segments, plus the intermediates the fixture records, read by hooks."""
    captured = {}

    def keep(name, reshape=lambda tensor: tensor):
        return lambda module, inputs, output: captured.__setitem__(name, reshape(output))

    steps, side = encoder.temp_embed.shape[1], encoder.config.frame_size // encoder.config.patch_size
    to_grid = lambda tokens: tokens.transpose(1, 2).unflatten(2, (steps, side, side))  # noqa: E731
    hooks = [
        encoder.patch_embed.register_forward_hook(keep("patch_embed_3d_out")),
        encoder.blocks[0].register_forward_hook(keep("block_0_out")),
        encoder.blocks[1].register_forward_hook(keep("block_1_out")),
        encoder.norm_out.register_forward_hook(keep("spatial_attn_agg_in", to_grid)),
    ]
    try:
        with torch.inference_mode():
            output = encoder(golden["x"])
    finally:
        for hook in hooks:
            hook.remove()
    captured["features_flat"] = output.features
    captured["features"] = output.features.unflatten(1, (golden["x"].shape[1], -1))
    return captured


def _max_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return (actual - expected).abs().max().item()


# ------------------------------------------------------------------------------------------------ golden parity
@pytest.mark.parametrize(
    "case", ["features", "features_flat", "patch_embed_3d_out", "block_0_out", "block_1_out", "spatial_attn_agg_in"]
)
def test_golden_features(golden_run, golden, case):
    torch.testing.assert_close(golden_run[case], golden[case], **FEATURE_TOLERANCE)


def test_golden_config_from_tensor_shapes(encoder):
    reference = json.loads((GOLDEN_DIR / "config.json").read_text())["hyperparameters"]
    config = encoder.config
    assert config.hidden_size == reference["VIT.EMBED_DIM"]["tiny"]
    assert config.num_layers == reference["VIT.DEPTH"]["tiny"]
    assert config.ffn_dim == reference["VIT.MLP_RATIO"]["tiny"] * config.hidden_size
    assert (config.patch_size, config.temporal_patch_size) == (16, 2)
    assert (config.frame_size, config.num_frames) == (48, 16)


def test_golden_raw_frames(encoder, golden):
    processor = SynchformerVideoProcessor.from_encoder(encoder)
    preprocessed = processor.preprocess(golden["raw_frames_uint8"])
    torch.testing.assert_close(preprocessed, golden["raw_preprocessed"], **PREPROCESS_TOLERANCE)
    pixel_values = processor.segment(preprocessed)
    assert pixel_values.shape == (1, 3, 16, 3, 48, 48)
    torch.testing.assert_close(pixel_values[:, 1], preprocessed[:, 8:24])
    with torch.inference_mode():
        features = encoder(processor(golden["raw_frames_uint8"])).features
    torch.testing.assert_close(features, golden["raw_features_flat"], **FEATURE_TOLERANCE)


@pytest.mark.parametrize("case", ["pre224_up", "pre224_down"])
def test_golden_pre224(golden, case):
    processed = SynchformerVideoProcessor(frame_size=224).preprocess(golden[f"{case}_raw_uint8"])
    torch.testing.assert_close(processed, golden[f"{case}_out"], **PREPROCESS_TOLERANCE)


# ----------------------------------------------------------------------------------------------- full-size weights
def test_full_size_mapping_on_meta_device():
    manifest = json.loads(SHAPES_MANIFEST.read_text())
    original = {key: torch.empty(shape, device="meta") for key, shape in manifest["shapes"].items()}
    assert len(original) == manifest["num_tensors"] == 238
    # The released file also holds the rest of the sync model; those keys are dropped.
    original["afeat_extractor.blocks.0.weight"] = torch.empty(8, device="meta")
    original["transformer.pos_emb"] = torch.empty(4, 4, device="meta")

    config = infer_synchformer_config(original)
    with torch.device("meta"):
        model = SynchformerEncoder(**config)
        default = SynchformerEncoder()
    public = lambda cfg: {k: v for k, v in cfg.items() if not k.startswith("_")}  # noqa: E731
    assert public(model.config) == public(default.config)  # the defaults are the released model

    expected = model.state_dict()
    converted = convert_synchformer_checkpoint_to_diffusers(original, expected_shapes=expected)
    assert set(converted) == set(expected)
    assert all(converted[name].shape == tensor.shape for name, tensor in expected.items())
    # 122,440,704 parameters in the manifest, less the unused 2-D patch embedding (768*3*16*16 + 768 = 590,592).
    patch_embed_2d = sum(original[f"vfeat_extractor.patch_embed.proj.{n}"].numel() for n in ("weight", "bias"))
    assert patch_embed_2d == 590_592
    assert sum(p.numel() for p in model.parameters()) == manifest["num_params"] - patch_embed_2d == 121_850_112
    assert len(converted) == 236


# -------------------------------------------------------------------------------------------- save / load / register
def test_save_load_roundtrip_and_automodel(encoder, golden, tmp_path):
    encoder.save_pretrained(tmp_path)
    x = golden["x"][:1, :1]
    with torch.no_grad():
        expected = encoder(x).features
        for loaded in (SynchformerEncoder.from_pretrained(tmp_path), AutoModel.from_pretrained(str(tmp_path))):
            assert isinstance(loaded, SynchformerEncoder) and loaded.config.num_attention_heads == TINY_HEADS
            torch.testing.assert_close(loaded(x).features, expected, atol=0, rtol=0)


class _EncoderOnlyPipeline(DiffusionPipeline):
    def __init__(self, sync_encoder: SynchformerEncoder):
        super().__init__()
        self.register_modules(sync_encoder=sync_encoder)


def test_loads_as_pipeline_component(encoder, tmp_path):
    _EncoderOnlyPipeline(sync_encoder=encoder).save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["sync_encoder"] == ["diffusers_lumina_video", "SynchformerEncoder"]
    pipe = _EncoderOnlyPipeline.from_pretrained(tmp_path)
    assert isinstance(pipe.sync_encoder, SynchformerEncoder)


def test_return_tuple_and_dtype(encoder, golden):
    x = golden["x"][:1, :2]
    with torch.no_grad():
        output = encoder(x)
        (features,) = encoder(x, return_dict=False)
        half = SynchformerEncoder.from_single_file(
            CHECKPOINT, num_attention_heads=TINY_HEADS, torch_dtype=torch.bfloat16
        )
        half_features = half(x).features
    assert isinstance(output, SynchformerEncoderOutput) and output.features.shape == (1, 16, 64)
    torch.testing.assert_close(features, output.features, atol=0, rtol=0)
    assert half_features.dtype == torch.bfloat16 and half.patch_embed.proj.weight.dtype == torch.bfloat16
    torch.testing.assert_close(half_features.float(), output.features, atol=0.15, rtol=0.05)


def test_segments_are_independent(encoder, golden):
    with torch.no_grad():
        batched = encoder(golden["x"]).features
        single = encoder(golden["x"][1:, 2:]).features
    torch.testing.assert_close(single, batched[1:, 16:], atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------------- bad inputs
def _write(state_dict: dict, path: Path) -> Path:
    torch.save(state_dict, path)
    return path


@pytest.fixture(scope="module")
def original_state_dict() -> dict[str, torch.Tensor]:
    return torch.load(CHECKPOINT, weights_only=True)


def test_head_count_must_divide_embed_dim():
    with pytest.raises(ValueError, match="`num_attention_heads` must divide the checkpoint's embed dim 64, got 3"):
        SynchformerEncoder.from_single_file(CHECKPOINT, num_attention_heads=3)
    with pytest.raises(ValueError, match="`num_attention_heads` must be a positive integer, got 0"):
        SynchformerEncoder.from_single_file(CHECKPOINT, num_attention_heads=0)
    with pytest.raises(ValueError, match="`num_attention_heads` must divide `hidden_size` 64, got 6"):
        SynchformerEncoder(hidden_size=64, num_attention_heads=6)


def test_bad_loader_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="`pretrained_model_link_or_path` .*absent.pth is not a file"):
        SynchformerEncoder.from_single_file(tmp_path / "absent.pth", num_attention_heads=4)
    with pytest.raises(ValueError, match="`torch_dtype` must be a floating-point `torch.dtype`, got torch.int8"):
        SynchformerEncoder.from_single_file(CHECKPOINT, num_attention_heads=4, torch_dtype=torch.int8)


def test_missing_key_is_named(original_state_dict, tmp_path):
    broken = {k: v for k, v in original_state_dict.items() if k != "vfeat_extractor.blocks.1.timeattn.proj.weight"}
    with pytest.raises(
        CheckpointFormatError, match=r"encoder its shapes describe; missing weights: blocks.1.time_attn.to_out.weight$"
    ):
        SynchformerEncoder.from_single_file(_write(broken, tmp_path / "missing.pth"), num_attention_heads=4)
    required = {k: v for k, v in original_state_dict.items() if k != "vfeat_extractor.temp_embed"}
    with pytest.raises(
        CheckpointFormatError, match=r"Not a Synchformer checkpoint: missing vfeat_extractor.temp_embed"
    ):
        SynchformerEncoder.from_single_file(_write(required, tmp_path / "required.pth"), num_attention_heads=4)


def test_wrong_shape_and_extra_key_are_named(original_state_dict, tmp_path):
    broken = dict(original_state_dict)
    broken["vfeat_extractor.blocks.0.mlp.fc2.weight"] = torch.zeros(64, 128)
    broken["vfeat_extractor.blocks.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(
        CheckpointFormatError,
        match=r"unexpected keys: vfeat_extractor.blocks.0.extra.weight; "
        r"wrong shapes: vfeat_extractor.blocks.0.mlp.fc2.weight \[64, 128\] \(expected \[64, 256\]\)",
    ):
        SynchformerEncoder.from_single_file(_write(broken, tmp_path / "shape.pth"), num_attention_heads=4)


class _Payload:
    """Unpickling this creates `marker`: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_non_tensor_pickle_is_refused(original_state_dict, tmp_path):
    marker = tmp_path / "payload_ran"
    path = _write({**original_state_dict, "extra": _Payload(marker)}, tmp_path / "unsafe.pth")
    with pytest.raises(UnsafeCheckpointError, match=r"Refusing to load .* its pickle references `io.open`"):
        SynchformerEncoder.from_single_file(path, num_attention_heads=4)
    assert not marker.exists()
    path = _write({**original_state_dict, "step": 3}, tmp_path / "plain.pth")
    with pytest.raises(CheckpointFormatError, match="does not hold a state dict of tensors"):
        SynchformerEncoder.from_single_file(path, num_attention_heads=4)
    with pytest.raises(CheckpointFormatError, match="Cannot read .* as a Synchformer checkpoint"):
        SynchformerEncoder.from_single_file(_write_bytes(tmp_path / "junk.pth"), num_attention_heads=4)


def _write_bytes(path: Path) -> Path:
    path.write_bytes(b"not a checkpoint")
    return path


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 16, 3, 48, 48), r"must have shape \[batch, segments, 16, 3, 48, 48\].*got \[1, 16, 3, 48, 48\]"),
        ((1, 1, 16, 4, 48, 48), r"16 frames, 3 channels, 48x48 pixels\), got \[1, 1, 16, 4, 48, 48\]"),
        ((1, 1, 8, 3, 48, 48), r"segments of 16 frames.*got \[1, 1, 8, 3, 48, 48\]"),
        ((1, 1, 16, 3, 32, 48), r"got \[1, 1, 16, 3, 32, 48\]"),
    ],
)
def test_bad_pixel_values_shape(encoder, shape, message):
    with pytest.raises(ValueError, match=message):
        encoder(torch.zeros(shape))


def test_bad_pixel_values_dtype(encoder):
    with pytest.raises(
        TypeError, match="`pixel_values` must be a floating-point tensor normalised to \\[-1, 1\\], got torch.uint8"
    ):
        encoder(torch.zeros(1, 1, 16, 3, 48, 48, dtype=torch.uint8))


def test_too_short_video_is_refused():
    processor = SynchformerVideoProcessor(frame_size=48)
    frames = torch.zeros(1, 15, 60, 80, 3, dtype=torch.uint8)
    with pytest.raises(
        ValueError, match=r"15 frames at 25 fps, but a segment needs 16 \(a minimum duration of 0.64 s\)"
    ):
        processor(frames)


def test_bad_frames_are_refused():
    processor = SynchformerVideoProcessor(frame_size=48)
    with pytest.raises(TypeError, match="`frames` must be uint8 RGB, got torch.float32"):
        processor.preprocess(torch.zeros(16, 60, 80, 3))
    with pytest.raises(ValueError, match=r"`frames` must have shape \[..., T, H, W, 3\], got \[16, 3, 60, 80\]"):
        processor.preprocess(torch.zeros(16, 3, 60, 80, dtype=torch.uint8))
    with pytest.raises(ValueError, match="`frame_size` must be a positive integer, got 0"):
        SynchformerVideoProcessor(frame_size=0)
    with pytest.raises(ValueError, match="`duration` must be positive seconds, got 0"):
        processor.num_frames_for_duration(0)


# ----------------------------------------------------------------------------------------------- frames and timing
@pytest.mark.parametrize(
    ("duration", "frames", "segments"), [(1, 25, 2), (2, 50, 5), (5, 125, 14), (8, 200, 24), (10, 250, 30)]
)
def test_frame_and_segment_counts(duration, frames, segments):
    processor = SynchformerVideoProcessor()
    assert processor.num_frames_for_duration(duration) == frames
    assert processor.num_segments(frames) == segments


def _frame_indices(processor, timestamps, duration):
    frames = [torch.full((1, 1, 3), index, dtype=torch.uint8) for index in range(len(timestamps))]
    return processor.sample_frames(frames, timestamps, duration)[:, 0, 0, 0].tolist()


def test_sample_frames_takes_first_frame_at_or_after_each_tick():
    processor = SynchformerVideoProcessor(frame_size=48)
    # 10 fps: frames repeat; the tick at 0.2 s takes the frame at 0.2 s, and the frame at 0.4 s = `duration` is read.
    assert _frame_indices(processor, [i / 10 for i in range(10)], 0.4) == [0, 1, 1, 2, 2, 2, 3, 3, 4, 4]
    # 50 fps (stamped 1 ms late, away from ties): every other frame. The clip ends with the frames, short of 1 s.
    assert _frame_indices(processor, [i / 50 + 1e-3 for i in range(20)], 1.0) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
    # Frames before 0 s are skipped.
    assert _frame_indices(processor, [-0.04, 0.0, 0.04], 0.08) == [1, 2]


def test_sample_frames_ticks_accumulate_like_the_reference():
    # The ticks are summed 1/25 at a time in float64, as MMAudio does; the 7th sums to 0.24000000000000005 and so
    # skips a frame stamped exactly 0.24 s.
    indices = _frame_indices(SynchformerVideoProcessor(frame_size=48), [i / 25 for i in range(10)], 1.0)
    assert indices == [0, 1, 2, 3, 4, 5, 7, 7, 8, 9]


def test_feature_time_spans():
    processor = SynchformerVideoProcessor()
    spans = processor.feature_time_spans(24)
    assert spans.shape == (192, 2)
    segment, step = 3, 5  # feature 8s + j covers [0.32 s + 0.08 j, 0.32 s + 0.08 (j + 1))
    torch.testing.assert_close(spans[8 * segment + step], torch.tensor([0.96 + 0.4, 0.96 + 0.48], dtype=torch.float64))
    assert spans[8, 0] < spans[7, 0]  # steps back at each segment boundary
    assert spans[-1, 1].item() == pytest.approx((24 + 1) * 0.32)


def test_processor_from_encoder_config_roundtrip(encoder, tmp_path):
    processor = SynchformerVideoProcessor.from_encoder(encoder)
    assert processor.config.frame_size == 48 and processor.config.num_frames == 16
    processor.save_config(tmp_path)
    loaded = SynchformerVideoProcessor.from_config(SynchformerVideoProcessor.load_config(tmp_path))
    public = lambda cfg: {k: v for k, v in cfg.items() if not k.startswith("_")}  # noqa: E731
    assert public(loaded.config) == public(processor.config)


def test_attention_processors_and_gradient_checkpointing(encoder, golden):
    assert set(encoder.attn_processors) == {
        f"blocks.{i}.{kind}.processor" for i in range(2) for kind in ("time_attn", "space_attn")
    }

    def gradients(checkpointing: bool) -> dict[str, torch.Tensor]:
        model = SynchformerEncoder.from_single_file(CHECKPOINT, num_attention_heads=TINY_HEADS).train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        model(golden["x"][:1, :1]).features.square().mean().backward()
        return {name: p.grad for name, p in model.named_parameters()}

    plain, checkpointed = gradients(False), gradients(True)
    assert all(grad is not None for grad in plain.values())
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, atol=1e-6, rtol=1e-5)
