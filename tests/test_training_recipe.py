"""The training recipe (time shift, dropouts, rectified-flow and direction loss) and the micro-batch plan."""

import math

import pytest
import torch
import torch.nn.functional as F

from diffusers_lumina_video.training.batches import MicroBatchPlanner, PreparedDataset, Stream, pad_captions
from diffusers_lumina_video.training.recipe import (
    MOTION_ABSENT,
    TrainingBatch,
    drop_conditions,
    flow_matching_loss,
    sample_generator,
    shift_timesteps,
)


class RecordingModel(torch.nn.Module):
    """A linear velocity model that remembers what it was called with."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.calls = []

    def forward(self, hidden_states, timestep, encoder_hidden_states, encoder_attention_mask, motion_score, **kwargs):
        self.calls.append(
            {"hidden_states": hidden_states, "timestep": timestep, "motion_score": motion_score, **kwargs}
        )
        return (hidden_states * self.scale,)


def make_batch(batch_size: int = 2, shift: float = 2.0, seeds=None) -> TrainingBatch:
    generator = torch.Generator().manual_seed(0)
    return TrainingBatch(
        latents=torch.randn(batch_size, 4, 2, 4, 4, generator=generator),
        prompt_embeds=torch.randn(batch_size, 8, 32, generator=generator),
        prompt_attention_mask=torch.ones(batch_size, 8, dtype=torch.long),
        motion_score=torch.full((batch_size,), 3.0),
        patch_size=(2, 2, 2),
        timestep_shift=shift,
        seeds=list(range(batch_size)) if seeds is None else seeds,
    )


def generators(batch: TrainingBatch) -> list[torch.Generator]:
    return [sample_generator(seed, "noise") for seed in batch.seeds]


# ---------------------------------------------------------------------- time shift
def test_time_shift_matches_the_reference_formula():
    t = torch.linspace(0, 1, 11)
    assert torch.allclose(shift_timesteps(t, 1.0), t)
    assert torch.allclose(shift_timesteps(t, 4.0), t / (t + 4.0 - 4.0 * t))
    # A larger shift spends more time near noise (t = 0): the median time falls from 1/2 to 1/(1 + shift).
    assert shift_timesteps(torch.tensor(0.5), 8.0).item() == pytest.approx(1 / 9)


# ---------------------------------------------------------------------- dropouts
def dropout_rates(is_image: bool, motion_score, draws: int = 4000, **probabilities):
    caption, null = torch.ones(3, 2), torch.zeros(1, 2)
    settings = {"caption_dropout": 0.2, "motion_dropout": 0.3, "image_motion_zero_prob": 0.4} | probabilities
    results = [
        drop_conditions(caption, null, motion_score, is_image, sample_generator(seed, "conditions"), **settings)
        for seed in range(draws)
    ]
    dropped_captions = sum(embeds is null for embeds, _ in results) / draws
    motions = [motion for _, motion in results]
    return dropped_captions, motions


def test_video_dropouts_have_the_reference_rates():
    dropped_captions, motions = dropout_rates(is_image=False, motion_score=5.0)
    tolerance = 3 * math.sqrt(0.25 / 4000)
    assert dropped_captions == pytest.approx(0.2, abs=tolerance)
    assert set(motions) == {5.0, MOTION_ABSENT}
    assert motions.count(MOTION_ABSENT) / len(motions) == pytest.approx(0.3, abs=tolerance)


def test_images_get_still_motion_or_none():
    _, motions = dropout_rates(is_image=True, motion_score=None)
    assert set(motions) == {0.0, MOTION_ABSENT}
    assert motions.count(0.0) / len(motions) == pytest.approx(0.4, abs=3 * math.sqrt(0.25 / 4000))


def test_dropout_extremes_and_videos_without_a_score():
    dropped, motions = dropout_rates(False, 5.0, draws=50, caption_dropout=1.0, motion_dropout=0.0)
    assert dropped == 1.0 and set(motions) == {5.0}
    dropped, motions = dropout_rates(False, None, draws=50, caption_dropout=0.0)
    assert dropped == 0.0 and set(motions) == {MOTION_ABSENT}


# ---------------------------------------------------------------------- loss
def test_loss_is_the_reference_rectified_flow_and_direction_loss():
    """Recomputed the way the reference's `training_losses` loops over items: F.mse_loss and a cosine over the whole
    flattened item, from the same draws (time first, then noise)."""
    model, batch = RecordingModel(), make_batch()
    output = flow_matching_loss(model, batch, generators(batch), vd_weight=1.0)

    expected = []
    for latents, g in zip(batch.latents, generators(batch), strict=True):
        t = shift_timesteps(torch.rand((), generator=g), batch.timestep_shift)
        noise = torch.randn(latents.shape, generator=g)
        prediction = (t * latents + (1 - t) * noise) * 0.5
        target = latents - noise
        mse = F.mse_loss(prediction.view(-1), target.view(-1))
        expected.append(mse + 1.0 - F.cosine_similarity(prediction.view(-1), target.view(-1), dim=0))
    assert output.loss.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-6)

    call = model.calls[0]
    assert call["patch_size"] == (2, 2, 2) and torch.equal(call["timestep"], output.timesteps)
    assert torch.equal(call["motion_score"], batch.motion_score)

    output.loss.backward()
    assert model.scale.grad is not None and model.scale.grad.abs() > 0


def test_direction_loss_only_with_a_weight():
    batch = make_batch()
    without = flow_matching_loss(RecordingModel(), batch, generators(batch), vd_weight=0.0)
    with_weight = flow_matching_loss(RecordingModel(), batch, generators(batch), vd_weight=2.0)
    assert without.loss.item() == pytest.approx(without.flow_loss.mean().item())
    assert with_weight.loss.item() == pytest.approx(
        (with_weight.flow_loss + 2.0 * with_weight.direction_loss).mean().item()
    )


def test_a_sample_draws_the_same_noise_in_any_batch():
    """What makes one process with a batch of 2 equal two processes with a batch of 1 each."""
    pair = make_batch(2, seeds=[11, 12])
    together = flow_matching_loss(RecordingModel(), pair, generators(pair))
    alone = [
        flow_matching_loss(
            RecordingModel(),
            TrainingBatch(
                pair.latents[i : i + 1],
                pair.prompt_embeds[i : i + 1],
                pair.prompt_attention_mask[i : i + 1],
                pair.motion_score[i : i + 1],
                pair.patch_size,
                pair.timestep_shift,
                [seed],
            ),
            [sample_generator(seed, "noise")],
        )
        for i, seed in enumerate(pair.seeds)
    ]
    assert torch.allclose(together.flow_loss, torch.cat([a.flow_loss for a in alone]))
    assert torch.allclose(together.timesteps, torch.cat([a.timesteps for a in alone]))


def test_loss_needs_one_generator_per_sample():
    with pytest.raises(ValueError, match="`generators` has 1 entries for a batch of 2"):
        flow_matching_loss(RecordingModel(), make_batch(2), [torch.Generator()])


# ---------------------------------------------------------------------- micro-batch plan
class FakeCache(PreparedDataset):
    """Cache entries without files: 5 videos in two buckets (one of 3 latent frames) and 2 images."""

    def __init__(self):
        self.samples = [
            {"is_image": False, "latent_shape": [4, 2, 8, 8]},
            {"is_image": False, "latent_shape": [4, 2, 8, 8]},
            {"is_image": False, "latent_shape": [4, 3, 8, 8]},
            {"is_image": False, "latent_shape": [4, 2, 4, 12]},
            {"is_image": False, "latent_shape": [4, 2, 4, 12]},
            {"is_image": True, "latent_shape": [4, 1, 8, 8]},
            {"is_image": True, "latent_shape": [4, 1, 8, 8]},
        ]


PATCHES = [(1, 2, 2), (2, 2, 2), (2, 4, 4)]
SHIFTS = {(1, 2, 2): 2.0, (2, 2, 2): 4.0, (2, 4, 4): 8.0}


def test_streams_put_images_on_the_finest_patch_only_and_cut_frames_to_the_temporal_patch():
    streams = FakeCache().build_streams(PATCHES, SHIFTS, image_shift=1.0)
    by_patch = {s.patch_size: s.buckets for s in streams}
    # pF = 1: three video shapes (2 and 3 frames at 8x8, 2 at 4x12) and the images.
    assert sorted(map(sorted, by_patch[(1, 2, 2)])) == [[0, 1], [2], [3, 4], [5, 6]]
    # pF = 2: the 3-frame video is cut to 2 frames and joins the 2-frame ones; no images.
    assert sorted(map(sorted, by_patch[(2, 2, 2)])) == [[0, 1, 2], [3, 4]]
    assert by_patch[(2, 4, 4)] == by_patch[(2, 2, 2)]
    assert [s.video_shift for s in streams] == [2.0, 4.0, 8.0]


def test_images_need_a_one_frame_patch():
    with pytest.raises(ValueError, match=r"2 image\(s\), which train with a patchification of one frame"):
        FakeCache().build_streams([(2, 2, 2)], SHIFTS, image_shift=1.0)


def plans(world_size: int, batch_size: int, steps: int, rounds: int = 1) -> list:
    streams = FakeCache().build_streams(PATCHES, SHIFTS, image_shift=1.0)
    planner = MicroBatchPlanner(streams, global_batch_size=world_size * batch_size, rounds=rounds, seed=7)
    return [planner.plan(m) for m in range(steps * planner.micro_batches_per_step)]


def test_plan_runs_every_patchification_each_step_with_one_bucket_per_micro_batch():
    samples = FakeCache().samples
    for index, (stream, indices, seeds) in enumerate(plans(1, 2, steps=6, rounds=2)):
        assert stream.patch_size == PATCHES[index % 3]
        assert len(indices) == len(seeds) == 2 and len(set(seeds)) == 2
        assert len({tuple(samples[i]["latent_shape"][2:]) for i in indices}) == 1


def test_plan_depends_only_on_seed_and_global_batch():
    """Resuming at any micro-batch, or splitting the global batch over processes, sees the same samples and seeds."""
    one_process = plans(1, 2, steps=8)
    assert one_process == plans(1, 2, steps=8)
    assert [(s.key, i, z) for s, i, z in plans(2, 1, steps=8)] == [(s.key, i, z) for s, i, z in one_process]
    streams = FakeCache().build_streams(PATCHES, SHIFTS, image_shift=1.0)
    late = MicroBatchPlanner(streams, global_batch_size=2, rounds=1, seed=7)
    assert [late.plan(m) for m in range(12, 24)] == one_process[12:24]


def test_every_sample_is_seen_each_epoch():
    stream = Stream((1, 2, 2), 2.0, 1.0, buckets=((0, 1, 2), (3,), (4, 5)))
    planner = MicroBatchPlanner([stream], global_batch_size=2, rounds=1, seed=0)
    first_epoch = [planner.plan(m)[1] for m in range(4)]  # ceil(3/2) + ceil(1/2) + ceil(2/2) = 4 batches
    assert sorted({i for batch in first_epoch for i in batch}) == [0, 1, 2, 3, 4, 5]
    assert [planner.plan(m)[1] for m in range(4, 8)] != first_epoch  # reshuffled


def test_captions_are_right_padded_to_a_multiple_of_eight():
    embeds, mask = pad_captions([torch.ones(3, 4), torch.ones(10, 4)])
    assert embeds.shape == (2, 16, 4) and mask.sum(dim=1).tolist() == [3, 10]
    assert embeds[0, 3:].abs().sum() == 0 and mask.dtype == torch.long


def test_gradient_checkpointing_gives_the_lora_the_same_gradients():
    """Only the LoRA weights require grad, so a checkpointed block has no input that does; its recomputation must
    still reach them."""
    from peft import LoraConfig

    from diffusers_lumina_video.loaders.lora_pipeline import LUMINA_VIDEO_LORA_TARGET_MODULES
    from diffusers_lumina_video.showcase.builtin_models import tiny_transformer

    def lora_gradients(checkpointing: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        transformer = tiny_transformer().requires_grad_(False)
        for block in transformer.layers:  # open the caption-attention gates (zero at init) so every target matters
            block.attn.gate.data.fill_(0.5)
        config = LoraConfig(r=4, target_modules=list(LUMINA_VIDEO_LORA_TARGET_MODULES), init_lora_weights=False)
        transformer.add_adapter(config)
        if checkpointing:
            transformer.enable_gradient_checkpointing()
        batch = make_batch(2)
        flow_matching_loss(transformer.train(), batch, generators(batch), vd_weight=1.0).loss.backward()
        return {n: p.grad for n, p in transformer.named_parameters() if p.requires_grad}

    plain, checkpointed = lora_gradients(False), lora_gradients(True)
    assert plain.keys() == checkpointed.keys() and all(g.abs().sum() > 0 for g in plain.values())
    for name, gradient in plain.items():
        torch.testing.assert_close(checkpointed[name], gradient, msg=name)
