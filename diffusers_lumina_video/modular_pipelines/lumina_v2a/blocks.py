"""The Lumina-V2A blocks: reading the video and encoding its conditions, time grid and noise, the denoising loop, and
mel decoding with vocoding. Every step calls the classic `LuminaV2APipeline`'s methods through `LuminaV2AComponents`.

A `prefix` names the components and the values the blocks pass between them (`audio_transformer`, `audio_latents`,
...), so the blocks can sit beside Lumina-Video's in one pipeline; the final `audios` and `sample_rate` keep their
names.
"""

import inspect
from typing import Any

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
from diffusers.configuration_utils import FrozenDict
from diffusers.modular_pipelines import BlockState, PipelineState
from diffusers.modular_pipelines.modular_pipeline_utils import ComponentSpec, InputParam, OutputParam
from transformers import (
    CLIPTextModel,
    CLIPVisionModelWithProjection,
    ImageProcessingMixin,
    PreTrainedTokenizerBase,
    SpeechT5HifiGan,
)

from ...models import LuminaV2ATransformerModel, SynchformerEncoder
from ...pipelines.lumina_v2a.audio_codec import SAMPLE_RATE
from ...pipelines.lumina_v2a.pipeline_lumina_v2a import (
    OUTPUT_TYPES,
    LuminaV2APipeline,
    decode_audio,
    latent_frame_count,
)
from ...pipelines.lumina_video.denoising import LuminaGuidance, call_kind, euler_step, lumina_time, set_guider_state
from ...pipelines.sampling import check_output_type
from ..lumina_video.denoise import LuminaDenoiseLoopWrapper
from ..requirements import LuminaPipelineBlock
from .modular_pipeline import LuminaV2AComponents


# The classic call's defaults; its guidance has no renorm and no motion condition.
CALL_DEFAULTS = {name: p.default for name, p in inspect.signature(LuminaV2APipeline.__call__).parameters.items()}
V2A_GUIDER_CONFIG = FrozenDict(
    {"guidance_scale": CALL_DEFAULTS["guidance_scale"], "guidance_renorm": None, "negative_motion_score": None}
)


class PrefixedBlock:
    """Names components and passed values with the block's `prefix`."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        super().__init__()

    def name(self, name: str) -> str:
        return self.prefix + name

    def get(self, block_state: BlockState, name: str) -> Any:
        return getattr(block_state, self.prefix + name)

    def put(self, block_state: BlockState, name: str, value: Any) -> None:
        setattr(block_state, self.prefix + name, value)

    def v2a(self, components) -> LuminaV2AComponents:
        return LuminaV2AComponents(components, self.prefix)

    def spec(self, name: str, type_hint: type, **kwargs) -> ComponentSpec:
        return ComponentSpec(self.prefix + name, type_hint, **kwargs)

    def guider_spec(self) -> ComponentSpec:
        return self.spec("guider", LuminaGuidance, config=V2A_GUIDER_CONFIG, default_creation_method="from_config")


class LuminaV2AConditionsStep(PrefixedBlock, LuminaPipelineBlock):
    model_name = "lumina-v2a"

    @property
    def description(self) -> str:
        return (
            "Reads the video, checks the inputs as `LuminaV2APipeline.check_inputs` does and encodes the conditions: "
            "CLIP text and frames, Synchformer features (or the given `sync_features`)."
        )

    @property
    def expected_components(self) -> list[ComponentSpec]:
        return [
            self.spec("transformer", LuminaV2ATransformerModel),
            self.spec("text_encoder", CLIPTextModel),
            self.spec("tokenizer", PreTrainedTokenizerBase),
            self.spec("image_encoder", CLIPVisionModelWithProjection),
            self.spec("feature_extractor", ImageProcessingMixin),
            self.spec("sync_encoder", SynchformerEncoder),
            self.guider_spec(),
        ]

    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam(self.name("video"), required=True, description="A path, frames [F, H, W, 3] or a batch."),
            InputParam(self.name("prompt"), description="What the audio should be; empty by default."),
            InputParam(self.name("negative_prompt"), description="The negative branch's text."),
            InputParam(self.name("fps"), description="Frame rate of frames given in memory."),
            InputParam(self.name("duration"), description="Seconds of audio; default the whole video."),
            InputParam(
                self.name("num_inference_steps"),
                type_hint=int,
                default=CALL_DEFAULTS["num_inference_steps"],
                description="Transformer evaluations per branch.",
            ),
            InputParam(
                self.name("sync_features"), type_hint=torch.Tensor, description="Precomputed Synchformer features."
            ),
        ]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [
            OutputParam(self.name("conditions"), type_hint=dict, description="Both branches' conditions."),
            OutputParam(self.name("duration"), type_hint=float),
            OutputParam(self.name("batch_size"), type_hint=int),
        ]

    @torch.no_grad()
    def __call__(self, components, state: PipelineState):
        block_state = self.get_block_state(state)
        v2a = self.v2a(components)
        videos = v2a._read_videos(self.get(block_state, "video"), self.get(block_state, "fps"))
        prompt, negative_prompt = self.get(block_state, "prompt"), self.get(block_state, "negative_prompt")
        sync_features = self.get(block_state, "sync_features")
        duration = v2a.check_inputs(
            videos,
            prompt,
            negative_prompt,
            self.get(block_state, "duration"),
            self.get(block_state, "num_inference_steps"),
            sync_features,
            "latent",  # the decoder step checks its own output type
            None,
        )
        uses_guidance = v2a.guider.uses_guidance if isinstance(v2a.guider, LuminaGuidance) else v2a.guider._enabled
        conditions = v2a.prepare_conditions(videos, prompt, negative_prompt, duration, uses_guidance, sync_features)
        self.put(block_state, "conditions", conditions)
        self.put(block_state, "duration", duration)
        self.put(block_state, "batch_size", len(videos))
        self.set_block_state(state, block_state)
        return components, state


class LuminaV2APrepareStep(PrefixedBlock, LuminaPipelineBlock):
    model_name = "lumina-v2a"

    @property
    def description(self) -> str:
        return "Sets the scheduler on the reference's time grid and draws the starting noise for `duration`."

    @property
    def expected_components(self) -> list[ComponentSpec]:
        return [
            self.spec("transformer", LuminaV2ATransformerModel),
            self.spec("scheduler", FlowMatchEulerDiscreteScheduler),
            self.spec("vae", AutoencoderKL),
            self.spec("vocoder", SpeechT5HifiGan),
            self.guider_spec(),
        ]

    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam(self.name("num_inference_steps"), type_hint=int, default=CALL_DEFAULTS["num_inference_steps"]),
            InputParam(self.name("duration"), required=True, type_hint=float),
            InputParam(self.name("batch_size"), required=True, type_hint=int),
            InputParam(self.name("latents"), type_hint=torch.Tensor, description="Starting noise."),
            InputParam("generator", description="A `torch.Generator`, or one per video."),
        ]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [
            OutputParam(self.name("timesteps"), type_hint=torch.Tensor),
            OutputParam(self.name("latents"), type_hint=torch.Tensor),
        ]

    @torch.no_grad()
    def __call__(self, components, state: PipelineState):
        block_state = self.get_block_state(state)
        v2a = self.v2a(components)
        device = components._execution_device
        self.put(
            block_state, "timesteps", v2a.set_lumina_timesteps(self.get(block_state, "num_inference_steps"), device)
        )
        guider = v2a.guider
        if isinstance(guider, LuminaGuidance):
            guided = [guider.scale_schedule.at(1.0 - float(s)) > 1.0 for s in v2a.scheduler.sigmas[:-1]]
            v2a.check_cache_for_run([call_kind(g) for g in guided])
        frames = latent_frame_count(self.get(block_state, "duration"), v2a.transformer.config.patch_size[0])
        latents = v2a.prepare_latents(
            self.get(block_state, "batch_size"),
            frames,
            device,
            block_state.generator,
            self.get(block_state, "latents"),
        )
        self.put(block_state, "latents", latents)
        self.set_block_state(state, block_state)
        return components, state


class LuminaV2ALoopDenoiser(PrefixedBlock, LuminaPipelineBlock):
    model_name = "lumina-v2a"

    @property
    def description(self) -> str:
        return "Sets the guider at the step's time, predicts the guided velocity and takes the Euler step."

    @property
    def expected_components(self) -> list[ComponentSpec]:
        return [
            self.spec("transformer", LuminaV2ATransformerModel),
            self.spec("scheduler", FlowMatchEulerDiscreteScheduler),
            self.guider_spec(),
        ]

    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam(self.name("conditions"), required=True, type_hint=dict),
            InputParam(self.name("attention_kwargs"), description="Passed to the transformer."),
        ]

    @torch.no_grad()
    def __call__(self, components, block_state: BlockState, i: int, t: torch.Tensor):
        v2a = self.v2a(components)
        time = lumina_time(v2a.scheduler, i)
        set_guider_state(v2a.guider, i, self.get(block_state, "num_inference_steps"), t, time)
        latents = self.get(block_state, "latents")
        velocity = v2a._predict_velocity(
            latents,
            time,
            v2a.guider,
            self.get(block_state, "conditions"),
            i,
            self.get(block_state, "attention_kwargs"),
        )
        self.put(block_state, "latents", euler_step(v2a.scheduler, velocity, t, latents))
        return components, block_state


class LuminaV2ADenoiseStep(PrefixedBlock, LuminaDenoiseLoopWrapper):
    model_name = "lumina-v2a"
    block_classes = [LuminaV2ALoopDenoiser]
    block_names = ["denoiser"]

    def __init__(self, prefix: str = ""):
        self.block_classes = [LuminaV2ALoopDenoiser(prefix)]
        super().__init__(prefix)

    @property
    def description(self) -> str:
        return "Denoises the audio latents over the time grid."

    @property
    def loop_expected_components(self) -> list[ComponentSpec]:
        return [self.spec("scheduler", FlowMatchEulerDiscreteScheduler)]

    @property
    def loop_inputs(self) -> list[InputParam]:
        return [
            InputParam(self.name("timesteps"), required=True, type_hint=torch.Tensor),
            InputParam(self.name("num_inference_steps"), required=True, type_hint=int),
            InputParam(self.name("latents"), required=True, type_hint=torch.Tensor),
        ]

    def loop_timesteps(self, block_state: BlockState) -> tuple[torch.Tensor, int]:
        return self.get(block_state, "timesteps"), self.get(block_state, "num_inference_steps")


class LuminaV2ADecodeStep(PrefixedBlock, LuminaPipelineBlock):
    model_name = "lumina-v2a"

    @property
    def description(self) -> str:
        return "Latents -> log-mel (AudioLDM VAE) -> 16 kHz waveform (HiFi-GAN), cut to `duration`."

    @property
    def expected_components(self) -> list[ComponentSpec]:
        return [self.spec("vae", AutoencoderKL), self.spec("vocoder", SpeechT5HifiGan)]

    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam(self.name("latents"), required=True, type_hint=torch.Tensor),
            InputParam(self.name("duration"), required=True, type_hint=float),
            InputParam(self.name("output_type"), type_hint=str, default="np", description=f"{list(OUTPUT_TYPES)}"),
        ]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [
            OutputParam("audios", description="Waveforms [B, num_samples] (or the latents)."),
            OutputParam("sample_rate", type_hint=int),
        ]

    @torch.no_grad()
    def __call__(self, components, state: PipelineState):
        block_state = self.get_block_state(state)
        v2a = self.v2a(components)
        output_type = self.get(block_state, "output_type")
        check_output_type(output_type, OUTPUT_TYPES)
        audios = decode_audio(
            v2a.vae, v2a.vocoder, self.get(block_state, "latents"), self.get(block_state, "duration"), output_type
        )
        block_state.audios, block_state.sample_rate = audios, SAMPLE_RATE
        self.set_block_state(state, block_state)
        return components, state
