"""The checks of Diffusers' `PipelineTesterMixin` that apply to this pipeline, written for its tiny components (the
mixin is not shipped in the `diffusers` wheel): callbacks, `encode_prompt` in isolation, `num_videos_per_prompt`,
dict/tuple outputs, save/load and `to(dtype)`; plus the sizes read from `latents` and prompt repair."""

import ast
import inspect
import textwrap

import pytest
import torch

from diffusers_lumina_video import LuminaVideoPipeline
from diffusers_lumina_video.pipelines.lumina_video.pipeline_lumina_video import clean_prompt
from diffusers_lumina_video.showcase.builtin_models import tiny_components, tiny_random_pipeline


SMALL = {"height": 32, "width": 32, "num_frames": 5, "num_inference_steps": 3, "output_type": "latent"}


@pytest.fixture(scope="module")
def pipe():
    return tiny_random_pipeline()


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _transformer_batch_sizes(pipe: LuminaVideoPipeline) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    sizes = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: sizes.append(kwargs["hidden_states"].shape[0]), with_kwargs=True
    )
    return sizes, handle


# ---------------------------------------------------------------- callbacks
def test_callback_inputs_are_the_requested_tensors_and_replacements_apply(pipe):
    seen = []

    def callback(p, i, t, tensors):
        seen.append(sorted(tensors))
        return {"latents": torch.zeros_like(tensors["latents"])} if i == p.num_timesteps - 1 else tensors

    out = pipe(
        "a cat",
        generator=_seeded(),
        guidance_scale=3.0,
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=list(pipe._callback_tensor_inputs),
        **SMALL,
    ).frames
    assert seen == [sorted(pipe._callback_tensor_inputs)] * SMALL["num_inference_steps"]
    assert out.abs().sum() == 0


def test_callback_cfg_guidance_changes_count_every_step(pipe):
    def increase_guidance(p, i, t, tensors):
        p._guidance_scale += 1.0
        return tensors

    pipe("a cat", generator=_seeded(), guidance_scale=2.0, callback_on_step_end=increase_guidance, **SMALL)
    assert pipe.guidance_scale == 2.0 + pipe.num_timesteps


def test_callback_turning_guidance_off_takes_effect_from_the_next_step_on_top_of_the_schedule(pipe):
    def guidance_off_after_first_step(p, i, t, tensors):
        if i == 0:
            p._guidance_scale = 1.0
        return tensors

    sizes, handle = _transformer_batch_sizes(pipe)
    try:
        switched = pipe(
            "a cat",
            generator=_seeded(),
            guidance_scale=[(0.0, 4.0), (0.5, 3.0)],
            callback_on_step_end=guidance_off_after_first_step,
            **SMALL,
        ).frames
    finally:
        handle.remove()
    assert sizes == [2, 1, 1]  # both branches, then the positive one alone, although the schedule still says 3.0

    def cut_with_schedule(p, i, t, tensors):
        return tensors

    scheduled = pipe(
        "a cat",
        generator=_seeded(),
        guidance_scale=[(0.0, 4.0), (1e-6, 1.0)],
        callback_on_step_end=cut_with_schedule,
        **SMALL,
    ).frames
    torch.testing.assert_close(switched, scheduled)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [(float("nan"), ValueError, "to nan; it must be finite"), ("off", TypeError, "to 'off'; it must be a number")],
)
def test_callback_setting_an_invalid_guidance_scale_is_refused(pipe, value, error, message):
    def set_guidance(p, i, t, tensors):
        p._guidance_scale = value
        return tensors

    with pytest.raises(error, match=message):
        pipe("a cat", generator=_seeded(), guidance_scale=3.0, callback_on_step_end=set_guidance, **SMALL)


def test_callback_turning_guidance_on_without_a_negative_branch_is_refused(pipe):
    def guidance_on(p, i, t, tensors):
        p._guidance_scale = 5.0
        return tensors

    with pytest.raises(ValueError, match=r"set `pipe._guidance_scale` to 5.0, but this call prepared no negative"):
        pipe("a cat", generator=_seeded(), guidance_scale=1.0, callback_on_step_end=guidance_on, **SMALL)


# ---------------------------------------------------------------- encode_prompt in isolation
def _return_names(function) -> list[str]:
    """The names `encode_prompt` returns, read from its source as Diffusers' pipeline tests do."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    returns = [node for node in ast.walk(tree) if isinstance(node, ast.Return)]
    assert len(returns) == 1 and isinstance(returns[0].value, ast.Tuple)
    return [element.id for element in returns[0].value.elts]


def test_encode_prompt_works_in_isolation():
    names = _return_names(LuminaVideoPipeline.encode_prompt)
    assert names == [
        "prompt_embeds",
        "prompt_attention_mask",
        "negative_prompt_embeds",
        "negative_prompt_attention_mask",
    ]
    assert set(names) <= set(inspect.signature(LuminaVideoPipeline.__call__).parameters)

    components = tiny_components()
    text_only = {k: v if k in ("text_encoder", "tokenizer") else None for k, v in components.items()}
    inputs = {"prompt": "a cat", "negative_prompt": "blurry", "num_videos_per_prompt": 1}
    with torch.no_grad():
        encoded = LuminaVideoPipeline(**text_only).encode_prompt(**inputs)
    no_text = {k: None if k in ("text_encoder", "tokenizer") else v for k, v in components.items()}
    call = {"guidance_scale": 3.0, **SMALL}
    isolated = LuminaVideoPipeline(**no_text)(
        generator=_seeded(), **dict(zip(names, encoded, strict=True)), **call
    ).frames
    full = LuminaVideoPipeline(**components)(**inputs, generator=_seeded(), **call).frames
    torch.testing.assert_close(isolated, full)


# ---------------------------------------------------------------- outputs
@pytest.mark.parametrize(("num_prompts", "per_prompt"), [(1, 2), (2, 1), (2, 2)])
def test_num_videos_per_prompt_with_texts_and_embeddings(pipe, num_prompts, per_prompt):
    prompts = ["a cat", "a dog"][:num_prompts]
    frames = pipe(prompts, num_videos_per_prompt=per_prompt, generator=_seeded(), **SMALL).frames
    assert frames.shape[0] == num_prompts * per_prompt
    embeds, mask, negative, negative_mask = pipe.encode_prompt(prompts)
    frames = pipe(
        prompt_embeds=embeds,
        prompt_attention_mask=mask,
        negative_prompt_embeds=negative,
        negative_prompt_attention_mask=negative_mask,
        num_videos_per_prompt=per_prompt,
        **SMALL,
    ).frames
    assert frames.shape[0] == num_prompts * per_prompt


def test_dict_and_tuple_outputs_are_equivalent(pipe):
    as_dict = pipe("a cat", generator=_seeded(), **SMALL).frames
    as_tuple = pipe("a cat", generator=_seeded(), return_dict=False, **SMALL)[0]
    torch.testing.assert_close(as_dict, as_tuple, atol=0, rtol=0)


def test_save_load_gives_the_same_output(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    loaded = LuminaVideoPipeline.from_pretrained(tmp_path)
    before = pipe("a cat", generator=_seeded(), **SMALL).frames
    torch.testing.assert_close(loaded("a cat", generator=_seeded(), **SMALL).frames, before, atol=1e-4, rtol=1e-4)


def test_to_dtype_casts_every_model():
    pipe = tiny_random_pipeline()
    assert {c.dtype for c in pipe.components.values() if hasattr(c, "dtype")} == {torch.float32}
    pipe.to(dtype=torch.float16)
    assert {c.dtype for c in pipe.components.values() if hasattr(c, "dtype")} == {torch.float16}


# ---------------------------------------------------------------- sizes from latents
def test_latents_alone_give_the_sizes(pipe):
    latents = torch.randn(1, 4, 2, 4, 6, generator=_seeded())
    video = pipe("a cat", latents=latents, num_inference_steps=2, output_type="pt").frames
    assert video.shape == (1, 8, 3, 32, 48)  # 2 latent frames decode into 8; 8x spatial
    given = pipe(
        "a cat", latents=latents, height=32, width=48, num_frames=8, num_inference_steps=2, output_type="pt"
    ).frames
    torch.testing.assert_close(video, given)


def test_latents_that_disagree_with_a_given_size_name_both_shapes(pipe):
    with pytest.raises(ValueError, match=r"`latents` must have shape \(1, 4, 4, 4, 6\) .* got \(1, 4, 2, 4, 6\)"):
        pipe("a cat", latents=torch.randn(1, 4, 2, 4, 6), num_frames=13, output_type="latent")


# ---------------------------------------------------------------- prompt repair (ftfy)
@pytest.mark.parametrize(
    "prompt",
    ["A cat’s “toy” — a ﬁne day", "two  spaces\nand a line break", "Ｆｕｌｌ width and e\u0301", "Tom & Jerry <3"],
)
def test_clean_prompts_keep_their_tokens(pipe, prompt):
    assert clean_prompt(prompt) == prompt
    assert pipe.tokenizer(clean_prompt(prompt)).input_ids == pipe.tokenizer(prompt).input_ids


@pytest.mark.parametrize(
    ("broken", "repaired"),
    [("cafÃ© at dawn", "café at dawn"), ("Tom &amp; Jerry", "Tom & Jerry"), ("fish &amp;amp; chips", "fish & chips")],
)
def test_broken_unicode_and_html_entities_are_repaired(pipe, broken, repaired):
    assert clean_prompt(broken) == repaired
    torch.testing.assert_close(pipe.encode_prompt(broken)[0], pipe.encode_prompt(repaired)[0])
