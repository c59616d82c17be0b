"""Text encoding: `system_prompt + prompt` through Gemma2, positive and negative texts padded together."""

import torch
from diffusers.configuration_utils import FrozenDict
from diffusers.modular_pipelines import PipelineState
from diffusers.modular_pipelines.modular_pipeline_utils import ComponentSpec, InputParam, OutputParam
from transformers import Gemma2Model, PreTrainedTokenizerBase

from ...pipelines.lumina_video.denoising import LuminaGuidance
from ...pipelines.lumina_video.pipeline_lumina_video import check_texts
from ..requirements import LuminaPipelineBlock
from .modular_pipeline import LuminaVideoModularPipeline


GUIDER_SPEC = ComponentSpec("guider", LuminaGuidance, config=FrozenDict({}), default_creation_method="from_config")


class LuminaVideoTextEncoderStep(LuminaPipelineBlock):
    model_name = "lumina-video"

    @property
    def description(self) -> str:
        return (
            "Encodes `system_prompt + prompt` (and the negative prompt where the guider runs a negative branch) as "
            "`LuminaVideoPipeline.encode_prompt` does."
        )

    @property
    def expected_components(self) -> list[ComponentSpec]:
        return [
            ComponentSpec("text_encoder", Gemma2Model),
            ComponentSpec("tokenizer", PreTrainedTokenizerBase),
            GUIDER_SPEC,
        ]

    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam("prompt", required=True, description="What to generate; prefixed with `system_prompt`."),
            InputParam("negative_prompt", description="The negative branch's text (default: empty)."),
            InputParam("system_prompt", type_hint=str, description="Prefix of every text; default the reference's."),
            InputParam("max_sequence_length", type_hint=int, default=256, description="Longest tokenized text."),
        ]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [
            OutputParam("prompt_embeds", type_hint=torch.Tensor, kwargs_type="denoiser_input_fields"),
            OutputParam("prompt_attention_mask", type_hint=torch.Tensor, kwargs_type="denoiser_input_fields"),
            OutputParam("negative_prompt_embeds", type_hint=torch.Tensor, kwargs_type="denoiser_input_fields"),
            OutputParam("negative_prompt_attention_mask", type_hint=torch.Tensor, kwargs_type="denoiser_input_fields"),
        ]

    @torch.no_grad()
    def __call__(self, components: LuminaVideoModularPipeline, state: PipelineState):
        block_state = self.get_block_state(state)
        check_texts(
            block_state.prompt,
            block_state.negative_prompt,
            None,
            None,
            block_state.max_sequence_length,
            can_encode=components.text_encoder is not None and components.tokenizer is not None,
        )
        (
            block_state.prompt_embeds,
            block_state.prompt_attention_mask,
            block_state.negative_prompt_embeds,
            block_state.negative_prompt_attention_mask,
        ) = components.encode_prompt(
            block_state.prompt,
            block_state.negative_prompt,
            do_classifier_free_guidance=components.requires_unconditional_embeds,
            device=components._execution_device,
            system_prompt=block_state.system_prompt,
            max_sequence_length=block_state.max_sequence_length,
        )
        self.set_block_state(state, block_state)
        return components, state
