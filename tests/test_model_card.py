"""Model cards: Hub metadata that parses and validates, the presets and paper numbers, and LoRA cards whose usage
code runs. The converter's cards are executed against converted folders in test_conversion.py."""

import pytest
import torch
from conftest import card_usage_code
from huggingface_hub import ModelCard, ModelCardData
from peft import LoraConfig

from diffusers_lumina_video import SAMPLING_PRESETS
from diffusers_lumina_video.loaders.lora_pipeline import LUMINA_VIDEO_LORA_TARGET_MODULES
from diffusers_lumina_video.model_card import (
    CITATION,
    VBENCH_SCORES,
    create_full_model_card,
    create_lora_model_card,
    create_pipeline_model_card,
    create_v2a_model_card,
)
from diffusers_lumina_video.showcase.builtin_models import tiny_random_pipeline


def reloaded(card: ModelCard, tmp_path) -> ModelCard:
    """The card as the Hub reads it back from `README.md`."""
    card.save(tmp_path / "README.md")
    return ModelCard.load(tmp_path / "README.md")


def assert_valid_hub_metadata(card: ModelCard, base_model: str) -> dict:
    metadata = card.data.to_dict()
    ModelCardData(**metadata)  # the schema huggingface_hub validates against (eval results, model-index...)
    assert metadata["library_name"] == "diffusers"
    assert metadata["pipeline_tag"] == "text-to-video"
    assert metadata["license"] == "apache-2.0"
    assert metadata["base_model"] == base_model
    assert {"lumina-video", "text-to-video"} <= set(metadata["tags"])
    return metadata


def test_pipeline_card_metadata_presets_results_and_citation(tmp_path):
    card = reloaded(
        create_pipeline_model_card(
            "me/lumina-video", "Alpha-VLLM/Lumina-Video-f24R960", num_parameters=1_771_362_368, dtype="bf16"
        ),
        tmp_path,
    )
    assert_valid_hub_metadata(card, "Alpha-VLLM/Lumina-Video-f24R960")
    text = card.text
    assert "1.77B parameters, stored in bf16" in text
    for name, preset in SAMPLING_PRESETS.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"| {preset['num_inference_steps']} | {preset['shift']} |" in row
    assert "| `f24F96R960-MultiScale` |" in text and "(2, 4, 4), (2, 2, 2) from t=0.03, (1, 2, 2) from t=0.125" in text
    for name, (total, quality, semantic) in VBENCH_SCORES.items():
        assert f"| {name} | {total} | {quality} | {semantic} |" in text
    assert CITATION in text and "Gemma Terms of Use" in text
    code = card_usage_code(text)
    assert 'DiffusionPipeline.from_pretrained("me/lumina-video"' in code
    assert 'pipe.use_sampling_preset("f24F96R960")' in code and "fps=24" in code
    compile(code, "README.md", "exec")


def test_transformer_card_describes_the_transformer(tmp_path):
    card = reloaded(
        create_pipeline_model_card("me/t", "Alpha-VLLM/Lumina-Video-f24R960", transformer_only=True), tmp_path
    )
    metadata = assert_valid_hub_metadata(card, "Alpha-VLLM/Lumina-Video-f24R960")
    assert "transformer" in metadata["tags"] and "License" not in card.text
    assert 'LuminaVideoTransformer3DModel.from_pretrained("me/t"' in card_usage_code(card.text)


def test_lora_card_metadata_settings_and_video(tmp_path):
    settings = {"rank": 32, "learning_rate": 2e-4, "max_train_steps": 1000}
    card = reloaded(
        create_lora_model_card(
            "me/lumina-lora",
            "me/lumina-video",
            training_settings=settings,
            validation_video="validation.mp4",
            validation_prompt="sks dog running on a beach",
            trigger_phrase="sks dog",
            sampling_preset="f16F64R512-MultiScale",
        ),
        tmp_path,
    )
    metadata = assert_valid_hub_metadata(card, "me/lumina-video")
    assert metadata["base_model_relation"] == "adapter" and "lora" in metadata["tags"]
    assert metadata["instance_prompt"] == "sks dog"
    assert metadata["widget"] == [{"text": "sks dog running on a beach", "output": {"url": "validation.mp4"}}]
    for name, value in settings.items():
        assert f"| `{name}` | `{value}` |" in card.text
    assert '<video src="validation.mp4"' in card.text and "`sks dog`" in card.text
    code = card_usage_code(card.text)
    assert 'pipe.load_lora_weights("me/lumina-lora")' in code and 'pipe("sks dog running on a beach"' in code
    assert "fps=16" in code


def test_full_model_card_loads_the_trained_pipeline_itself(tmp_path):
    card = reloaded(
        create_full_model_card(
            "me/my-lumina",
            "me/lumina-video",
            training_settings={"training_mode": "full", "ema_decay": 0.999},
            validation_video="validation/step-000100-0.mp4",
            validation_prompt="a red circle moving left",
        ),
        tmp_path,
    )
    metadata = assert_valid_hub_metadata(card, "me/lumina-video")
    assert metadata["base_model_relation"] == "finetune" and "lora" not in metadata["tags"]
    assert {"pipeline", "diffusers-training"} <= set(metadata["tags"]) and "instance_prompt" not in metadata
    assert "| `ema_decay` | `0.999` |" in card.text and card.text.count("# Lumina-Video: my-lumina") == 1
    code = card_usage_code(card.text)
    assert 'DiffusionPipeline.from_pretrained("me/my-lumina"' in code and "load_lora_weights" not in code
    assert 'pipe("a red circle moving left"' in code


def test_lora_card_without_optional_parts(tmp_path):
    card = reloaded(create_lora_model_card("me/lora", "me/base"), tmp_path)
    metadata = assert_valid_hub_metadata(card, "me/base")
    assert "widget" not in metadata and "instance_prompt" not in metadata
    assert "## Training settings" not in card.text and "<video" not in card.text


def test_lora_card_trained_from_a_local_folder_names_no_base_model_in_metadata(tmp_path, caplog):
    local_base = tmp_path / "Lumina-Video-diffusers"
    local_base.mkdir()
    with caplog.at_level("WARNING"):
        card = reloaded(create_lora_model_card("me/lora", str(local_base)), tmp_path)
    assert "base_model" not in card.data.to_dict() and "base_model_relation" not in card.data.to_dict()
    assert "is a local folder" in caplog.text
    assert f'DiffusionPipeline.from_pretrained("{local_base}"' in card_usage_code(card.text)


def test_card_arguments_are_checked():
    with pytest.raises(ValueError, match="`sampling_preset` must be one of"):
        create_pipeline_model_card("me/x", "base", sampling_preset="f48")
    with pytest.raises(ValueError, match="`sampling_preset` must be one of"):
        create_lora_model_card("me/x", "base", sampling_preset="f48")
    with pytest.raises(ValueError, match="`validation_prompt` describes `validation_video`"):
        create_lora_model_card("me/x", "base", validation_prompt="a dog")


def test_lora_card_usage_code_runs(tmp_path, monkeypatch):
    pipeline_dir, lora_dir = tmp_path / "pipeline", tmp_path / "lora"
    pipe = tiny_random_pipeline()
    pipe.save_pretrained(pipeline_dir)
    pipe.transformer.add_adapter(LoraConfig(r=2, target_modules=list(LUMINA_VIDEO_LORA_TARGET_MODULES)))
    pipe.transformer.save_lora_adapter(lora_dir)

    code = card_usage_code(str(create_lora_model_card(str(lora_dir), str(pipeline_dir), trigger_phrase="sks")))
    toy = {**SAMPLING_PRESETS["f24F96R960"], "height": 32, "width": 32, "num_frames": 5, "num_inference_steps": 2}
    monkeypatch.setitem(SAMPLING_PRESETS, "f24F96R960", toy)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code.replace('pipe.to("cuda")', 'pipe.to("cpu")'), "README.md", "exec"), namespace)
    lora_layers = [name for name, _ in namespace["pipe"].transformer.named_parameters() if "lora_A" in name]
    assert lora_layers and isinstance(namespace["video"], type(torch.zeros(1).numpy()))
    assert (tmp_path / "lumina_video.mp4").stat().st_size > 0


# (card, arguments, message); "lora" cards start from `create_lora_model_card("me/lora", "me/base")`, "pipeline"
# cards from `create_pipeline_model_card("me/x", "Alpha-VLLM/Lumina-Video-f24R960")`.
CARD_BAD_INPUTS = [
    ("pipeline", {"base_model": ""}, "`base_model` must be a non-empty string"),
    ("pipeline", {"base_model": "me/bad..name"}, "`base_model` must be a Hub repository id"),
    ("pipeline", {"base_model": "/local/folder"}, "`base_model` must be a Hub repository id"),
    ("pipeline", {"base_model": None}, "`base_model` must be a non-empty string"),
    ("pipeline", {"model_id": 'me/x"; import os'}, "`model_id` must not contain quotes"),
    ("pipeline", {"model_id": "me/x\n"}, "`model_id` must not contain quotes, backslashes, angle brackets or line"),
    ("pipeline", {"tags": "video"}, "`tags` must be a list of strings, got 'video'"),
    ("pipeline", {"tags": ["my tag"]}, r"`tags` must be Hub tags .* got \['my tag'\]"),
    ("pipeline", {"num_parameters": -5}, "`num_parameters` must be >= 0"),
    ("pipeline", {"num_parameters": "2B"}, "`num_parameters` must be an integer or None"),
    ("lora", {"repo_id": "me/--lora"}, "`repo_id` must be a Hub repository id"),
    ("lora", {"repo_id": 3}, "`repo_id` must be a non-empty string"),
    ("lora", {"base_model": "me/base<script>"}, "`base_model` must not contain quotes"),
    ("lora", {"tags": ["ok", 7]}, r"`tags` must be Hub tags .* got \[7\]"),
    ("lora", {"tags": ["", "x"]}, "`tags` must be Hub tags"),
    ("lora", {"validation_video": "/tmp/out/sample.mp4"}, "`validation_video` must be a path inside the repository"),
    ("lora", {"validation_video": "../sample.mp4"}, "`validation_video` must be a path inside the repository"),
    ("lora", {"validation_video": "sample.txt"}, r"`validation_video` must be a video file \(.mp4"),
    ("lora", {"validation_video": 'a".mp4'}, "`validation_video` must not contain quotes"),
    ("lora", {"validation_video": ""}, "`validation_video` must be a path relative to the repository"),
    ("lora", {"validation_video": "a.mp4", "validation_prompt": 5}, "`validation_prompt` must be a string or None"),
    ("lora", {"trigger_phrase": ["sks"]}, "`trigger_phrase` must be a string or None"),
    ("lora", {"training_settings": [("rank", 4)]}, "`training_settings` must be a dict with setting names as keys"),
]


@pytest.mark.parametrize(("card", "arguments", "message"), CARD_BAD_INPUTS)
def test_invalid_card_metadata_is_refused_before_rendering(monkeypatch, card, arguments, message):
    rendered = []
    monkeypatch.setattr(ModelCard, "from_template", lambda *a, **k: rendered.append(a))
    if card == "pipeline":
        call = {"model_id": "me/x", "base_model": "Alpha-VLLM/Lumina-Video-f24R960", **arguments}
        create = create_pipeline_model_card
    else:
        call, create = {"repo_id": "me/lora", "base_model": "me/base", **arguments}, create_lora_model_card
    with pytest.raises(ValueError, match=message):
        create(**call)
    assert not rendered


def test_extra_tags_are_added_to_the_metadata(tmp_path):
    card = reloaded(create_lora_model_card("me/lora", "me/base", tags=["anime", "style:ink"]), tmp_path)
    assert {"anime", "style:ink", "lora"} <= set(card.data.to_dict()["tags"])


def test_converter_refuses_an_invalid_base_model_before_reading(tmp_path):
    from diffusers_lumina_video.conversion import convert_lumina_video_checkpoint

    with pytest.raises(ValueError, match="`base_model` must be a Hub repository id"):
        convert_lumina_video_checkpoint(tmp_path / "missing", tmp_path / "out", base_model="me/a..b")


def test_v2a_lora_card_loads_the_base_then_the_lora_and_lists_the_settings(tmp_path):
    card = reloaded(
        create_v2a_model_card(
            "me/v2a-lora",
            components={"Transformer": "trained from me/v2a"},
            training_settings={"model_family": "v2a", "rank": 8},
            lora_base_model="me/v2a",
            validation_video="validation/step-000100-0.mp4",
        ),
        tmp_path,
    )
    assert {"video-to-audio", "lora"} <= set(card.data.tags) and card.data.pipeline_tag == "video-to-audio"
    assert "# Lumina-V2A LoRA" in card.text and "| `rank` | `8` |" in card.text
    assert '<video src="validation/step-000100-0.mp4"' in card.text
    code = card_usage_code(card.text)
    assert 'DiffusionPipeline.from_pretrained("me/v2a")\npipe.load_lora_weights("me/v2a-lora")' in code
    with pytest.raises(ValueError, match="`training_settings` must be a dict"):
        create_v2a_model_card("me/x", components={}, training_settings=["rank"])


def test_cards_say_what_a_missing_import_error_means(tmp_path):
    cards = [
        create_pipeline_model_card("me/lumina-video", "Alpha-VLLM/Lumina-Video-f24R960"),
        create_v2a_model_card("me/v2a", components={"Transformer": "trained"}),
    ]
    for card in cards:
        text = " ".join(card.text.split())
        assert (
            "`module diffusers has no attribute LuminaVideoPipeline` means `pip install diffusers-lumina-video`"
            in text
        )
        assert "and `import diffusers_lumina_video` before loading" in text
