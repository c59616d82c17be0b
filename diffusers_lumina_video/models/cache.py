"""Diffusers' cache methods on the Lumina-Video transformer: each either adapted to this model or refused up front.

The pipeline runs the transformer in several kinds of calls over one generation (both guidance branches batched,
the positive branch alone once guidance switches off, and one kind per patchification, each with its own token
count), and a cache's stored tensors only fit the kind of call they came from. The pipeline therefore resets every
cache where the kind of call changes; what each method needs beyond that is decided here.
"""

import dataclasses
import re
from typing import Any

import torch
from diffusers.hooks import (
    FasterCacheConfig,
    MagCacheConfig,
    PyramidAttentionBroadcastConfig,
    SeaCacheConfig,
    TaylorSeerCacheConfig,
    TextKVCacheConfig,
)
from diffusers.models.cache_utils import CacheMixin


# This model's transformer blocks, and the attention inside them, as module names.
BLOCK_PATTERN = r"layers\.\d+"
ATTENTION_PATTERN = r"layers\.\d+\.attn"
SUPPORTED_CACHES = (
    "FirstBlockCacheConfig",
    "PyramidAttentionBroadcastConfig",
    "TaylorSeerCacheConfig",
    "SeaCacheConfig",
    "MagCacheConfig (single-kind calls only)",
)


def _visual_latents(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """The `[C, F, H, W]` latents of each sample of a transformer call, as SeaCache's indicator reads them."""
    hidden_states = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
    return list(hidden_states.float())


def adapt_cache_config(config: Any) -> Any:
    """The config with this model's defaults filled in, or a `ValueError` that says why the method cannot work."""
    if isinstance(config, FasterCacheConfig):
        raise ValueError(
            "FasterCache cannot be used with LuminaVideoTransformer3DModel: it splits every transformer call into "
            "[unconditional, conditional] halves, while LuminaVideoPipeline batches [positive, negative] with a "
            "motion score per branch, and it needs guidance on every step, while the sampling schedules switch "
            f"guidance off partway. Supported cache methods: {list(SUPPORTED_CACHES)}."
        )
    if isinstance(config, TextKVCacheConfig):
        raise ValueError(
            "TextKVCache has no effect on LuminaVideoTransformer3DModel: it only caches the text projections of "
            f"NucleusMoE image blocks. Supported cache methods: {list(SUPPORTED_CACHES)}."
        )
    if isinstance(config, TaylorSeerCacheConfig) and not config.use_lite_mode:
        patterns = [*(config.cache_identifiers or []), *(config.skip_predict_identifiers or [])]
        if not patterns:
            return dataclasses.replace(config, cache_identifiers=[BLOCK_PATTERN])
        _check_patterns(patterns, "TaylorSeerCacheConfig identifiers", re.fullmatch)
    if isinstance(config, PyramidAttentionBroadcastConfig):
        if config.current_timestep_callback is None:
            raise ValueError(
                "PyramidAttentionBroadcastConfig needs `current_timestep_callback`, e.g. "
                "`lambda: pipe.current_timestep`, to know which steps may reuse attention."
            )
        identifiers = [
            *config.spatial_attention_block_identifiers,
            *config.temporal_attention_block_identifiers,
            *config.cross_attention_block_identifiers,
        ]
        _check_patterns(identifiers, "PyramidAttentionBroadcastConfig block identifiers", re.search)
    if isinstance(config, SeaCacheConfig) and config.raw_vision_callback is None:
        return dataclasses.replace(config, raw_vision_callback=_visual_latents)
    return config


def _check_patterns(patterns: list[str], name: str, match) -> None:
    """Refuses identifiers that select none of this model's blocks: the cache would silently do nothing."""
    names = [f"layers.0{suffix}" for suffix in ("", ".attn")]
    if not any(match(pattern, module) for pattern in patterns for module in names):
        raise ValueError(
            f"{name} {patterns} select none of this model's blocks; they are named `layers.N` (attention: "
            f"`layers.N.attn`), e.g. {BLOCK_PATTERN!r}."
        )


def check_cache_for_run(config: Any, call_kinds: list[str]) -> None:
    """Refuses, before the first step, a cache whose per-step settings cannot line up with this run: MagCache's
    ratios (and its calibration) count the steps of one kind of call, so the run must be a single kind throughout,
    with as many steps as the config says."""
    if not isinstance(config, MagCacheConfig):
        return
    kinds = list(dict.fromkeys(call_kinds))
    if len(kinds) > 1:
        switches = [step for step in range(1, len(call_kinds)) if call_kinds[step] != call_kinds[step - 1]]
        raise ValueError(
            f"MagCache needs one kind of transformer call for the whole run, but this run changes at step(s) "
            f"{switches} ({' -> '.join(kinds)}: guidance switching off or another patchification), so one "
            "`mag_ratios` list (or calibration) cannot line up with it. Use a constant `guidance_scale` and a single "
            "`patch_size`, or another cache method such as FirstBlockCacheConfig."
        )
    if config.num_inference_steps != len(call_kinds):
        raise ValueError(
            f"MagCacheConfig has `num_inference_steps={config.num_inference_steps}`, but this run has "
            f"{len(call_kinds)} steps; its ratios would not line up."
        )


class LuminaVideoCacheMixin(CacheMixin):
    """`CacheMixin` whose `enable_cache` adapts the config to this model first (see `adapt_cache_config`)."""

    def enable_cache(self, config: Any) -> None:
        super().enable_cache(adapt_cache_config(config))
