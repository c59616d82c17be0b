import json
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from diffusers_lumina_video.showcase.builtin_models import TINY_CLIP_DIM, TINY_SYNC_DIM, tiny_v2a_transformer
from diffusers_lumina_video.training.av_batches import AVBatchDataset, PreparedAVDataset
from diffusers_lumina_video.training.av_prepare import AV_CACHE_FORMAT
from diffusers_lumina_video.training.prepare import INDEX_FILE
from diffusers_lumina_video.training.recipe import AudioTrainingBatch, flow_matching_loss, sample_generator


NUM_CLIPS = 7


def write_av_cache(folder: Path, num_clips: int = NUM_CLIPS, frames: int = 25) -> Path:
    """A cache as `prepare_av_dataset` writes it, with random features of the tiny V2A transformer's widths and
    captions of different lengths."""
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    clips = []
    for index in range(num_clips):
        length = 3 + index % 4
        tensors = {
            "audio_latents": torch.randn(8, frames, 16, generator=generator),
            "text_embeds": torch.randn(length, TINY_CLIP_DIM, generator=generator),
            "text_mask": torch.ones(length, dtype=torch.long),
            "visual_embeds": torch.randn(8, TINY_CLIP_DIM, generator=generator),
            "sync_embeds": torch.randn(16, TINY_SYNC_DIM, generator=generator),
        }
        save_file(tensors, str(folder / f"clip{index}.safetensors"))
        clips.append({"name": f"clip{index}", "file": f"clip{index}.safetensors", "caption": f"caption {index}"})
    shapes = {name: list(value.shape) for name, value in tensors.items()}
    index = {"fingerprint": {"format": AV_CACHE_FORMAT}, "shapes": shapes, "clips": clips, "skipped": {}}
    (folder / INDEX_FILE).write_text(json.dumps(index))
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> PreparedAVDataset:
    return PreparedAVDataset(write_av_cache(tmp_path_factory.mktemp("av") / "cache"))


def batches(data, num_processes: int, batch_size: int, micro_batches, seed: int = 3, dropout: float = 0.3):
    """Each micro-batch of every process, as `{m: [batch of process 0, batch of process 1, ...]}`."""
    datasets = [
        AVBatchDataset(data, rank, num_processes, batch_size, seed, dropout, dropout, dropout)
        for rank in range(num_processes)
    ]
    return {m: [d[m] for d in datasets] for m in micro_batches}


def joined(parts: list[AudioTrainingBatch]) -> dict:
    """The process slices of one micro-batch put back together (text padded to one length)."""
    length = max(p.text_embeds.shape[1] for p in parts)
    pad = lambda t: torch.nn.functional.pad(t, (0, 0, 0, length - t.shape[1])) if t.ndim == 3 else t  # noqa: E731
    fields = ["latents", "visual_embeds", "visual_mask", "sync_embeds", "drop_visual", "drop_text", "drop_sync"]
    merged = {name: torch.cat([getattr(p, name) for p in parts]) for name in fields}
    merged["text_embeds"] = torch.cat([pad(p.text_embeds) for p in parts])
    merged["text_mask"] = torch.cat(
        [torch.nn.functional.pad(p.text_mask, (0, length - p.text_mask.shape[1])) for p in parts]
    )
    merged["seeds"] = [s for p in parts for s in p.seeds]
    return merged


def test_batches_hold_the_cached_clips_with_padded_text(data):
    batch = AVBatchDataset(data, 0, 1, 4, seed=0, visual_dropout=0, text_dropout=0, sync_dropout=0)[0]
    assert batch.latents.shape == (4, 8, 25, 16)
    assert batch.visual_embeds.shape == (4, 8, TINY_CLIP_DIM) and batch.visual_mask.all()
    assert batch.sync_embeds.shape == (4, 16, TINY_SYNC_DIM)
    assert batch.text_embeds.shape[1] == 8 and batch.text_mask.dtype == torch.long  # padded to a multiple of 8
    for row, latents in enumerate(batch.latents):
        index = next(i for i in range(len(data)) if torch.equal(data.load(i)["audio_latents"], latents))
        clip = data.load(index)
        length = clip["text_embeds"].shape[0]
        assert batch.text_mask[row].sum() == length
        torch.testing.assert_close(batch.text_embeds[row, :length], clip["text_embeds"])
        assert not batch.text_embeds[row, length:].any()
    assert not (batch.drop_visual.any() or batch.drop_text.any() or batch.drop_sync.any())
    assert batch.drop_visual.dtype == torch.bool and len(batch.seeds) == 4


def test_two_processes_split_the_one_process_batches_exactly_and_a_resumed_run_repeats_them(data):
    one = batches(data, 1, 4, range(6))
    two = batches(data, 2, 2, range(6))
    for m in range(6):
        whole, halves = joined(one[m]), joined(two[m])
        assert whole["seeds"] == halves["seeds"]
        for name, value in whole.items():
            if name != "seeds":
                torch.testing.assert_close(halves[name], value, rtol=0, atol=0, msg=name)
    resumed = batches(data, 2, 2, range(3, 6))
    for m in range(3, 6):
        for fresh, again in zip(two[m], resumed[m], strict=True):
            assert again.seeds == fresh.seeds and torch.equal(again.latents, fresh.latents)
            assert torch.equal(again.drop_text, fresh.drop_text)


def test_every_clip_is_seen_once_per_epoch(data):
    seen = [row for parts in batches(data, 1, 1, range(NUM_CLIPS)).values() for row in parts[0].latents]
    expected = [data.load(i)["audio_latents"] for i in range(NUM_CLIPS)]
    assert all(sum(torch.equal(s, e) for s in seen) == 1 for e in expected)


def test_dropouts_are_drawn_apart_per_stream_at_their_rates(data):
    dataset = AVBatchDataset(data, 0, 1, 1, seed=0, visual_dropout=0.1, text_dropout=0.5, sync_dropout=1.0)
    drops = torch.stack([dataset.draw_dropouts(seed) for seed in range(2000)]).float()
    visual, text, sync = drops.mean(dim=0).tolist()
    assert abs(visual - 0.1) < 0.03 and abs(text - 0.5) < 0.04 and sync == 1.0
    both = (drops[:, 0] * drops[:, 1]).mean().item()
    assert abs(both - visual * text) < 0.02  # independent draws
    assert torch.equal(dataset.draw_dropouts(17), dataset.draw_dropouts(17))


def test_v2a_loss_on_a_tiny_transformer_is_finite_and_reaches_the_empty_embeddings(data):
    transformer = tiny_v2a_transformer().train()
    data.check_compatible(transformer.config)
    batch = AVBatchDataset(data, 0, 1, 3, seed=1, visual_dropout=0.5, text_dropout=0.5, sync_dropout=0.5)[0]
    batch.drop_visual[:] = torch.tensor([True, False, False])
    generators = [sample_generator(seed, "noise") for seed in batch.seeds]
    output = flow_matching_loss(transformer, batch.to("cpu"), generators, vd_weight=0.5)
    assert torch.isfinite(output.loss) and output.flow_loss.shape == (3,)
    output.loss.backward()
    assert transformer.empty_visual.grad is not None and transformer.empty_visual.grad.abs().sum() > 0
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in transformer.parameters())

    # The same sample and seed give the same loss, whatever batch it is in.
    again = flow_matching_loss(transformer, batch, [sample_generator(s, "noise") for s in batch.seeds])
    first = {f.name: getattr(batch, f.name) for f in fields(batch)}
    alone = AudioTrainingBatch(**{k: v[:1] if isinstance(v, (torch.Tensor, list)) else v for k, v in first.items()})
    single = flow_matching_loss(transformer, alone, [sample_generator(batch.seeds[0], "noise")])
    torch.testing.assert_close(single.flow_loss, again.flow_loss[:1], rtol=1e-5, atol=1e-6)


def test_an_incompatible_transformer_is_refused_with_every_mismatch(data):
    config = dict(tiny_v2a_transformer().config)
    config.update(in_channels=4, sync_feat_dim=32, patch_size=(2, 4), max_latent_frames=16)
    with pytest.raises(ValueError) as error:
        data.check_compatible(config)
    message = str(error.value)
    assert "latent channels 8, the transformer's `in_channels` is 4" in message
    assert "sync feature width 24, the transformer's `sync_feat_dim` is 32" in message
    assert "latents of 25 x 16 do not divide into patches of 2 x 4" in message
    assert "25 latent frames, more than the transformer's `max_latent_frames` 16" in message
    assert "prepare them again" in message


def test_bad_arguments_and_caches_are_refused(data, tmp_path):
    for kwargs, message in [
        ({"process_index": 2}, r"`process_index` must be an int in \[0, 2\), got 2"),
        ({"num_processes": 0}, "`num_processes` must be an int >= 1, got 0"),
        ({"batch_size": 1.5}, "`batch_size` must be an int >= 1, got 1.5"),
        ({"text_dropout": 1.2}, r"`text_dropout` must be a probability in \[0, 1\], got 1.2"),
    ]:
        arguments = {"process_index": 0, "num_processes": 2, "batch_size": 2, "seed": 0}
        arguments |= {"visual_dropout": 0.1, "text_dropout": 0.1, "sync_dropout": 0.1} | kwargs
        with pytest.raises(ValueError, match=message):
            AVBatchDataset(data, **arguments)
    with pytest.raises(FileNotFoundError, match="holds no prepared clips"):
        PreparedAVDataset(tmp_path)
    (tmp_path / INDEX_FILE).write_text(json.dumps({"fingerprint": {"format": 1}, "samples": []}))
    with pytest.raises(ValueError, match="is not a prepared V2A cache"):
        PreparedAVDataset(tmp_path)
