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
"""Multi-scale Next-DiT, the transformer of Lumina-Video (arXiv 2502.06782)."""

import math
from typing import Any

import torch
import torch.nn as nn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelModelPlan, ContextParallelOutput
from diffusers.models.attention import AttentionMixin, AttentionModuleMixin, LuminaFeedForward
from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry, dispatch_attention_fn
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import LuminaLayerNormContinuous, LuminaRMSNormZero, RMSNorm
from diffusers.utils import apply_lora_scale, logging
from diffusers.utils.torch_utils import maybe_allow_in_graph

from ...loaders.single_file_model import LuminaVideoFromOriginalModelMixin
from ...utils.tensor_checks import check_tensor, check_values, finite, has_token_per_row, value_checks_enabled
from ..cache import LuminaVideoCacheMixin


logger = logging.get_logger(__name__)

PatchSize = tuple[int, int, int]


def patch_size_key(patch_size: PatchSize) -> str:
    """Name of the embedder and output head of one patchification, e.g. ``(2, 4, 4) -> "2x4x4"``."""
    return "x".join(str(p) for p in patch_size)


def patchify(hidden_states: torch.Tensor, patch_size: tuple[int, ...]) -> tuple[torch.Tensor, tuple[int, ...]]:
    """`[B, C, *sizes]` -> tokens `[B, N, prod(patch) * C]`, tokens in grid order (e.g. f, h, w) and each token's
    features ordered (patch positions..., c). Works for any number of axes: 3 for video, 2 for audio spectrograms."""
    batch_size, channels, *sizes = hidden_states.shape
    grid = tuple(size // patch for size, patch in zip(sizes, patch_size, strict=True))
    axes = len(grid)
    interleaved = (v for pair in zip(grid, patch_size, strict=True) for v in pair)
    hidden_states = hidden_states.reshape(batch_size, channels, *interleaved)
    # [B, C, g0, p0, g1, p1, ...] -> [B, g0, g1, ..., p0, p1, ..., C]
    order = (0, *range(2, 2 + 2 * axes, 2), *range(3, 3 + 2 * axes, 2), 1)
    return hidden_states.permute(order).reshape(batch_size, math.prod(grid), -1), grid


def unpatchify(tokens: torch.Tensor, patch_size: tuple[int, ...], grid: tuple[int, ...]) -> torch.Tensor:
    """The exact inverse of `patchify`."""
    batch_size, axes = tokens.shape[0], len(grid)
    tokens = tokens.reshape(batch_size, *grid, *patch_size, -1)
    # [B, g0, g1, ..., p0, p1, ..., C] -> [B, C, g0, p0, g1, p1, ...]
    order = (0, 1 + 2 * axes, *(v for i in range(axes) for v in (1 + i, 1 + axes + i)))
    return tokens.permute(order).reshape(batch_size, -1, *(g * p for g, p in zip(grid, patch_size, strict=True)))


def apply_rotary_emb(hidden_states: torch.Tensor, freqs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotates interleaved pairs `(x[2i], x[2i+1])` of `[B, N, heads, head_dim]` by angles whose cos/sin are
    `[N, head_dim // 2]`, in float32 as the reference does. The pairs are viewed as complex numbers so the rotation
    is one elementwise pass with no intermediate copies (the same products and sums as the real form)."""
    cos, sin = freqs
    rotation = torch.complex(cos.float(), sin.float())[None, :, None, :]
    pairs = torch.view_as_complex(hidden_states.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * rotation).flatten(-2).type_as(hidden_states)


# Backends that refuse `attn_mask`, mapped to the backend the masked caption attention runs on instead: the
# varlen form of the same kernel where one ships in the same package (it packs each item's valid caption tokens),
# else PyTorch's SDPA, which takes a boolean mask on every device.
_MASKED_ATTENTION_FALLBACK = {
    AttentionBackendName.FLASH: AttentionBackendName.FLASH_VARLEN,
    AttentionBackendName._FLASH_3: AttentionBackendName._FLASH_VARLEN_3,
    AttentionBackendName.SAGE: AttentionBackendName.SAGE_VARLEN,
    **dict.fromkeys(
        (
            AttentionBackendName.FLASH_HUB,
            AttentionBackendName._FLASH_3_HUB,
            AttentionBackendName.FLASH_4_HUB,
            AttentionBackendName.AITER_FA2_HUB,
            AttentionBackendName._NATIVE_FLASH,
            AttentionBackendName._NATIVE_XLA,
            AttentionBackendName.SAGE_HUB,
            AttentionBackendName.SAGE_BLACKWELL_HUB,
            AttentionBackendName._SAGE_QK_INT8_PV_FP8_CUDA,
            AttentionBackendName._SAGE_QK_INT8_PV_FP8_CUDA_SM90,
            AttentionBackendName._SAGE_QK_INT8_PV_FP16_CUDA,
            AttentionBackendName._SAGE_QK_INT8_PV_FP16_TRITON,
        ),
        AttentionBackendName.NATIVE,
    ),
}


def masked_attention_backend(backend: str | AttentionBackendName | None) -> str | AttentionBackendName | None:
    """The backend for an attention with a key padding mask, given the one the model is set to (`None`: the active
    global backend). Backends that take masks are kept as they are."""
    name = _AttentionBackendRegistry._active_backend if backend is None else AttentionBackendName(backend)
    return _MASKED_ATTENTION_FALLBACK.get(name, backend)


# Backends that read grouped key/value heads themselves (PyTorch SDPA's `enable_gqa`), so the key/value heads need
# no copy per query head.
_NATIVE_GQA_BACKENDS = (AttentionBackendName.NATIVE, AttentionBackendName._NATIVE_MATH)


def uses_native_gqa(backend: str | AttentionBackendName | None, parallel_config: Any) -> bool:
    """Whether `backend` (`None`: the active global backend) takes grouped key/value heads as they are. Context
    parallelism splits the heads across ranks, so it keeps the expanded form."""
    name = _AttentionBackendRegistry._active_backend if backend is None else AttentionBackendName(backend)
    return parallel_config is None and name in _NATIVE_GQA_BACKENDS


# Context parallelism: the RoPE tables and the token stream are split along the tokens before the first block; the
# caption, its mask and the per-item condition stay whole on every rank.
ROPE_CP_PLAN = {
    0: ContextParallelInput(split_dim=0, expected_dims=2, split_output=True),
    1: ContextParallelInput(split_dim=0, expected_dims=2, split_output=True),
}
TOKENS_CP_INPUT = ContextParallelInput(split_dim=1, expected_dims=3, split_output=False)
TOKENS_CP_OUTPUT = ContextParallelOutput(gather_dim=1, expected_dims=3)


class LuminaVideoAttnProcessor:
    """Joint attention of a Lumina-Video block: RoPE self-attention over the video tokens plus a gated attention of
    the same queries over the item's valid caption tokens."""

    _attention_backend = None
    _parallel_config = None

    def __call__(
        self,
        attn: "LuminaVideoAttention",
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        query = attn.norm_q(attn.to_q(hidden_states)).unflatten(-1, (attn.heads, -1))
        key = attn.norm_k(attn.to_k(hidden_states)).unflatten(-1, (attn.kv_heads, -1))
        value = attn.to_v(hidden_states).unflatten(-1, (attn.kv_heads, -1))
        query = apply_rotary_emb(query, rotary_emb)
        key = apply_rotary_emb(key, rotary_emb)

        context_key = attn.norm_added_k(attn.add_k_proj(encoder_hidden_states)).unflatten(-1, (attn.kv_heads, -1))
        context_value = attn.add_v_proj(encoder_hidden_states).unflatten(-1, (attn.kv_heads, -1))

        # Grouped-query attention: query head h reads kv head h // (heads / kv_heads). SDPA reads the groups itself;
        # for every other backend the key/value heads are expanded here.
        groups = attn.heads // attn.kv_heads
        native_gqa = groups > 1 and uses_native_gqa(self._attention_backend, self._parallel_config)
        if groups > 1 and not native_gqa:
            key, value, context_key, context_value = (
                t.repeat_interleave(groups, dim=2) for t in (key, value, context_key, context_value)
            )

        hidden_states = dispatch_attention_fn(
            query,
            key,
            value,
            enable_gqa=native_gqa,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )
        # The caption is not split under context parallelism: each rank's queries read the whole caption locally.
        if encoder_attention_mask is None:
            context_mask, context_backend = None, self._attention_backend
        else:
            context_mask = encoder_attention_mask.bool()[:, None, None, :]
            context_backend = masked_attention_backend(self._attention_backend)
        context_gqa = groups > 1 and uses_native_gqa(context_backend, None)
        if native_gqa and not context_gqa:
            context_key, context_value = (t.repeat_interleave(groups, dim=2) for t in (context_key, context_value))
        context_states = dispatch_attention_fn(
            query,
            context_key,
            context_value,
            attn_mask=context_mask,
            enable_gqa=native_gqa and context_gqa,
            backend=context_backend,
        )
        gate = attn.gate.tanh()[:, None].to(context_states.dtype)
        return attn.to_out[0](torch.addcmul(hidden_states, context_states, gate).flatten(2).type_as(query))


class LuminaVideoAttention(nn.Module, AttentionModuleMixin):
    """Weights of the joint video/caption attention; the computation lives in the processor."""

    _default_processor_cls = LuminaVideoAttnProcessor
    _available_processors = [LuminaVideoAttnProcessor]
    _supports_qkv_fusion = False

    def __init__(
        self,
        dim: int,
        heads: int,
        kv_heads: int,
        context_dim: int,
        qk_norm: bool = True,
        processor: LuminaVideoAttnProcessor | None = None,
    ):
        super().__init__()
        head_dim = dim // heads
        kv_dim = head_dim * kv_heads
        self.heads = heads
        self.kv_heads = kv_heads

        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, kv_dim, bias=False)
        self.to_v = nn.Linear(dim, kv_dim, bias=False)
        self.add_k_proj = nn.Linear(context_dim, kv_dim, bias=False)
        self.add_v_proj = nn.Linear(context_dim, kv_dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim, bias=False)])
        # The reference normalises the whole projected width at once (all heads), before the head split.
        self.norm_q = nn.LayerNorm(dim, eps=1e-5) if qk_norm else nn.Identity()
        self.norm_k = nn.LayerNorm(kv_dim, eps=1e-5) if qk_norm else nn.Identity()
        # No bias on the caption keys' norm: it would add one logit to every key a query reads, which the softmax
        # cancels (the caption keys carry no RoPE). Its gradient is zero, and Adam turns that gradient's rounding
        # noise into full-size steps, so a trained copy drifts with the batch split. The reference checkpoints
        # carry such a bias; the converter drops it.
        self.norm_added_k = nn.LayerNorm(kv_dim, eps=1e-5, bias=False) if qk_norm else nn.Identity()
        self.gate = nn.Parameter(torch.zeros(heads))

        self.set_processor(processor or self._default_processor_cls())

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        **kwargs,
    ) -> torch.Tensor:
        return self.processor(self, hidden_states, encoder_hidden_states, encoder_attention_mask, rotary_emb, **kwargs)


def masked_mean(features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of `features [B, L, D]` over the tokens where `mask [B, L]` is 1 (`None`: all of them)."""
    if mask is None:
        return features.mean(dim=1)
    weights = mask[..., None].to(features.dtype)
    return (features * weights).sum(dim=1) / weights.sum(dim=1)


class LuminaVideoConditionEmbedding(nn.Module):
    """Timestep, motion score and pooled caption, summed into the one conditioning vector of every block."""

    def __init__(self, conditioning_dim: int, cap_feat_dim: int, frequency_dim: int = 256):
        super().__init__()
        self.time_proj = Timesteps(num_channels=frequency_dim, flip_sin_to_cos=True, downscale_freq_shift=0.0)
        self.timestep_embedder = TimestepEmbedding(frequency_dim, conditioning_dim)
        self.motion_embedder = TimestepEmbedding(frequency_dim, conditioning_dim)
        self.caption_embedder = nn.Sequential(
            nn.LayerNorm(cap_feat_dim, eps=1e-5), nn.Linear(cap_feat_dim, conditioning_dim)
        )

    def forward(
        self,
        timestep: torch.Tensor,
        motion: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        dtype = self.timestep_embedder.linear_1.weight.dtype
        time_emb = self.timestep_embedder(self.time_proj(timestep).to(dtype))

        # A negative motion value means "no motion condition": embed 0 and zero the result.
        present = motion >= 0
        motion_emb = self.motion_embedder(self.time_proj(motion.clamp(min=0)).to(dtype))
        motion_emb = motion_emb * present[:, None].to(motion_emb.dtype)

        caption_emb = self.caption_embedder(masked_mean(encoder_hidden_states, encoder_attention_mask).to(dtype))
        return time_emb + motion_emb + caption_emb


def video_rope_axes_dims(attention_head_dim: int) -> tuple[int, int, int]:
    """Lumina-Video's split of a head between the f, h and w axes: 2/8, 3/8 and 3/8."""
    if attention_head_dim % 16 != 0:
        raise ValueError(f"attention head dim must be a multiple of 16 for 3D RoPE, got {attention_head_dim}.")
    unit = attention_head_dim // 8
    return (2 * unit, 3 * unit, 3 * unit)


class LuminaRotaryPosEmbed(nn.Module):
    """RoPE over integer positions of a patch grid with any number of axes, each axis owning `axes_dims[i]`
    channels of the head dim (the axes are concatenated in order).

    The per-axis tables are built once for `max_positions` and sliced per grid shape.
    """

    def __init__(self, axes_dims: tuple[int, ...], theta: float, max_positions: int = 1024):
        super().__init__()
        if any(axis_dim % 2 for axis_dim in axes_dims):
            raise ValueError(f"every RoPE axis needs an even number of channels, got {axes_dims}.")
        self.axes_dims = tuple(axes_dims)
        self.max_positions = max_positions
        positions = torch.arange(max_positions, dtype=torch.float64)
        angles = []
        for axis_dim in self.axes_dims:
            inv_freq = 1.0 / theta ** (torch.arange(0, axis_dim, 2, dtype=torch.float64) / axis_dim)
            angles.append(torch.outer(positions, inv_freq))
        angles = torch.cat(angles, dim=1)
        self.register_buffer("freqs_cos", angles.cos().float(), persistent=False)
        self.register_buffer("freqs_sin", angles.sin().float(), persistent=False)

    def forward(self, grid: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """`(cos, sin)`, each `[prod(grid), sum(axes_dims) // 2]`, for tokens in grid order."""
        if len(grid) != len(self.axes_dims):
            raise ValueError(f"patch grid {grid} has {len(grid)} axes, but the RoPE has {len(self.axes_dims)}.")
        if max(grid) > self.max_positions:
            raise ValueError(f"patch grid {grid} exceeds the {self.max_positions} RoPE positions per axis.")
        splits = [d // 2 for d in self.axes_dims]
        tables = []
        for freqs in (self.freqs_cos, self.freqs_sin):
            parts = []
            for axis, part in enumerate(freqs.split(splits, dim=1)):
                # Positions along this axis, broadcast over the other axes of the grid.
                index = [None] * len(grid) + [slice(None)]
                index[axis] = slice(0, grid[axis])
                parts.append(part[tuple(index)].expand(*grid, -1))
            tables.append(torch.cat(parts, dim=-1).flatten(0, -2))
        return tables[0], tables[1]


class LuminaModulatedRMSNorm(LuminaRMSNormZero):
    """Diffusers' `LuminaRMSNormZero` (same weights) whose condition may also be per token: `[B, D]` modulates
    every token alike (Lumina-Video), `[B, N, D]` modulates each token with its own vector (Lumina-V2A's
    time-aligned conditioning). Returns the modulated input and `gate_msa, scale_mlp, gate_mlp` as `[B, 1 or N,
    dim]`, ready to broadcast over tokens."""

    def forward(
        self, x: torch.Tensor, emb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if emb.ndim == 2:
            emb = emb[:, None]
        scale_msa, gate_msa, scale_mlp, gate_mlp = self.linear(self.silu(emb)).chunk(4, dim=-1)
        return self.norm(x) * (1 + scale_msa), gate_msa, scale_mlp, gate_mlp


@maybe_allow_in_graph
class LuminaVideoTransformerBlock(nn.Module):
    """Next-DiT block: sandwich RMSNorm around attention and SwiGLU, each scaled and tanh-gated by the condition.

    `temb` is one condition per item (`[B, D]`) or one per token (`[B, N, D]`); see `LuminaModulatedRMSNorm`.
    """

    def __init__(
        self,
        dim: int,
        num_attention_heads: int,
        num_kv_heads: int,
        cap_feat_dim: int,
        multiple_of: int,
        ffn_dim_multiplier: float | None,
        norm_eps: float,
        qk_norm: bool,
    ):
        super().__init__()
        self.norm1 = LuminaModulatedRMSNorm(dim, norm_eps=norm_eps, norm_elementwise_affine=True)
        self.norm1_context = RMSNorm(cap_feat_dim, eps=norm_eps)
        self.attn = LuminaVideoAttention(dim, num_attention_heads, num_kv_heads, cap_feat_dim, qk_norm=qk_norm)
        self.norm2 = RMSNorm(dim, eps=norm_eps)
        self.ffn_norm1 = RMSNorm(dim, eps=norm_eps)
        self.feed_forward = LuminaFeedForward(
            dim, int(2 * 4 * dim / 3), multiple_of=multiple_of, ffn_dim_multiplier=ffn_dim_multiplier
        )
        self.ffn_norm2 = RMSNorm(dim, eps=norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None,
        temb: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        norm_hidden_states, gate_msa, scale_mlp, gate_mlp = self.norm1(hidden_states, temb)
        attn_output = self.attn(
            norm_hidden_states, self.norm1_context(encoder_hidden_states), encoder_attention_mask, rotary_emb
        )
        hidden_states = torch.addcmul(hidden_states, gate_msa.tanh(), self.norm2(attn_output))

        ff_output = self.feed_forward(self.ffn_norm1(hidden_states) * (1 + scale_mlp))
        return torch.addcmul(hidden_states, gate_mlp.tanh(), self.ffn_norm2(ff_output))


def build_transformer_blocks(
    num_layers: int,
    hidden_size: int,
    num_attention_heads: int,
    num_kv_heads: int,
    context_dim: int,
    multiple_of: int,
    ffn_dim_multiplier: float | None,
    norm_eps: float,
    qk_norm: bool,
) -> nn.ModuleList:
    """The stack of Next-DiT blocks every Lumina model runs, after checking the head counts fit (GQA)."""
    if num_attention_heads % num_kv_heads != 0:
        raise ValueError(
            f"`num_attention_heads` ({num_attention_heads}) must be a multiple of `num_kv_heads` ({num_kv_heads})."
        )
    return nn.ModuleList(
        [
            LuminaVideoTransformerBlock(
                hidden_size,
                num_attention_heads,
                num_kv_heads,
                context_dim,
                multiple_of,
                ffn_dim_multiplier,
                norm_eps,
                qk_norm,
            )
            for _ in range(num_layers)
        ]
    )


class LuminaVideoTransformer3DModel(
    ModelMixin,
    ConfigMixin,
    AttentionMixin,
    PeftAdapterMixin,
    LuminaVideoCacheMixin,
    LuminaVideoFromOriginalModelMixin,
):
    r"""
    The Multi-scale Next-DiT of Lumina-Video: one set of transformer blocks shared by several patchifications, each
    with its own patch embedder and output head, so sampling can move from coarse to fine patches.

    Args:
        patch_sizes (`tuple[tuple[int, int, int], ...]`): The trained patchifications as `(pF, pH, pW)`.
        in_channels (`int`): Latent channels.
        hidden_size (`int`): Width of the token stream.
        num_layers (`int`): Number of transformer blocks.
        num_attention_heads (`int`): Query heads.
        num_kv_heads (`int`): Key/value heads (grouped-query attention).
        multiple_of (`int`), ffn_dim_multiplier (`float`, *optional*): SwiGLU width rounding, as in the reference.
        norm_eps (`float`): Epsilon of the RMS norms.
        qk_norm (`bool`): LayerNorm on queries and keys.
        cap_feat_dim (`int`): Width of the text encoder features.
        rope_theta (`float`): RoPE base.
        timestep_scale (`float`): Factor on the time in [0, 1] before its sinusoidal embedding.
        motion_scale (`float`): Factor on the motion score before its sinusoidal embedding.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["LuminaVideoTransformerBlock"]
    _repeated_blocks = ["LuminaVideoTransformerBlock"]
    _skip_layerwise_casting_patterns = ["patch_embedders", "condition_embedder", "norm"]
    _keep_in_fp32_modules = ["condition_embedder"]

    @register_to_config
    def __init__(
        self,
        patch_sizes: tuple[PatchSize, ...] = ((1, 2, 2), (2, 2, 2), (2, 4, 4)),
        in_channels: int = 16,
        hidden_size: int = 2304,
        num_layers: int = 24,
        num_attention_heads: int = 16,
        num_kv_heads: int = 8,
        multiple_of: int = 256,
        ffn_dim_multiplier: float | None = None,
        norm_eps: float = 1e-5,
        qk_norm: bool = True,
        cap_feat_dim: int = 2304,
        rope_theta: float = 256.0,
        timestep_scale: float = 1000.0,
        motion_scale: float = 20.0,
    ):
        super().__init__()
        patch_sizes = tuple(tuple(int(p) for p in patch) for patch in patch_sizes)
        if any(len(patch) != 3 for patch in patch_sizes):
            raise ValueError(f"`patch_sizes` must hold (pF, pH, pW) triples, got {patch_sizes}.")
        # JSON turns tuples into lists; keep the config in the documented tuple form.
        self.register_to_config(patch_sizes=patch_sizes)
        conditioning_dim = min(hidden_size, 1024)

        self.patch_embedders = nn.ModuleDict(
            {patch_size_key(p): nn.Linear(in_channels * p[0] * p[1] * p[2], hidden_size) for p in patch_sizes}
        )
        self.rope = LuminaRotaryPosEmbed(video_rope_axes_dims(hidden_size // num_attention_heads), rope_theta)
        self.condition_embedder = LuminaVideoConditionEmbedding(conditioning_dim, cap_feat_dim)
        self.layers = build_transformer_blocks(
            num_layers,
            hidden_size,
            num_attention_heads,
            num_kv_heads,
            cap_feat_dim,
            multiple_of,
            ffn_dim_multiplier,
            norm_eps,
            qk_norm,
        )
        self.norm_outs = nn.ModuleDict(
            {
                patch_size_key(p): LuminaLayerNormContinuous(
                    hidden_size,
                    conditioning_dim,
                    elementwise_affine=False,
                    eps=1e-6,
                    out_dim=in_channels * p[0] * p[1] * p[2],
                )
                for p in patch_sizes
            }
        )
        self.gradient_checkpointing = False

    @property
    def _cp_plan(self) -> dict[str, ContextParallelModelPlan]:
        """Diffusers' context-parallel plan; the tokens are gathered again at whichever output head runs, so the
        plan names every patchification of this config."""
        return {
            "rope": ROPE_CP_PLAN,
            "layers.0": {"hidden_states": TOKENS_CP_INPUT},
            **{f"norm_outs.{patch_size_key(p)}": TOKENS_CP_OUTPUT for p in self.config.patch_sizes},
        }

    @property
    def finest_patch_size(self) -> PatchSize:
        """The patchification with the smallest patches (the most tokens), the default."""
        return min(self.config.patch_sizes, key=math.prod)

    @staticmethod
    def _per_item(value: float | torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
        """A float32 `[B]` tensor from a number, a one-element tensor or a `[B]` tensor."""
        value = torch.as_tensor(value, device=device, dtype=torch.float32).reshape(-1)
        return value.expand(batch_size) if value.numel() == 1 else value

    def _check_inputs(
        self,
        hidden_states: torch.Tensor,
        timestep: float | torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None,
        motion_score: float | torch.Tensor | None,
        patch_size: PatchSize,
    ) -> None:
        """Types and shapes always; values (finite, in range, a caption token per row) outside compilation only."""
        check_tensor("hidden_states", hidden_states)
        check_tensor("encoder_hidden_states", encoder_hidden_states)
        if encoder_attention_mask is not None:
            check_tensor("encoder_attention_mask", encoder_attention_mask, kind="mask")
        allowed = self.config.patch_sizes
        if patch_size not in allowed:
            raise ValueError(f"`patch_size` must be one of {list(allowed)}, got {patch_size}.")
        if hidden_states.ndim != 5 or hidden_states.shape[1] != self.config.in_channels:
            raise ValueError(
                f"`hidden_states` must be [B, {self.config.in_channels}, F, H, W], got {tuple(hidden_states.shape)}."
            )
        batch_size, _, frames, height, width = hidden_states.shape
        if batch_size == 0:
            raise ValueError("`hidden_states` is an empty batch; pass at least one item.")
        p_f, p_h, p_w = patch_size
        if frames % p_f != 0 and frames != 1:
            raise ValueError(f"`hidden_states` has {frames} frames, not divisible by the temporal patch {p_f}.")
        if height % p_h != 0 or width % p_w != 0:
            raise ValueError(
                f"`hidden_states` height {height} and width {width} must be divisible by the patch {p_h}x{p_w}."
            )
        if encoder_hidden_states.ndim != 3 or encoder_hidden_states.shape[-1] != self.config.cap_feat_dim:
            raise ValueError(
                f"`encoder_hidden_states` must be [B, L, {self.config.cap_feat_dim}] (`cap_feat_dim` "
                f"{self.config.cap_feat_dim}), got {tuple(encoder_hidden_states.shape)}."
            )
        if encoder_hidden_states.shape[0] != batch_size:
            raise ValueError(
                f"`encoder_hidden_states` has batch size {encoder_hidden_states.shape[0]}, but `hidden_states` has "
                f"{batch_size}."
            )
        if encoder_attention_mask is not None and encoder_attention_mask.shape != encoder_hidden_states.shape[:2]:
            raise ValueError(
                f"`encoder_attention_mask` must have shape {tuple(encoder_hidden_states.shape[:2])} (batch, tokens), "
                f"got {tuple(encoder_attention_mask.shape)}."
            )
        per_item = {"timestep": timestep, "motion_score": motion_score}
        for name, value in per_item.items():
            if value is None and name == "timestep":
                raise ValueError("`timestep` is required: a float or a [B] tensor of times in [0, 1].")
            if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor, type(None))):
                raise TypeError(f"`{name}` must be a float or a [B] tensor, got {type(value).__name__}.")
            if isinstance(value, torch.Tensor):
                if value.dtype == torch.bool or value.is_complex():
                    raise TypeError(f"`{name}` must be a real-valued tensor, got {value.dtype}.")
                if value.numel() not in (1, batch_size):
                    raise ValueError(
                        f"`{name}` has {value.numel()} values, but `hidden_states` has batch size {batch_size} "
                        "(give one value or one per item)."
                    )
        if not value_checks_enabled():
            return
        times = torch.as_tensor(timestep, dtype=torch.float32, device=hidden_states.device)
        conditions = [
            finite("hidden_states", hidden_states),
            finite("encoder_hidden_states", encoder_hidden_states),
            finite("timestep", times),
            ((times >= 0).all() & (times <= 1).all(), "`timestep` must lie in [0, 1] (0 = noise, 1 = data)."),
        ]
        if encoder_attention_mask is not None:
            conditions.append(has_token_per_row("encoder_attention_mask", encoder_attention_mask))
        if motion_score is not None:
            conditions.append(finite("motion_score", torch.as_tensor(motion_score, device=hidden_states.device)))
        check_values(conditions)

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None,
        motion_score: float | torch.Tensor | None = None,
        patch_size: PatchSize | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        return_dict: bool = True,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        r"""
        Predicts the velocity from noise to data.

        Args:
            hidden_states (`torch.Tensor` of shape `[B, C, F, H, W]`): Latents.
            timestep (`torch.Tensor` of shape `[B]` or a float): Time in [0, 1], 0 = pure noise, 1 = clean data.
            encoder_hidden_states (`torch.Tensor` of shape `[B, L, cap_feat_dim]`): Caption features.
            encoder_attention_mask (`torch.Tensor` of shape `[B, L]`, *optional*):
                1 for real caption tokens. `None` when no caption is padded: the caption attention then runs without a
                mask (cheaper, and on the model's own attention backend). Deciding that reads the mask's values, so
                the caller does it once (the pipelines do, per call) rather than every forward doing a device sync.
            motion_score (`float` or `torch.Tensor` of shape `[B]`, *optional*):
                Motion condition; `None` or a negative value means no motion condition.
            patch_size (`tuple[int, int, int]`, *optional*): One of `config.patch_sizes`; defaults to the finest.
            attention_kwargs (`dict`, *optional*): `{"scale": ...}` sets the LoRA scale.
            return_dict (`bool`): Return a `Transformer2DModelOutput` instead of a tuple.
        """
        patch_size = tuple(patch_size) if patch_size is not None else self.finest_patch_size
        self._check_inputs(
            hidden_states, timestep, encoder_hidden_states, encoder_attention_mask, motion_score, patch_size
        )
        batch_size = hidden_states.shape[0]
        device = hidden_states.device
        timestep, motion_score = (
            self._per_item(value, batch_size, device)
            for value in (timestep, -1.0 if motion_score is None else motion_score)
        )
        # The config's own triple: under torch.compile the caller's ints may become symbolic after a scale switch,
        # and the head's name must come from constants.
        patch_size = self.config.patch_sizes[self.config.patch_sizes.index(patch_size)]

        # 1. A single frame goes through a temporal patch by repetition; the output is cut back to one frame.
        num_frames = hidden_states.shape[2]
        if num_frames == 1 and patch_size[0] > 1:
            hidden_states = hidden_states.repeat(1, 1, patch_size[0], 1, 1)

        # 2. Patch embedding and RoPE for this grid
        key = patch_size_key(patch_size)
        tokens, grid = patchify(hidden_states, patch_size)
        tokens = self.patch_embedders[key](tokens)
        rotary_emb = self.rope(grid)

        # 3. Conditioning
        temb = self.condition_embedder(
            timestep * self.config.timestep_scale,
            motion_score * self.config.motion_scale,
            encoder_hidden_states,
            encoder_attention_mask,
        ).to(tokens.dtype)

        # 4. Transformer blocks
        for block in self.layers:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                tokens = self._gradient_checkpointing_func(
                    block, tokens, encoder_hidden_states, encoder_attention_mask, temb, rotary_emb
                )
            else:
                tokens = block(tokens, encoder_hidden_states, encoder_attention_mask, temb, rotary_emb)

        # 5. Output head of this patchification and unpatchify
        tokens = self.norm_outs[key](tokens, temb)
        output = unpatchify(tokens, patch_size, grid)[:, :, :num_frames]

        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)
