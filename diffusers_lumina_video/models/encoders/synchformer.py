# Copyright 2026 The diffusers-lumina-video authors. All rights reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""The visual branch of Synchformer, as MMAudio uses it for Lumina-V2A's high-frame-rate video features.

A divided space-time ViT (MotionFormer) over 16-frame segments, whose tokens are pooled per 2-frame tubelet by one
transformer encoder layer with a learnable CLS token: 8 features per segment.
"""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import AttentionMixin, AttentionModuleMixin, FeedForward
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput

from ...loaders.single_file_synchformer import SynchformerFromOriginalModelMixin


@dataclass
class SynchformerEncoderOutput(BaseOutput):
    """
    Args:
        features (`torch.Tensor` of shape `(batch_size, num_segments * features_per_segment, hidden_size)`):
            One feature per 2-frame tubelet, segment after segment (segments overlap by half, so the sequence steps
            back in time at each segment boundary).
    """

    features: torch.Tensor


def _group_patches(tokens: torch.Tensor, num_frames: int, over_time: bool) -> torch.Tensor:
    """`[B, F*N, H, D]` (frame-major) -> `[B*N, F, H, D]` (each position over time) or `[B*F, N, H, D]`."""
    tokens = tokens.unflatten(1, (num_frames, -1))
    if over_time:
        tokens = tokens.transpose(1, 2)
    return tokens.flatten(0, 1)


def _ungroup_patches(tokens: torch.Tensor, batch_size: int, over_time: bool) -> torch.Tensor:
    """The inverse of `_group_patches`."""
    tokens = tokens.unflatten(0, (batch_size, -1))
    if over_time:
        tokens = tokens.transpose(1, 2)
    return tokens.flatten(1, 2)


class SynchformerDividedAttnProcessor:
    """Attention along one axis of the (frame, position) grid. Each group of patch queries attends over its group
    plus the CLS key/value; the CLS query attends over every token."""

    _attention_backend = None
    _parallel_config = None

    def __call__(
        self, attn: "SynchformerDividedAttention", hidden_states: torch.Tensor, num_frames: int, over_time: bool
    ) -> torch.Tensor:
        batch_size = hidden_states.shape[0]
        # timm layout: the projection is [q | k | v], each then split into heads.
        query, key, value = (t.unflatten(-1, (attn.heads, -1)) for t in attn.to_qkv(hidden_states).chunk(3, dim=-1))

        cls_states = dispatch_attention_fn(query[:, :1], key, value, backend=self._attention_backend)

        cls_key, cls_value = key[:, :1], value[:, :1]
        query, key, value = (_group_patches(t[:, 1:], num_frames, over_time) for t in (query, key, value))
        group_size = query.shape[0] // batch_size
        key = torch.cat([cls_key.repeat_interleave(group_size, dim=0), key], dim=1)
        value = torch.cat([cls_value.repeat_interleave(group_size, dim=0), value], dim=1)
        patch_states = dispatch_attention_fn(query, key, value, backend=self._attention_backend)
        patch_states = _ungroup_patches(patch_states, batch_size, over_time)

        hidden_states = torch.cat([cls_states, patch_states], dim=1).flatten(2)
        return attn.to_out(hidden_states)


class SynchformerDividedAttention(nn.Module, AttentionModuleMixin):
    """Weights of one divided (time or space) attention; the computation lives in the processor."""

    _default_processor_cls = SynchformerDividedAttnProcessor
    _available_processors = [SynchformerDividedAttnProcessor]
    _supports_qkv_fusion = False

    def __init__(self, dim: int, heads: int, processor: SynchformerDividedAttnProcessor | None = None):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.to_out = nn.Linear(dim, dim)
        self.set_processor(processor or self._default_processor_cls())

    def forward(self, hidden_states: torch.Tensor, num_frames: int, over_time: bool) -> torch.Tensor:
        return self.processor(self, hidden_states, num_frames, over_time)


class SynchformerTubeletEmbed(nn.Module):
    """Cuts `[B, C, F, H, W]` into tubelets and flattens them frame-major to `[B, f*h*w, D]`."""

    def __init__(self, in_channels: int, dim: int, patch_size: int, temporal_patch_size: int):
        super().__init__()
        kernel = (temporal_patch_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=kernel, stride=kernel)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.proj(pixel_values).flatten(2).transpose(1, 2)


class SynchformerDividedBlock(nn.Module):
    """Pre-norm block: attention over time, then over space, then the MLP, each with a residual."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, eps: float):
        super().__init__()
        self.norm_time = nn.LayerNorm(dim, eps=eps)
        self.time_attn = SynchformerDividedAttention(dim, heads)
        self.norm_space = nn.LayerNorm(dim, eps=eps)
        self.space_attn = SynchformerDividedAttention(dim, heads)
        self.norm_ff = nn.LayerNorm(dim, eps=eps)
        self.ff = FeedForward(dim, activation_fn="gelu", inner_dim=ffn_dim)

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        hidden_states = hidden_states + self.time_attn(self.norm_time(hidden_states), num_frames, over_time=True)
        hidden_states = hidden_states + self.space_attn(self.norm_space(hidden_states), num_frames, over_time=False)
        return hidden_states + self.ff(self.norm_ff(hidden_states))


class SynchformerPoolingAttention(nn.Module):
    """`nn.MultiheadAttention`'s weights, names and initialisation (`in_proj_weight`, `in_proj_bias`, `out_proj`),
    with a forward that calls `out_proj` as a module. PyTorch's own forward reads `out_proj.weight` without calling
    `out_proj`, so hook-based offloading (`enable_sequential_cpu_offload`) never loads it."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        projected = F.linear(hidden_states, self.in_proj_weight, self.in_proj_bias)
        query, key, value = (t.unflatten(-1, (self.heads, -1)) for t in projected.chunk(3, dim=-1))
        return self.out_proj(dispatch_attention_fn(query, key, value).flatten(2))


class SynchformerPoolingLayer(nn.Module):
    """A pre-norm `nn.TransformerEncoderLayer` (GELU, no dropout) with the same parameter names, built from modules
    that each run their own weights (see `SynchformerPoolingAttention`)."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, eps: float):
        super().__init__()
        self.self_attn = SynchformerPoolingAttention(dim, heads)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.norm2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.self_attn(self.norm1(hidden_states))
        return hidden_states + self.linear2(F.gelu(self.linear1(self.norm2(hidden_states))))


class SynchformerSpatialAggregator(nn.Module):
    """Pools the positions of each tubelet step into one vector: a learnable CLS token read out after one pre-norm
    transformer encoder layer."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, eps: float):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.layer = SynchformerPoolingLayer(dim, heads, ffn_dim, eps)

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        """`[B, f*h*w, D]` (frame-major) -> `[B, f, D]`."""
        tokens = hidden_states.unflatten(1, (num_frames, -1)).flatten(0, 1)
        cls_token = self.cls_token.to(tokens.dtype).expand(tokens.shape[0], -1, -1)
        pooled = self.layer(torch.cat([cls_token, tokens], dim=1))[:, 0]
        return pooled.unflatten(0, (hidden_states.shape[0], num_frames))


class SynchformerEncoder(ModelMixin, ConfigMixin, AttentionMixin, SynchformerFromOriginalModelMixin):
    r"""
    Synchformer's visual encoder (MotionFormer with divided space-time attention), as MMAudio runs it to condition
    video-to-audio generation on what happens when.

    Args:
        in_channels (`int`): Colour channels of the frames.
        hidden_size (`int`): Width of the token stream and of the output features.
        num_layers (`int`): Divided space-time blocks.
        num_attention_heads (`int`): Heads of every attention, the aggregation layer's included.
        ffn_dim (`int`): Hidden width of the MLPs.
        patch_size (`int`): Spatial side of a tubelet.
        temporal_patch_size (`int`): Frames per tubelet (one output feature each).
        frame_size (`int`): Side of the square input frames.
        num_frames (`int`): Frames per segment.
        norm_eps (`float`): Epsilon of every LayerNorm.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["SynchformerDividedBlock", "SynchformerSpatialAggregator"]

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        hidden_size: int = 768,
        num_layers: int = 12,
        num_attention_heads: int = 12,
        ffn_dim: int = 3072,
        patch_size: int = 16,
        temporal_patch_size: int = 2,
        frame_size: int = 224,
        num_frames: int = 16,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"`num_attention_heads` must divide `hidden_size` {hidden_size}, got {num_attention_heads}."
            )
        if frame_size % patch_size or num_frames % temporal_patch_size:
            raise ValueError(
                f"`frame_size` {frame_size} and `num_frames` {num_frames} must be multiples of `patch_size` "
                f"{patch_size} and `temporal_patch_size` {temporal_patch_size}."
            )
        positions = (frame_size // patch_size) ** 2
        self.patch_embed = SynchformerTubeletEmbed(in_channels, hidden_size, patch_size, temporal_patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + positions, hidden_size))
        self.temp_embed = nn.Parameter(torch.zeros(1, num_frames // temporal_patch_size, hidden_size))
        self.blocks = nn.ModuleList(
            SynchformerDividedBlock(hidden_size, num_attention_heads, ffn_dim, norm_eps) for _ in range(num_layers)
        )
        self.norm_out = nn.LayerNorm(hidden_size, eps=norm_eps)
        self.spatial_aggregator = SynchformerSpatialAggregator(hidden_size, num_attention_heads, ffn_dim, norm_eps)
        self.gradient_checkpointing = False

    def _check_pixel_values(self, pixel_values: torch.Tensor) -> None:
        config = self.config
        expected = (config.num_frames, config.in_channels, config.frame_size, config.frame_size)
        if not isinstance(pixel_values, torch.Tensor) or not pixel_values.is_floating_point():
            raise TypeError(
                "`pixel_values` must be a floating-point tensor normalised to [-1, 1], got "
                f"{getattr(pixel_values, 'dtype', type(pixel_values).__name__)}."
            )
        if pixel_values.ndim != 6 or tuple(pixel_values.shape[2:]) != expected:
            raise ValueError(
                f"`pixel_values` must have shape [batch, segments, {', '.join(map(str, expected))}] "
                f"(segments of {config.num_frames} frames, {config.in_channels} channels, "
                f"{config.frame_size}x{config.frame_size} pixels), got {list(pixel_values.shape)}."
            )

    def _add_position_embeddings(self, patch_tokens: torch.Tensor) -> torch.Tensor:
        """Prepends the CLS token; adds spatial `pos_embed` (per position) plus `temp_embed` (per tubelet step)."""
        steps, positions = self.temp_embed.shape[1], self.pos_embed.shape[1] - 1
        patch_position = self.pos_embed[:, 1:].repeat(1, steps, 1) + self.temp_embed.repeat_interleave(positions, 1)
        cls_token = (self.cls_token + self.pos_embed[:, :1]).expand(patch_tokens.shape[0], -1, -1)
        return torch.cat([cls_token, patch_tokens + patch_position], dim=1)

    def forward(
        self, pixel_values: torch.Tensor, return_dict: bool = True
    ) -> SynchformerEncoderOutput | tuple[torch.Tensor]:
        r"""
        Args:
            pixel_values (`torch.Tensor` of shape `(batch_size, num_segments, num_frames, channels, size, size)`):
                Segments of frames normalised to [-1, 1] (see `SynchformerVideoProcessor`). Segments are encoded
                independently.
            return_dict (`bool`): Return a `SynchformerEncoderOutput` instead of a tuple.
        """
        self._check_pixel_values(pixel_values)
        batch_size, num_segments = pixel_values.shape[:2]
        steps = self.config.num_frames // self.config.temporal_patch_size
        # [B, S, F, C, H, W] -> [B*S, C, F, H, W]
        segments = pixel_values.flatten(0, 1).transpose(1, 2).to(self.patch_embed.proj.weight.dtype)
        hidden_states = self._add_position_embeddings(self.patch_embed(segments))
        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden_states = self._gradient_checkpointing_func(block, hidden_states, steps)
            else:
                hidden_states = block(hidden_states, steps)
        hidden_states = self.norm_out(hidden_states[:, 1:])
        features = self.spatial_aggregator(hidden_states, steps)
        features = features.unflatten(0, (batch_size, num_segments)).flatten(1, 2)
        if not return_dict:
            return (features,)
        return SynchformerEncoderOutput(features=features)
