"""Transformer forward against Diffusers' `LuminaNextDiT2DModel` at equal width, depth, heads, kv heads, caption
length and token count, with the machine's own matmul throughput measured in the same run.

Prints, per size: seconds per forward of both models, the time ratio (this package / peer; target <= 0.6), and the
share of the matmul ceiling each reaches (model FLOPs counted by `torch.utils.flop_counter` / seconds / measured
matmul FLOP/s; target >= 80%). Each round times the matmul unit before and after every model call and compares the
call with the mean of the two, since the load from other processes on a shared machine drifts within a round (the
ceiling alone has been seen to move from 145 to 185 GFLOP/s from one second to the next). The ratio and the shares
are computed per round and their medians over `--repeats` rounds are printed.

PyTorch's flop counter has no formula for the CPU flash-attention kernel (SDPA's CPU path), so it would count no
attention at all; this script registers the standard one (4 * batch * query heads * q_len * kv_len * head_dim, as
for the GPU kernels) before counting.

    python benchmarks/benchmark_transformer.py                     # fp32 CPU: 4096 tokens and the long 9216
    python benchmarks/benchmark_transformer.py --sizes 4096 --repeats 5
    python benchmarks/benchmark_transformer.py --sizes 4096 --compile  # both models' blocks under torch.compile
"""

import argparse
import statistics
import time

import torch
from diffusers import LuminaNextDiT2DModel
from diffusers.models.embeddings import get_2d_rotary_pos_embed_lumina
from torch.utils.flop_counter import FlopCounterMode, flop_registry, register_flop_formula
from tqdm import tqdm

from diffusers_lumina_video import LuminaVideoTransformer3DModel


# Latent [C, F, H, W] per token count: 4 frames at patch (1, 2, 2) for this package, one image at patch 2 for the peer.
LATENT_FRAMES = 4


CPU_FLASH_ATTENTION = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu


if CPU_FLASH_ATTENTION not in flop_registry:

    @register_flop_formula(CPU_FLASH_ATTENTION)
    def _cpu_flash_attention_flops(query_shape, key_shape, *args, **kwargs) -> int:
        """`QK^T` and `PV`, 2 FLOPs per multiply-add each; grouped key/value heads cost as many as query heads."""
        batch, heads, query_length, head_dim = query_shape
        return 4 * batch * heads * query_length * key_shape[2] * head_dim


def seconds_of(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed_rounds(models: dict, matmul, matmul_flops: int, repeats: int) -> list[dict[str, tuple[float, float]]]:
    """Per round, `{name: (seconds, ceiling FLOP/s at that moment)}`: every model call sits between two timings of
    the matmul unit, and its ceiling is their mean (one warm-up call of each first)."""
    for fn in (*models.values(), matmul):
        fn()
    rounds = []
    for _ in range(repeats):
        ceiling_before = matmul_flops / seconds_of(matmul)
        timings = {}
        for name, fn in models.items():
            seconds = seconds_of(fn)
            ceiling_after = matmul_flops / seconds_of(matmul)
            timings[name] = (seconds, (ceiling_before + ceiling_after) / 2)
            ceiling_before = ceiling_after
        rounds.append(timings)
    return rounds


def matmul_ceiling(size: int, calls: int):
    """A timed unit of the machine's dense fp32 matmul at the model's width (the ceiling a forward can reach) and
    the FLOPs it does."""
    a, b = torch.randn(size, size), torch.randn(size, size)

    def run():
        for _ in range(calls):
            torch.mm(a, b)

    return run, calls * 2 * size**3


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def build_pair(args: argparse.Namespace, tokens: int):
    """Both models at equal size, and a no-argument forward for each: `(ours, peer), (run_ours, run_peer)`."""
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
        # An unpadded caption: the mask is `None`, as the pipeline passes it; the peer always takes one.
        ours(video, timestep, caption, None)

    @torch.no_grad()
    def run_peer():
        peer(image, timestep, caption, caption_mask, rope, cross_attention_kwargs={})

    return (ours, peer), (run_ours, run_peer)


def compile_blocks(ours: LuminaVideoTransformer3DModel, peer: LuminaNextDiT2DModel) -> None:
    """Regional compilation for both; the peer declares no `_repeated_blocks`, so its blocks are compiled one by one."""
    ours.compile_repeated_blocks(fullgraph=True)
    for block in peer.layers:
        block.compile()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 9216], help="token counts (4 * n**2)")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--kv_heads", type=int, default=8)
    parser.add_argument("--caption_length", type=int, default=128)
    parser.add_argument("--caption_dim", type=int, default=2304)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="time both models with their blocks compiled")
    args = parser.parse_args()

    matmul, matmul_flops = matmul_ceiling(args.width * 2, calls=5)
    mode = "blocks compiled" if args.compile else "eager"
    print(f"fp32 CPU, {mode}, {torch.get_num_threads()} threads, median of {args.repeats} interleaved rounds")
    rows = []
    for tokens in tqdm(args.sizes, desc="sizes"):
        (ours, peer), (run_ours, run_peer) = build_pair(args, tokens)
        flops = {"ours": count_flops(run_ours), "peer": count_flops(run_peer)}  # counted in eager mode
        if args.compile:
            compile_blocks(ours, peer)
        rounds = timed_rounds({"ours": run_ours, "peer": run_peer}, matmul, matmul_flops, args.repeats)
        rows.append((tokens, rounds, flops))

    print(
        f"\n{'tokens':>7} {'ours s':>8} {'peer s':>8} {'ratio':>6} {'ceiling GFLOP/s':>16} {'ours ceil':>10} {'peer ceil':>10}"
    )
    for tokens, rounds, flops in rows:
        median = {
            "seconds": {k: statistics.median(r[k][0] for r in rounds) for k in flops},
            "share": {k: statistics.median(flops[k] / r[k][0] / r[k][1] for r in rounds) for k in flops},
            "ratio": statistics.median(r["ours"][0] / r["peer"][0] for r in rounds),
            "ceiling": statistics.median(r[k][1] for r in rounds for k in flops),
        }
        print(
            f"{tokens:7d} {median['seconds']['ours']:8.3f} {median['seconds']['peer']:8.3f} {median['ratio']:6.2f} "
            f"{median['ceiling'] / 1e9:16.1f} {median['share']['ours']:10.0%} {median['share']['peer']:10.0%}"
        )


if __name__ == "__main__":
    main()
