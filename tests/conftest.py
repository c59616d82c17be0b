import json
import re
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKLCogVideoX
from safetensors.torch import load_file
from synthetic_media import save_tiny_pipeline
from transformers import Gemma2Config, Gemma2Model

from diffusers_lumina_video.showcase.builtin_models import tiny_text_encoder, tiny_tokenizer, tiny_vae


GOLDEN_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "golden" / "lumina_video_tiny"
SHAPES_MANIFEST = GOLDEN_DIR.parents[1] / "reference" / "f24R960_state_dict_shapes.json"

# Tolerances a faithful float32 port meets (shared/golden/README.md).
FORWARD_TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}
TRAJECTORY_ATOL = 1e-3


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return GOLDEN_DIR


@pytest.fixture(scope="session")
def golden() -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN_DIR / "golden.safetensors"))


@pytest.fixture(scope="session")
def golden_spec() -> dict:
    return json.loads((GOLDEN_DIR / "golden.json").read_text())


@pytest.fixture(scope="session")
def shapes_manifest() -> dict:
    return json.loads(SHAPES_MANIFEST.read_text())


@pytest.fixture
def tiny_inputs() -> dict[str, torch.Tensor]:
    """A padded batch of two for `tiny_transformer()`: one with a motion score, one without."""
    generator = torch.Generator().manual_seed(0)
    return {
        "hidden_states": torch.randn(2, 4, 4, 8, 8, generator=generator),
        "timestep": torch.tensor([0.3, 0.7]),
        "encoder_hidden_states": torch.randn(2, 6, 32, generator=generator),
        "encoder_attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]),
        "motion_score": torch.tensor([4.0, -1.0]),
    }


@pytest.fixture(scope="session")
def golden_transformer():
    from diffusers_lumina_video import LuminaVideoTransformer3DModel

    return LuminaVideoTransformer3DModel.from_single_file(GOLDEN_DIR)


def run_golden_forward_case(model, golden: dict[str, torch.Tensor], case: dict) -> torch.Tensor:
    """The transformer output for one `forward_cases` entry of golden.json."""
    patch = (case["f_patch_size"], case["patch_size"], case["patch_size"])
    if case["input"] == "x":
        inputs = (golden["x"], golden["t"], golden["cap_feats"], golden["cap_mask"], golden["motion_score"])
    else:
        motion = torch.tensor(case["motion_score"])
        inputs = (golden["image"], golden["t"][:1], golden["cap_feats"][:1], golden["cap_mask"][:1], motion)
    with torch.no_grad():
        return model(*inputs, patch_size=patch).sample


def python_blocks(markdown: str) -> list[str]:
    """The ```python code blocks of a Markdown text, in order."""
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def card_usage_code(card_text: str) -> str:
    """The card's Python usage block."""
    blocks = python_blocks(card_text)
    assert len(blocks) == 1, blocks
    return blocks[0]


@pytest.fixture(scope="module")
def tiny_pipeline_dir(tmp_path_factory) -> Path:
    """A tiny random Lumina-Video pipeline folder, one per test module (tests may write beside it)."""
    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny_pipeline"))


def recorded_source_paths(folder: Path) -> dict[str, str]:
    """`_name_or_path` entries of the json configs under `folder` (file -> value): where a component was loaded from,
    which a written model folder must not carry."""
    found = {}
    for path in sorted(folder.rglob("*.json")):
        config = json.loads(path.read_text())
        if isinstance(config, dict) and "_name_or_path" in config:
            found[path.relative_to(folder).as_posix()] = config["_name_or_path"]
    return found


@pytest.fixture(scope="session")
def components_dir(tmp_path_factory, golden_spec) -> Path:
    """Tiny Gemma2 text encoder, tokenizer and CogVideoX VAE (in a `vae` subfolder, as on the Hub) sized for the
    golden transformer."""
    folder = tmp_path_factory.mktemp("components")
    sizes = golden_spec["config"]
    torch.manual_seed(0)
    text_config = {**tiny_text_encoder().config.to_dict(), "hidden_size": sizes["cap_feat_dim"]}
    Gemma2Model(Gemma2Config.from_dict(text_config)).save_pretrained(folder / "gemma")
    tiny_tokenizer().save_pretrained(folder / "gemma")
    vae = AutoencoderKLCogVideoX.from_config({**tiny_vae().config, "latent_channels": sizes["in_channels"]})
    vae.save_pretrained(folder / "cogvideox" / "vae")
    return folder
