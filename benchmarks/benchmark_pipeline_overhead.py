"""The pipeline's own cost outside the transformer, per denoising step (RoPE tables, masks, schedule lookups,
padding, scheduler step, guidance, callbacks), for the single-scale and multi-scale presets scaled to CPU.

The preset keeps its guidance, motion and patch schedules; the size, the step count and the model shrink. Text
encoding and VAE decoding are left out (precomputed caption features, `output_type="latent"`). Target: under 2%.

    python benchmarks/benchmark_pipeline_overhead.py
    python benchmarks/benchmark_pipeline_overhead.py --steps 20 --height 256 --width 448
"""

import argparse
import time

import torch
from benchmark_sampling_cost import MID_MODEL
from diffusers import FlowMatchEulerDiscreteScheduler
from tqdm import tqdm

from diffusers_lumina_video import SAMPLING_PRESETS, LuminaVideoPipeline, LuminaVideoTransformer3DModel


PRESETS = list(SAMPLING_PRESETS)


class ForwardTimer:
    """Wall time spent inside the transformer's forward, through forward hooks."""

    def __init__(self, module: torch.nn.Module):
        self.total, self.calls, self._start = 0.0, 0, 0.0
        module.register_forward_pre_hook(self._pre)
        module.register_forward_hook(self._post)

    def _pre(self, module, args) -> None:
        self._start = time.perf_counter()

    def _post(self, module, args, output) -> None:
        self.total += time.perf_counter() - self._start
        self.calls += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--num_frames", type=int, default=13)
    parser.add_argument("--caption_length", type=int, default=64)
    args = parser.parse_args()

    torch.manual_seed(0)
    transformer = LuminaVideoTransformer3DModel(**MID_MODEL).eval()
    pipe = LuminaVideoPipeline(transformer, FlowMatchEulerDiscreteScheduler())
    pipe.set_progress_bar_config(disable=True)
    timer = ForwardTimer(transformer)
    caption = torch.randn(2, args.caption_length, MID_MODEL["cap_feat_dim"])
    mask = torch.ones(2, args.caption_length, dtype=torch.long)
    mask[1, args.caption_length // 2 :] = 0

    rows = []
    for name in tqdm(PRESETS, desc="presets"):
        call_kwargs = pipe.use_sampling_preset(name)
        call_kwargs.update(height=args.height, width=args.width, num_frames=args.num_frames)
        call_kwargs.update(num_inference_steps=args.steps, output_type="latent")

        def run(call_kwargs=call_kwargs):
            pipe(
                prompt_embeds=caption[:1],
                prompt_attention_mask=mask[:1],
                negative_prompt_embeds=caption[1:],
                negative_prompt_attention_mask=mask[1:],
                generator=torch.Generator().manual_seed(0),
                **call_kwargs,
            )

        run()  # warm-up
        timer.total, timer.calls = 0.0, 0
        start = time.perf_counter()
        run()
        total = time.perf_counter() - start
        rows.append((name, total, timer.total, timer.calls))

    print(f"\n{args.steps} steps, {args.num_frames}x{args.height}x{args.width}, mid-size model, fp32 CPU")
    print(f"{'preset':24s} {'s/step':>8} {'forwards':>9} {'outside ms/step':>16} {'outside share':>14}")
    for name, total, inside, calls in rows:
        outside = total - inside
        print(
            f"{name:24s} {total / args.steps:8.3f} {calls:9d} {1000 * outside / args.steps:16.2f} "
            f"{outside / total:14.2%}"
        )


if __name__ == "__main__":
    main()
