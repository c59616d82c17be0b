"""Relative cost of the patchifications and of whole sampling schedules, measured side by side in one run.

Compares with the paper's Table 2 (relative time: (1,2,2) 1.00, (2,2,2) 0.36, (2,4,4) 0.07, multi-scale 0.34), and
measures what batching both guidance branches into one call saves over two calls.

    python benchmarks/benchmark_sampling_cost.py                       # CPU, a mid-size random model
    python benchmarks/benchmark_sampling_cost.py --size full --device cuda --dtype bf16   # the 2B config
"""

import argparse
import time

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from diffusers_lumina_video import SAMPLING_PRESETS, LuminaVideoTransformer3DModel
from diffusers_lumina_video.pipelines.lumina_video.schedules import SamplingSchedule


# A mid-size transformer that runs in seconds on a CPU; `benchmark_pipeline_overhead.py` uses it too.
MID_MODEL = {
    "hidden_size": 384,
    "num_layers": 4,
    "num_attention_heads": 6,
    "num_kv_heads": 3,
    "multiple_of": 64,
    "cap_feat_dim": 256,
}
SIZES = {
    # model config, latent shape [C, F, H, W] (the 2B model at 1248x704, 96 frames -> 24 latent frames)
    "mid": (MID_MODEL, (16, 8, 32, 48)),
    "full": ({}, (16, 24, 88, 156)),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def time_call(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="mid")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    config, latent_shape = SIZES[args.size]
    dtype = DTYPES[args.dtype]
    torch.manual_seed(0)
    model = LuminaVideoTransformer3DModel(**config).to(args.device).eval()
    if dtype != torch.float32:
        model.to(dtype)
    latents = torch.randn(1, *latent_shape, device=args.device, dtype=dtype)
    text = torch.randn(1, 128, model.config.cap_feat_dim, device=args.device, dtype=dtype)

    def forward(patch, batch=1):
        with torch.no_grad():
            model(
                latents.expand(batch, -1, -1, -1, -1),
                torch.full((batch,), 0.5, device=args.device),
                text.expand(batch, -1, -1),
                None,  # an unpadded caption, as the pipeline passes it
                motion_score=6.0,
                patch_size=patch,
            )

    print(f"model {args.size}, latents {tuple(latents.shape)}, {args.device} {args.dtype}")
    seconds = {
        patch: time_call(lambda p=patch: forward(p), args.repeats, args.device) for patch in model.config.patch_sizes
    }
    finest = model.finest_patch_size
    paper = {(1, 2, 2): 1.00, (2, 2, 2): 0.36, (2, 4, 4): 0.07}
    print("\npatchification  s/forward  relative  (paper)")
    for patch, value in seconds.items():
        print(f"{str(patch):15s} {value:9.3f}  {value / seconds[finest]:8.2f}  ({paper.get(patch, float('nan')):.2f})")

    # Whole schedules: the preset time grids, each step costed by the measured forward of its patch, with the
    # negative branch counted only where guidance is on (both branches batched: measured below).
    batched = time_call(lambda: forward(finest, batch=2), args.repeats, args.device)
    print(
        f"\nguidance, both branches: one batched call {batched:.3f}s vs two calls {2 * seconds[finest]:.3f}s "
        f"(ratio {batched / (2 * seconds[finest]):.2f})"
    )
    print("\npreset                   relative sampling cost (vs f24F96R960 single-scale)")
    costs = {}
    for name, preset in SAMPLING_PRESETS.items():
        scheduler = FlowMatchEulerDiscreteScheduler(shift=preset["shift"])
        steps = preset["num_inference_steps"]
        scheduler.set_timesteps(sigmas=np.linspace(1.0, 1.0 / steps, steps))
        schedule = SamplingSchedule.parse(
            preset["guidance_scale"],
            preset["motion_score"],
            preset["negative_motion_score"],
            preset["patch_size"],
            model.config.patch_sizes,
        )
        total = 0.0
        for sigma in scheduler.sigmas[:-1]:
            step = schedule.at(1.0 - float(sigma))
            total += seconds[step.patch_size] * (batched / seconds[finest] if step.guidance_scale > 1 else 1.0)
        costs[name] = total
    for name, total in costs.items():
        reference = costs["f24F96R960" if name.startswith("f24") else "f16F64R512"]
        print(f"{name:24s} {total / reference:.2f}  ({total:.1f}s estimated per video)")


if __name__ == "__main__":
    main()
