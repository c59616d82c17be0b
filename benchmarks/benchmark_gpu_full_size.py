"""The 2B Lumina-Video transformer at its released size (704x1248, 96 frames -> 24x88x156 latents: 82,368 tokens at
patch (1, 2, 2), 41,184 at (2, 2, 2)) on one GPU: seconds per step, MFU and peak memory for each variant.

Variants: default bf16; regional `torch.compile` (the repeated blocks); every attention backend given with
`--backends` that takes head dim 144 (the caption branch routes itself to a masked form); group offload of the
transformer plus a tiled decode of the CogVideoX VAE; sequential CPU offload (accelerate's `cpu_offload`, what
`pipe.enable_sequential_cpu_offload()` applies to each component). Random weights: speed and memory do not depend on them.
A step is one forward with both guidance branches batched (batch 2). MFU = model FLOPs (counted once with
`torch.utils.flop_counter`) / seconds / `--peak_tflops`.

    python benchmarks/benchmark_gpu_full_size.py --peak_tflops 989        # H100/H200 SXM dense bf16
    python benchmarks/benchmark_gpu_full_size.py --variants default compile --patch_size 2 2 2
"""

import argparse
import sys
import time

import torch
from accelerate import cpu_offload
from diffusers import AutoencoderKLCogVideoX
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from diffusers_lumina_video import LuminaVideoTransformer3DModel


LATENT_SHAPE = (16, 24, 88, 156)  # [C, F, H, W] of 96 frames at 704x1248
VARIANTS = ["default", "compile", "backends", "group_offload_vae_tiling", "sequential_offload"]


def measure(fn, repeats: int) -> tuple[float, float]:
    """(seconds per call, peak GiB) after one warm-up call."""
    fn()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats, torch.cuda.max_memory_allocated() / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS)
    parser.add_argument("--backends", nargs="+", default=["native", "_native_cudnn", "flash", "_flash_3", "sage"])
    parser.add_argument("--patch_size", type=int, nargs=3, default=(1, 2, 2))
    parser.add_argument("--peak_tflops", type=float, default=989.0, help="the GPU's dense bf16 peak")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("benchmark_gpu_full_size.py needs a CUDA GPU; none is visible (torch.cuda.is_available() is False).")

    device, dtype = torch.device("cuda"), torch.bfloat16
    with torch.device(device):
        model = LuminaVideoTransformer3DModel().to(dtype).eval()
    latents = torch.randn(2, *LATENT_SHAPE, device=device, dtype=dtype)
    caption = torch.randn(2, 256, model.config.cap_feat_dim, device=device, dtype=dtype)
    mask = torch.ones(2, 256, dtype=torch.long, device=device)
    mask[1, 32:] = 0  # a short negative caption: the masked branch is exercised
    timestep = torch.tensor([0.5, 0.5], device=device)
    patch = tuple(args.patch_size)

    @torch.no_grad()
    def step():
        model(latents, timestep, caption, mask, motion_score=6.0, patch_size=patch)

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    rows = []

    def record(name: str, fn=step) -> None:
        try:
            seconds, peak = measure(fn, args.repeats)
            rows.append((name, f"{seconds:.3f}", f"{flops / seconds / (args.peak_tflops * 1e12):.1%}", f"{peak:.1f}"))
        except Exception as error:  # a backend or kernel missing on this machine is a result, not a crash
            rows.append((name, "n/a", "n/a", f"{type(error).__name__}: {str(error)[:60]}"))

    for variant in tqdm(args.variants, desc="variants"):
        if variant == "default":
            record("bf16")
        elif variant == "compile":
            model.compile_repeated_blocks(fullgraph=True)
            record("bf16 + compile_repeated_blocks")
            torch._dynamo.reset()
            model = LuminaVideoTransformer3DModel.from_config(model.config).to(device, dtype).eval()
        elif variant == "backends":
            for backend in args.backends:
                try:
                    model.set_attention_backend(backend)
                except Exception as error:
                    rows.append((f"attention {backend}", "n/a", "n/a", f"{type(error).__name__}: {str(error)[:60]}"))
                    continue
                record(f"attention {backend}")
            model.reset_attention_backend()
        elif variant == "group_offload_vae_tiling":
            model.enable_group_offload(device, offload_type="block_level", num_blocks_per_group=1, use_stream=True)
            record("group offload (block, stream)")
            vae = AutoencoderKLCogVideoX().to(device, dtype).eval()
            vae.enable_tiling()
            decode_latents = torch.randn(1, *LATENT_SHAPE, device=device, dtype=dtype)

            with torch.no_grad():
                seconds, peak = measure(lambda v=vae, z=decode_latents: v.decode(z), 1)
            rows.append(("VAE tiled decode (whole video)", f"{seconds:.3f}", "-", f"{peak:.1f}"))
            del vae, decode_latents
            model = LuminaVideoTransformer3DModel.from_config(model.config).to(device, dtype).eval()
        elif variant == "sequential_offload":
            model = model.to("cpu")
            torch.cuda.empty_cache()
            cpu_offload(model, execution_device=device)
            record("sequential CPU offload", fn=step)

    print(f"\n{torch.cuda.get_device_name()}, patch {patch}, {flops / 1e12:.1f} TFLOP per step (batch 2)")
    print(f"{'variant':34s} {'s/step':>8} {'MFU':>7}  peak GiB")
    for name, seconds, mfu, peak in rows:
        print(f"{name:34s} {seconds:>8} {mfu:>7}  {peak}")


if __name__ == "__main__":
    main()
