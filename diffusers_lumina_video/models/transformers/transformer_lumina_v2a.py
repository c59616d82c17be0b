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
"""Lumina-V2A: a rectified-flow Next-DiT over AudioLDM VAE latents, conditioned on a video and a text.

It is Lumina-Video's transformer applied to a 2D (time x frequency) latent: the same blocks, attention processor and
RoPE (imported from `transformer_lumina_video`). What this file adds is the audio patchify, the conditioning and the
output head:

- the gated context branch of every block attends over the concatenated visual (CLIP frames) and text tokens;
- a global condition `c = time embedding + MLP(pooled visual, pooled text)` drives the output head;
- every audio token is modulated by `c` plus the Synchformer features of its time step (put back in time order,
  projected and resampled onto the audio latent timeline), so scale and gate vary along time;
- each condition stream has a learned "empty" embedding that replaces it when it is dropped (training dropout, and
  the negative branch of classifier-free guidance).
"""

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.attention import AttentionMixin
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import LuminaLayerNormContinuous
from diffusers.utils import apply_lora_scale

from ..cache import LuminaVideoCacheMixin
from .transformer_lumina_video import (
    ROPE_CP_PLAN,
    TOKENS_CP_INPUT,
    TOKENS_CP_OUTPUT,
    LuminaRotaryPosEmbed,
    build_transformer_blocks,
    masked_mean,
    patchify,
    unpatchify,
)


# Synchformer gives 8 features per 16-frame segment, one per 2-frame tubelet; segments start every 8 frames, so
# consecutive ones share 4 tubelets.
SYNC_FEATURES_PER_SEGMENT = 8
SYNC_SEGMENT_STRIDE = SYNC_FEATURES_PER_SEGMENT // 2


def sync_features_in_time_order(sync_hidden_states: torch.Tensor) -> torch.Tensor:
    """`[B, S * 8, D]` Synchformer features, flattened segment by segment, to `[B, 4 * (S + 1), D]`: one feature per
    tubelet of the clip in time order, the mean of the two segments that see it where they overlap.

    The flattened sequence jumps back 0.32 s at every segment boundary, so spreading it evenly over the audio (as
    MMAudio does) shows an event at two places, up to 0.3 s from where it happens; in time order it shows once."""
    batch_size, length, width = sync_hidden_states.shape
    segments = sync_hidden_states.view(
        batch_size, length // SYNC_FEATURES_PER_SEGMENT, SYNC_FEATURES_PER_SEGMENT, width
    )
    first_half, second_half = segments.split(SYNC_SEGMENT_STRIDE, dim=2)
    # Segment s's first half is tubelets 4s .. 4s+3, its second half 4s+4 .. 4s+7.
    total = F.pad(first_half.flatten(1, 2), (0, 0, 0, SYNC_SEGMENT_STRIDE)) + F.pad(
        second_half.flatten(1, 2), (0, 0, SYNC_SEGMENT_STRIDE, 0)
    )
    count = torch.full((total.shape[1], 1), 2.0, dtype=total.dtype, device=total.device)
    count[:SYNC_SEGMENT_STRIDE] = count[-SYNC_SEGMENT_STRIDE:] = 1.0
    return total / count


def audio_rope_axes_dims(attention_head_dim: int) -> tuple[int, int]:
    """Half of each head for the time axis, half for the frequency axis."""
    if attention_head_dim % 4 != 0:
        raise ValueError(f"attention head dim must be a multiple of 4 for 2D RoPE, got {attention_head_dim}.")
    return (attention_head_dim // 2, attention_head_dim // 2)


class LuminaV2AConditionEmbedding(nn.Module):
    """The global condition (time + pooled visual and text features) and the time-aligned sync condition."""

    def __init__(
        self,
        conditioning_dim: int,
        visual_feat_dim: int,
        text_feat_dim: int,
        sync_feat_dim: int,
        latent_frames_per_sync_feature: float,
        frequency_dim: int = 256,
    ):
        super().__init__()
        self.latent_frames_per_sync_feature = latent_frames_per_sync_feature
        self.time_proj = Timesteps(num_channels=frequency_dim, flip_sin_to_cos=True, downscale_freq_shift=0.0)
        self.timestep_embedder = TimestepEmbedding(frequency_dim, conditioning_dim)
        self.visual_norm = nn.LayerNorm(visual_feat_dim, eps=1e-5)
        self.text_norm = nn.LayerNorm(text_feat_dim, eps=1e-5)
        self.pooled_embedder = nn.Sequential(
            nn.Linear(visual_feat_dim + text_feat_dim, conditioning_dim),
            nn.SiLU(),
            nn.Linear(conditioning_dim, conditioning_dim),
        )
        # Which of the 8 tubelets of its segment a sync feature comes from (a Synchformer feature depends on it).
        self.sync_position_embedding = nn.Parameter(torch.zeros(SYNC_FEATURES_PER_SEGMENT, sync_feat_dim))
        self.sync_conv = nn.Conv1d(sync_feat_dim, conditioning_dim, kernel_size=7, padding=3)
        self.sync_proj = nn.Linear(conditioning_dim, conditioning_dim)

    def forward(
        self,
        timestep: torch.Tensor,
        visual_hidden_states: torch.Tensor,
        visual_attention_mask: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        sync_hidden_states: torch.Tensor,
        num_time_steps: int,
        time_patch: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The global condition `[B, conditioning_dim]` (of the output head, and the base of every token's
        condition) and the sync condition `[B, num_time_steps, conditioning_dim]`. Both come from this one call so
        that hook-based offloading, which loads a module's weights around its `forward`, sees every weight used."""
        dtype = self.timestep_embedder.linear_1.weight.dtype
        time_emb = self.timestep_embedder(self.time_proj(timestep).to(dtype))
        pooled = torch.cat(
            [
                self.visual_norm(masked_mean(visual_hidden_states, visual_attention_mask).to(dtype)),
                self.text_norm(masked_mean(encoder_hidden_states, encoder_attention_mask).to(dtype)),
            ],
            dim=-1,
        )
        return time_emb + self.pooled_embedder(pooled), self.sync_condition(
            sync_hidden_states, num_time_steps, time_patch
        )

    def sync_condition(self, sync_hidden_states: torch.Tensor, num_time_steps: int, time_patch: int) -> torch.Tensor:
        """`[B, num_time_steps, conditioning_dim]`: the sync features in time order, projected, then each audio token
        given the feature of the tubelet its centre falls in (tokens after the last segment take the last one)."""
        dtype = self.sync_conv.weight.dtype
        length = sync_hidden_states.shape[1]
        positions = self.sync_position_embedding.repeat(length // SYNC_FEATURES_PER_SEGMENT, 1)
        features = sync_features_in_time_order(sync_hidden_states.to(dtype) + positions).transpose(1, 2)
        features = F.silu(self.sync_conv(features))
        centres = (torch.arange(num_time_steps, device=features.device, dtype=torch.float64) + 0.5) * time_patch
        tubelets = (centres / self.latent_frames_per_sync_feature).floor().long().clamp(max=features.shape[-1] - 1)
        return self.sync_proj(features[:, :, tubelets].transpose(1, 2))


class LuminaV2ATransformerModel(ModelMixin, ConfigMixin, AttentionMixin, PeftAdapterMixin, LuminaVideoCacheMixin):
    r"""
    The Lumina-V2A transformer: predicts the velocity from noise to data of AudioLDM VAE latents `[B, 8, T, 16]`
    (25 latent frames per second of 16 kHz audio), given CLIP frame features, CLIP text features and Synchformer
    features of the video.

    Args:
        in_channels (`int`): Latent channels (8 for AudioLDM's VAE).
        patch_size (`tuple[int, int]`): Patch over (time, frequency) latent bins.
        hidden_size (`int`): Width of the token stream.
        num_layers (`int`): Number of transformer blocks.
        num_attention_heads (`int`), num_kv_heads (`int`): Query heads and key/value heads (grouped-query attention).
        multiple_of (`int`), ffn_dim_multiplier (`float`, *optional*): SwiGLU width rounding, as in Lumina-Video.
        norm_eps (`float`): Epsilon of the RMS norms.
        qk_norm (`bool`): LayerNorm on queries and keys.
        context_dim (`int`): Width the visual and text tokens are projected to before the blocks attend to them.
        visual_feat_dim (`int`): Width of the CLIP frame features.
        text_feat_dim (`int`): Width of the CLIP text token features.
        sync_feat_dim (`int`): Width of the Synchformer features.
        rope_theta (`float`): RoPE base.
        timestep_scale (`float`): Factor on the time in [0, 1] before its sinusoidal embedding.
        max_latent_frames (`int`): Longest latent the model accepts (25 per second: 256 is 10.24 s).
        latent_frames_per_sync_feature (`float`): Audio latent frames per Synchformer tubelet, which places each sync
            feature on the audio timeline: a tubelet is 2 frames at 25 fps (0.08 s), a latent frame 0.04 s.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["LuminaVideoTransformerBlock"]
    _repeated_blocks = ["LuminaVideoTransformerBlock"]
    _skip_layerwise_casting_patterns = ["patch_embedder", "condition_embedder", "norm", "empty_"]
    _keep_in_fp32_modules = ["condition_embedder"]
    # The per-token condition enters every block whole, so each block takes its rank's share of it.
    _cp_plan = {
        "rope": ROPE_CP_PLAN,
        "layers.0": {"hidden_states": TOKENS_CP_INPUT},
        "layers.*": {"temb": TOKENS_CP_INPUT},
        "norm_out": TOKENS_CP_OUTPUT,
    }

    @register_to_config
    def __init__(
        self,
        in_channels: int = 8,
        patch_size: tuple[int, int] = (1, 4),
        hidden_size: int = 1024,
        num_layers: int = 16,
        num_attention_heads: int = 16,
        num_kv_heads: int = 8,
        multiple_of: int = 256,
        ffn_dim_multiplier: float | None = None,
        norm_eps: float = 1e-5,
        qk_norm: bool = True,
        context_dim: int = 1024,
        visual_feat_dim: int = 768,
        text_feat_dim: int = 768,
        sync_feat_dim: int = 768,
        rope_theta: float = 10000.0,
        timestep_scale: float = 1000.0,
        max_latent_frames: int = 256,
        latent_frames_per_sync_feature: float = 2.0,
    ):
        super().__init__()
        if not latent_frames_per_sync_feature > 0:
            raise ValueError(
                f"`latent_frames_per_sync_feature` must be > 0, got {latent_frames_per_sync_feature!r} (2.0: 0.08 s "
                "Synchformer tubelets over 0.04 s latent frames)."
            )
        patch_size = tuple(int(p) for p in patch_size)
        if len(patch_size) != 2 or min(patch_size) < 1:
            raise ValueError(f"`patch_size` must be two positive integers (time, frequency), got {patch_size}.")
        self.register_to_config(patch_size=patch_size)
        conditioning_dim = min(hidden_size, 1024)
        patch_dim = in_channels * patch_size[0] * patch_size[1]

        self.patch_embedder = nn.Linear(patch_dim, hidden_size)
        self.rope = LuminaRotaryPosEmbed(
            audio_rope_axes_dims(hidden_size // num_attention_heads), rope_theta, max_positions=max_latent_frames
        )
        self.condition_embedder = LuminaV2AConditionEmbedding(
            conditioning_dim, visual_feat_dim, text_feat_dim, sync_feat_dim, latent_frames_per_sync_feature
        )
        self.visual_proj = nn.Linear(visual_feat_dim, context_dim)
        self.text_proj = nn.Linear(text_feat_dim, context_dim)
        self.empty_visual = nn.Parameter(torch.zeros(visual_feat_dim))
        self.empty_text = nn.Parameter(torch.zeros(text_feat_dim))
        self.empty_sync = nn.Parameter(torch.zeros(sync_feat_dim))
        self.layers = build_transformer_blocks(
            num_layers,
            hidden_size,
            num_attention_heads,
            num_kv_heads,
            context_dim,
            multiple_of,
            ffn_dim_multiplier,
            norm_eps,
            qk_norm,
        )
        self.norm_out = LuminaLayerNormContinuous(
            hidden_size, conditioning_dim, elementwise_affine=False, eps=1e-6, out_dim=patch_dim
        )
        self.gradient_checkpointing = False

    @staticmethod
    def _drop(features: torch.Tensor, empty: torch.Tensor, drop: torch.Tensor | None) -> torch.Tensor:
        """`features` with the items where `drop` is True replaced by the stream's empty embedding."""
        if drop is None:
            return features
        drop = drop.to(device=features.device, dtype=torch.bool)[:, None, None]
        return torch.where(drop, empty.to(features.dtype).expand_as(features), features)

    @staticmethod
    def _drop_mask(mask: torch.Tensor, drop: torch.Tensor | None) -> torch.Tensor:
        """A dropped stream is one valid token (its empty embedding), whatever its padding was."""
        if drop is None:
            return mask
        only_first = torch.zeros_like(mask)
        only_first[:, 0] = 1
        return torch.where(drop.to(device=mask.device, dtype=torch.bool)[:, None], only_first, mask)

    def _check_inputs(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        visual_hidden_states: torch.Tensor,
        visual_attention_mask: torch.Tensor,
        sync_hidden_states: torch.Tensor,
        drops: dict[str, torch.Tensor | None],
    ) -> None:
        config = self.config
        if hidden_states.ndim != 4 or hidden_states.shape[1] != config.in_channels:
            raise ValueError(
                f"`hidden_states` must be [B, {config.in_channels}, T, F], got {tuple(hidden_states.shape)}."
            )
        batch_size, _, frames, bins = hidden_states.shape
        if batch_size == 0:
            raise ValueError("`hidden_states` has an empty batch.")
        p_t, p_f = config.patch_size
        if frames % p_t or bins % p_f:
            raise ValueError(
                f"`hidden_states` time {frames} and frequency {bins} must be divisible by the patch {p_t}x{p_f}."
            )
        if frames > config.max_latent_frames:
            raise ValueError(
                f"`hidden_states` has {frames} latent frames; this model takes at most {config.max_latent_frames}."
            )
        widths = {
            "encoder_hidden_states": (encoder_hidden_states, config.text_feat_dim),
            "visual_hidden_states": (visual_hidden_states, config.visual_feat_dim),
            "sync_hidden_states": (sync_hidden_states, config.sync_feat_dim),
        }
        for name, (value, width) in widths.items():
            if value.ndim != 3 or value.shape[-1] != width or value.shape[1] == 0:
                raise ValueError(f"`{name}` must be [B, L, {width}] with L >= 1, got {tuple(value.shape)}.")
        if sync_hidden_states.shape[1] % SYNC_FEATURES_PER_SEGMENT:
            raise ValueError(
                f"`sync_hidden_states` has {sync_hidden_states.shape[1]} features; Synchformer gives "
                f"{SYNC_FEATURES_PER_SEGMENT} per segment, so a multiple of {SYNC_FEATURES_PER_SEGMENT} is needed."
            )
        per_item = {
            "timestep": timestep,
            **{name: value for name, (value, _) in widths.items()},
            **{name: value for name, value in drops.items() if value is not None},
        }
        for name, value in per_item.items():
            if value.shape[0] != batch_size:
                raise ValueError(f"`{name}` has batch size {value.shape[0]}, but `hidden_states` has {batch_size}.")
        for name, mask, features in (
            ("encoder_attention_mask", encoder_attention_mask, encoder_hidden_states),
            ("visual_attention_mask", visual_attention_mask, visual_hidden_states),
        ):
            if mask.shape != features.shape[:2]:
                raise ValueError(
                    f"`{name}` must have shape {tuple(features.shape[:2])} (batch, tokens), got {tuple(mask.shape)}."
                )

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: float | torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        visual_hidden_states: torch.Tensor,
        sync_hidden_states: torch.Tensor,
        visual_attention_mask: torch.Tensor | None = None,
        drop_visual: torch.Tensor | None = None,
        drop_text: torch.Tensor | None = None,
        drop_sync: torch.Tensor | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        return_dict: bool = True,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        r"""
        Predicts the velocity from noise to data.

        Args:
            hidden_states (`torch.Tensor` of shape `[B, C, T, F]`): Audio latents.
            timestep (`torch.Tensor` of shape `[B]` or a float): Time in [0, 1], 0 = pure noise, 1 = clean data.
            encoder_hidden_states (`torch.Tensor` of shape `[B, L, text_feat_dim]`): CLIP text token features.
            encoder_attention_mask (`torch.Tensor` of shape `[B, L]`): 1 for real text tokens.
            visual_hidden_states (`torch.Tensor` of shape `[B, V, visual_feat_dim]`): CLIP features, one per frame.
            sync_hidden_states (`torch.Tensor` of shape `[B, S * 8, sync_feat_dim]`): Synchformer features of the
                same clip, segment by segment; both start at the clip's first frame.
            visual_attention_mask (`torch.Tensor` of shape `[B, V]`, *optional*): 1 for real frames (default: all).
            drop_visual, drop_text, drop_sync (`torch.Tensor` of shape `[B]`, *optional*): True where that
                condition is replaced by its learned empty embedding.
            attention_kwargs (`dict`, *optional*): `{"scale": ...}` sets the LoRA scale.
            return_dict (`bool`): Return a `Transformer2DModelOutput` instead of a tuple.
        """
        batch_size = hidden_states.shape[0]
        device = hidden_states.device
        timestep = torch.as_tensor(timestep, device=device, dtype=torch.float32).reshape(-1)
        timestep = timestep.expand(batch_size) if timestep.numel() == 1 else timestep
        if visual_attention_mask is None:
            visual_attention_mask = torch.ones(visual_hidden_states.shape[:2], device=device, dtype=torch.long)
        drops = {"drop_visual": drop_visual, "drop_text": drop_text, "drop_sync": drop_sync}
        self._check_inputs(
            hidden_states,
            timestep,
            encoder_hidden_states,
            encoder_attention_mask,
            visual_hidden_states,
            visual_attention_mask,
            sync_hidden_states,
            drops,
        )

        # 1. Dropped conditions become their learned empty embeddings
        visual = self._drop(visual_hidden_states, self.empty_visual, drop_visual)
        visual_mask = self._drop_mask(visual_attention_mask, drop_visual)
        text = self._drop(encoder_hidden_states, self.empty_text, drop_text)
        text_mask = self._drop_mask(encoder_attention_mask, drop_text)
        sync = self._drop(sync_hidden_states, self.empty_sync, drop_sync)

        # 2. Patch embedding and 2D RoPE for this grid
        patch_size = tuple(self.config.patch_size)
        tokens, grid = patchify(hidden_states, patch_size)
        tokens = self.patch_embedder(tokens.to(self.patch_embedder.weight.dtype))
        rotary_emb = self.rope(grid)

        # 3. Conditioning: global, then per time step of the token grid, shared by the tokens of that step
        global_condition, sync_condition = self.condition_embedder(
            timestep * self.config.timestep_scale,
            visual,
            visual_mask,
            text,
            text_mask,
            sync,
            grid[0],
            patch_size[0],
        )
        token_condition = (global_condition[:, None, None] + sync_condition[:, :, None]).expand(-1, -1, grid[1], -1)
        token_condition = token_condition.flatten(1, 2).to(tokens.dtype)
        global_condition = global_condition.to(tokens.dtype)

        # 4. The audio tokens attend to themselves and, through the gated branch, to the visual and text tokens
        context = torch.cat([self.visual_proj(visual.to(tokens.dtype)), self.text_proj(text.to(tokens.dtype))], dim=1)
        context_mask = torch.cat([visual_mask, text_mask.to(visual_mask.dtype)], dim=1)
        for block in self.layers:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                tokens = self._gradient_checkpointing_func(
                    block, tokens, context, context_mask, token_condition, rotary_emb
                )
            else:
                tokens = block(tokens, context, context_mask, token_condition, rotary_emb)

        # 5. Output head (global condition) and unpatchify
        output = unpatchify(self.norm_out(tokens, global_condition), patch_size, grid)

        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)
