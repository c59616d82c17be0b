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
    create_lora_model_card,
    create_pipeline_model_card,
)
from diffusers_lumina_video.utils.tiny_random import tiny_random_pipeline


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
