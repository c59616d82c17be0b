"""Transformer forward against Diffusers' `LuminaNextDiT2DModel` at equal width, depth, heads, kv heads, caption
length and token count, with the machine's own matmul throughput measured in the same run.

Prints, per size: seconds per forward of both models, the time ratio (this package / peer; target <= 0.6), and the
share of the matmul ceiling each reaches (model FLOPs counted by `torch.utils.flop_counter` / seconds / measured
matmul FLOP/s; target >= 80%).

    python benchmarks/benchmark_transformer.py                     # fp32 CPU, the two default sizes
    python benchmarks/benchmark_transformer.py --sizes 4096 --repeats 3
"""

import argparse
import time

import torch
from diffusers import LuminaNextDiT2DModel
from diffusers.models.embeddings import get_2d_rotary_pos_embed_lumina
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from diffusers_lumina_video import LuminaVideoTransformer3DModel


# Latent [C, F, H, W] per token count: 4 frames at patch (1, 2, 2) for this package, one image at patch 2 for the peer.
LATENT_FRAMES = 4


def seconds_per_call(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def matmul_flops_per_second(size: int, repeats: int, dtype: torch.dtype) -> float:
    """The machine's dense matmul throughput at the model's width: the ceiling a transformer forward can reach."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    return 2 * size**3 / seconds_per_call(lambda: torch.mm(a, b), repeats)


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def build_pair(args: argparse.Namespace, tokens: int):
    """Both models at equal size, and a no-argument forward for each."""
    side = int(round((tokens / LATENT_FRAMES) ** 0.5))
    if LATENT_FRAMES * side * side != tokens:
        raise ValueError(f"`--sizes` entries must be 4 * n**2 tokens (4 frames of n x n patches), got {tokens}.")
    heads, width = args.heads, args.width
    torch.manual_seed(0)
    ours = LuminaVideoTransformer3DModel(
        patch_sizes=((1, 2, 2),),
        in_channels=16,
        hidden_size=width,
        num_layers=args.layers,
        num_attention_heads=heads,
        num_kv_heads=args.kv_heads,
        cap_feat_dim=args.caption_dim,
    ).eval()
    peer = LuminaNextDiT2DModel(
        sample_size=2 * side * 2,
        patch_size=2,
        in_channels=16,
        hidden_size=width,
        num_layers=args.layers,
        num_attention_heads=heads,
        num_kv_heads=args.kv_heads,
        cross_attention_dim=args.caption_dim,
        learn_sigma=False,
    ).eval()

    caption = torch.randn(1, args.caption_length, args.caption_dim)
    caption_mask = torch.ones(1, args.caption_length, dtype=torch.long)
    timestep = torch.tensor([0.5])
    video = torch.randn(1, 16, LATENT_FRAMES, 2 * side, 2 * side)
    image = torch.randn(1, 16, 2 * side * 2, 2 * side * 2)  # the same token count in one frame
    rope = get_2d_rotary_pos_embed_lumina(width // heads, 2 * side, 2 * side)

    @torch.no_grad()
    def run_ours():
        ours(video, timestep, caption, caption_mask)

    @torch.no_grad()
    def run_peer():
        peer(image, timestep, caption, caption_mask, rope, cross_attention_kwargs={})

    return run_ours, run_peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 9216], help="token counts (4 * n**2)")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--kv_heads", type=int, default=8)
    parser.add_argument("--caption_length", type=int, default=128)
    parser.add_argument("--caption_dim", type=int, default=2304)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    ceiling = matmul_flops_per_second(args.width * 2, args.repeats * 5, torch.float32)
    print(f"fp32 CPU, {torch.get_num_threads()} threads; matmul ceiling {ceiling / 1e9:.1f} GFLOP/s")
    rows = []
    for tokens in tqdm(args.sizes, desc="sizes"):
        run_ours, run_peer = build_pair(args, tokens)
        flops = {"ours": count_flops(run_ours), "peer": count_flops(run_peer)}
        seconds = {"ours": seconds_per_call(run_ours, args.repeats), "peer": seconds_per_call(run_peer, args.repeats)}
        rows.append((tokens, seconds, flops))

    print(f"\n{'tokens':>7} {'ours s':>8} {'peer s':>8} {'ratio':>6} {'ours ceil':>10} {'peer ceil':>10}")
    for tokens, seconds, flops in rows:
        share = {k: flops[k] / seconds[k] / ceiling for k in seconds}
        print(
            f"{tokens:7d} {seconds['ours']:8.3f} {seconds['peer']:8.3f} {seconds['ours'] / seconds['peer']:6.2f} "
            f"{share['ours']:10.0%} {share['peer']:10.0%}"
        )


if __name__ == "__main__":
    main()
