"""`lumina-video demo`: the page's checks and progress, the command, and the page itself in a headless Chromium."""

import socket
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from diffusers.utils import export_to_video
from lora_files import save_random_lora

import diffusers_lumina_video
from diffusers_lumina_video import LuminaVideoTransformer3DModel
from diffusers_lumina_video.cli import ERROR_EXIT_CODE, main
from diffusers_lumina_video.commands.demo import INSTALL_HINT
from diffusers_lumina_video.pipelines import LuminaV2APipeline, LuminaVideoPipeline
from diffusers_lumina_video.showcase.builtin_models import (
    TINY_SHAPES_DEFAULTS,
    TINY_SHAPES_FPS,
    tiny_shapes_path,
    tiny_transformer,
    tiny_v2a_components,
    tiny_v2a_transformer,
)
from diffusers_lumina_video.utils.media_io import read_audio, read_video


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1600",
]
GOOD_REQUEST = {
    "prompt": "a red circle moving left",
    "preset": "f24F96R960-MultiScale",
    "motion_score": 6.0,
    "steps": 3,
    "seed": 0,
    "model": "tiny-random",
    "height": 64,
    "width": 64,
    "num_frames": 9,
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_demo_command_without_gradio_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    monkeypatch.delitem(sys.modules, "diffusers_lumina_video.demo", raising=False)
    monkeypatch.delattr(diffusers_lumina_video, "demo", raising=False)
    assert main(["demo"]) == 1
    assert (
        capsys.readouterr().out.strip()
        == INSTALL_HINT
        == 'The demo needs Gradio: pip install "diffusers-lumina-video[demo]"'
    )


def test_demo_command_rejects_bad_port(capsys):
    assert main(["demo", "--port", "0"]) == ERROR_EXIT_CODE
    assert capsys.readouterr().err.strip() == "lumina-video demo: error: `--port` must be in 1..65535, got 0."


def test_demo_help_names_the_default_model(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: `tiny-shapes`, the built-in model trained on moving shapes)" in help_text
    assert "tiny-random" not in help_text


@pytest.fixture
def demo():
    """The demo module; its tests are skipped where the [demo] extra (Gradio) is not installed."""
    pytest.importorskip("gradio", reason="the demo needs the [demo] extra (gradio)")
    from diffusers_lumina_video import demo

    return demo


def test_default_model_is_the_built_in_one(demo):
    assert demo.DEFAULT_MODEL == "tiny-shapes"


def start_values(page) -> dict:
    """The value each labelled input of the page starts on."""
    return {
        block.label: block.value
        for block in page.blocks.values()
        if getattr(block, "label", None) and hasattr(block, "value")
    }


def test_page_starts_from_the_models_own_settings_and_shows_them(demo):
    values = start_values(demo.build_demo())
    assert values["Sampling preset"] == "tiny-shapes"  # its own single-scale settings, not a released preset's
    assert values["Motion score (negative: none)"] == -1.0  # its own default: no motion condition
    assert (values["Steps"], values["Height"], values["Width"], values["Frames"]) == (20, 64, 64, 16)
    choices = next(b for b in demo.build_demo().blocks.values() if getattr(b, "label", None) == "Sampling preset")
    assert [value for _, value in choices.choices][:2] == ["tiny-shapes", "tiny-shapes-MultiScale"]
    model, kwargs = demo.check_request(**{**GOOD_REQUEST, "model": "tiny-shapes", "preset": "tiny-shapes-MultiScale"})
    assert kwargs["patch_size"] == [(0.0, (2, 2, 2)), (0.875, (1, 2, 2))]
    assert kwargs["guidance_scale"] == 4.0 and kwargs["negative_motion_score"] == -1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prompt": "  "}, "`prompt` is empty"),
        ({"steps": 0}, "`steps` must be >= 1, got 0"),
        ({"steps": 2.5}, "`steps` must be a whole number, got 2.5"),
        ({"width": float("nan")}, "`width` must be a whole number, got nan"),
        ({"num_frames": None}, "`frames` must be a whole number, got None"),
        ({"height": 48}, r"`height` and `width` must be positive multiples of 32 .* got 48x64"),
        ({"num_frames": 0}, "`num_frames` must be >= 1, got 0"),
        ({"seed": -1}, "`seed` must be >= 0, got -1"),
        ({"motion_score": None}, "`motion_score` must be a finite number, got None"),
        ({"preset": "nope"}, r"`preset` must be one of \['f16F64R512'"),
        ({"model": ""}, "`model` is empty"),
        ({"model": "/does/not/exist"}, "`model` '/does/not/exist' is neither a built-in model"),
    ],
)
def test_check_request_rejects_bad_values(demo, change, message):
    request = {**GOOD_REQUEST, **change}
    with pytest.raises(ValueError, match=message):
        demo.check_request(**request)


def test_check_request_refuses_a_folder_that_is_not_a_pipeline(demo, tmp_path):
    with pytest.raises(ValueError, match="has no model_index.json"):
        demo.check_request(**{**GOOD_REQUEST, "model": str(tmp_path)})


def test_check_request_accepts_hub_ids_and_applies_overrides(demo):
    model, kwargs = demo.check_request(**{**GOOD_REQUEST, "model": "owner/model", "height": 96.0, "steps": 7})
    assert model == "owner/model"
    assert (kwargs["height"], kwargs["num_inference_steps"], kwargs["motion_score"]) == (96, 7, 6.0)
    assert kwargs["patch_size"][0] == (0.0, (2, 4, 4))  # the preset's multi-scale schedule


def test_generate_reports_every_step_and_caches_the_pipeline(demo, tmp_path):
    app = demo.DemoApp(tmp_path)
    calls = []

    def progress(value, desc=None):
        calls.append((value, desc))

    request = {k: GOOD_REQUEST[k] for k in ("prompt", "preset", "motion_score", "steps", "seed", "model")}
    sizes = {k: GOOD_REQUEST[k] for k in ("height", "width", "num_frames")}
    video, download, status = app.generate(negative_prompt="", progress=progress, **request, **sizes)
    assert video == download == str(tmp_path / "video_0001.mp4")
    assert status.startswith("9 frames of 64x64 in ")
    assert [value for value, desc in calls if desc == "Sampling"] == [(1, 3), (2, 3), (3, 3)]
    pipe = app.pipelines.get("tiny-random")
    app.generate(negative_prompt="blurry", progress=progress, **request, **sizes)
    assert app.pipelines.get("tiny-random") is pipe
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video_0001.mp4", "video_0002.mp4"]  # nothing half-written


def test_generate_shows_bad_values_as_a_message(demo, tmp_path):
    request = {**GOOD_REQUEST, "prompt": ""}
    with pytest.raises(demo.gr.Error, match="`prompt` is empty"):
        demo.DemoApp(tmp_path).generate(negative_prompt="", progress=lambda *a, **k: None, **request)
    assert not any(tmp_path.iterdir())


def test_a_model_of_the_wrong_kind_is_a_message(app_with_v2a, demo, tiny_v2a_id):
    request = {**GOOD_REQUEST, "model": tiny_v2a_id}
    with pytest.raises(
        demo.gr.Error, match="`model` .*tiny-v2a.* holds a LuminaV2APipeline, not a LuminaVideoPipeline"
    ):
        app_with_v2a.generate(negative_prompt="", progress=_silent, **request)


def test_a_model_that_cannot_load_is_a_message(demo):
    app = demo.DemoApp()
    with pytest.raises(demo.gr.Error, match="Could not load model 'nobody-here/no-such-model'"):
        app.pipelines.get("nobody-here/no-such-model")
    assert app.output_dir is None  # its temporary folder is made only when a video is written


@pytest.fixture(scope="module")
def tiny_lora(tmp_path_factory) -> Path:
    """A LoRA of random weights for `tiny-random`'s transformer."""
    return save_random_lora(tmp_path_factory.mktemp("tiny_lora"), tiny_transformer(), LuminaVideoPipeline)


def test_generate_loads_a_lora_once_keeps_it_and_removes_it(demo, tmp_path, tiny_lora):
    app = demo.DemoApp(tmp_path)
    pipe = app.pipelines.get("tiny-random")
    videos = []

    def generate(**lora) -> str:
        path, _, status = app.generate(negative_prompt="", progress=_silent, **GOOD_REQUEST, **lora)
        videos.append(read_video(path).frames.astype(np.float32))
        return status

    generate()
    assert generate(lora=str(tiny_lora), lora_weight=0.8).endswith(f"with tiny-random and LoRA {tiny_lora} at 0.8.")
    adapters = pipe.get_list_adapters()
    generate(lora=f"  {tiny_lora} ", lora_weight=0.0)  # the same LoRA: not loaded again
    generate()  # an empty box: the base model, the LoRA kept for later
    assert pipe.get_list_adapters() == adapters == {"transformer": ["lora_0"]}
    base, with_lora, at_zero, without = videos
    assert np.abs(with_lora - base).max() > 10  # in 0-255 pixel values
    np.testing.assert_array_equal(at_zero, base)
    np.testing.assert_array_equal(without, base)

    assert app.remove_loras() == ("", "Unloaded every LoRA (1).")
    assert pipe.get_list_adapters() == {}


def test_a_bad_lora_is_a_message(demo, tmp_path, tiny_lora):
    v2a_lora = save_random_lora(tmp_path / "v2a", tiny_v2a_transformer(), LuminaV2APipeline)
    app = demo.DemoApp(tmp_path / "videos")
    for lora, weight, message in [
        (str(tmp_path / "missing.safetensors"), 1.0, "`LoRA` .*missing.safetensors does not exist"),
        (str(v2a_lora), 1.0, "is a Lumina-V2A LoRA, and this model is Lumina-Video"),
        (str(tiny_lora), float("nan"), "`LoRA weight` must be a finite number, got nan"),
    ]:
        with pytest.raises(demo.gr.Error, match=message):
            app.generate(negative_prompt="", progress=_silent, **GOOD_REQUEST, lora=lora, lora_weight=weight)
    assert app.pipelines.get("tiny-random").get_list_adapters() == {}


@pytest.fixture
def tiny_v2a_id(tmp_path_factory) -> str:
    """A folder holding a saved tiny random V2A pipeline."""
    folder = tmp_path_factory.mktemp("tiny-v2a")
    LuminaV2APipeline(**tiny_v2a_components()).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def app_with_v2a(demo, tiny_v2a_id, tmp_path):
    return demo.DemoApp(tmp_path)


def _silent(*args, **kwargs) -> None:
    pass


def test_add_sound_muxes_a_soundtrack_as_long_as_the_video(app_with_v2a, tiny_v2a_id, tmp_path):
    request = {**GOOD_REQUEST, "num_frames": 25}  # 25 frames at 24 fps: longer than one Synchformer segment
    video, _, _ = app_with_v2a.generate(negative_prompt="", progress=_silent, **request)
    calls = []
    sound, download, status = app_with_v2a.add_sound(
        video, "rain", "", 3, 0, tiny_v2a_id, progress=lambda value, desc=None: calls.append((value, desc))
    )
    assert sound == download == str(tmp_path / "video_0002_sound.mp4")
    assert [value for value, desc in calls if desc == "Sampling the sound"] == [(1, 3), (2, 3), (3, 3)]
    assert status.startswith("1.04 s of sound in ")
    assert read_video(sound).frames.shape == (25, 64, 64, 3)
    assert abs(len(read_audio(sound)) - 25 / 24 * 16000) <= 1024  # one AAC frame of padding at most


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"video": None}, "There is no video to add sound to: generate one first."),
        ({"steps": 0}, "`audio steps` must be >= 1, got 0"),
        ({"seed": -2}, "`seed` must be >= 0, got -2"),
        ({"audio_model": ""}, "`audio model` is empty"),
        ({"audio_model": "tiny-shapes"}, "`audio model` tiny-shapes is a built-in video model, not a sound one"),
        ({}, r"The video lasts 0.375 s; Synchformer needs at least 0.64 s"),
    ],
)
def test_add_sound_shows_bad_values_as_a_message(app_with_v2a, demo, tiny_v2a_id, change, message):
    video, _, _ = app_with_v2a.generate(negative_prompt="", progress=_silent, **GOOD_REQUEST)  # 9 frames: 0.375 s
    request = {
        "video": video,
        "prompt": "",
        "negative_prompt": "",
        "steps": 2,
        "seed": 0,
        "audio_model": tiny_v2a_id,
    }
    with pytest.raises(demo.gr.Error, match=message):
        app_with_v2a.add_sound(progress=_silent, **{**request, **change})


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the [test] extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    yield driver
    driver.quit()


@pytest.fixture
def page_url(demo, tiny_v2a_id, tmp_path, monkeypatch):
    monkeypatch.setenv(
        "GRADIO_TEMP_DIR", str(tmp_path / "gradio")
    )  # the copies Gradio serves stay in the test's folder
    page = demo.build_demo(audio_model=tiny_v2a_id, output_dir=tmp_path / "videos")
    port = _free_port()
    demo.launch(page, port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    page.close()


def test_page_generates_a_playable_video_shows_bad_values_and_adds_sound(browser, page_url, tmp_path, start_video):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(page_url)
    prompt = wait.until(expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "#prompt textarea")))
    prompt.send_keys("a red circle moving left")
    browser.find_element(By.ID, "generate").click()

    player = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#video video")))
    # Chromium has read the mp4's header and decoded nothing wrong: it can play it.
    wait.until(lambda _: browser.execute_script("return arguments[0].readyState >= 1", player))
    assert browser.execute_script("return arguments[0].error", player) is None
    assert browser.execute_script("return arguments[0].duration", player) > 0
    frames = TINY_SHAPES_DEFAULTS["num_frames"]  # the page starts with the built-in tiny-shapes and its settings
    status = browser.find_element(By.CSS_SELECTOR, "#status textarea").get_attribute("value")
    assert f"{frames} frames of 64x64" in status

    served = tmp_path / "served.mp4"
    with urllib.request.urlopen(player.get_attribute("src"), timeout=10) as response:
        served.write_bytes(response.read())
    assert read_video(served).frames.shape == (frames, 64, 64, 3)
    download_link = browser.find_element(By.CSS_SELECTOR, "#download a")
    assert download_link.get_attribute("href").endswith(".mp4")

    prompt.send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)  # as a person does, so that the page sees the edit
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda _: "is empty: describe the video to generate" in browser.find_element(By.TAG_NAME, "body").text)
    assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text

    # 25 frames (3 s at tiny-shapes' 8 fps, long enough for a soundtrack) set on the slider, then the second button.
    frames = browser.find_element(By.CSS_SELECTOR, "#frames input[type=range]")
    browser.execute_script(
        "arguments[0].value = 25; for (const e of ['input', 'change']) arguments[0].dispatchEvent(new Event(e));",
        frames,
    )
    prompt.send_keys("rain on a window")
    browser.find_element(By.ID, "generate").click()
    status = browser.find_element(By.CSS_SELECTOR, "#status textarea")
    wait.until(lambda _: "25 frames of 64x64" in status.get_attribute("value"))
    browser.find_element(By.ID, "add-sound").click()
    wait.until(lambda _: "s of sound in" in status.get_attribute("value"))
    player = browser.find_element(By.CSS_SELECTOR, "#video video")
    wait.until(lambda _: player.get_attribute("src").endswith("_sound.mp4"))
    with urllib.request.urlopen(player.get_attribute("src"), timeout=10) as response:
        served.write_bytes(response.read())
    assert read_video(served).frames.shape[0] == 25
    assert abs(len(read_audio(served)) - 25 / TINY_SHAPES_FPS * 16000) <= 1024

    # A video to start from, uploaded: its 6 frames (fewer than the slider's 25) restyled at the default strength.
    browser.find_element(By.XPATH, "//button[contains(., 'Start from a video')]").click()
    upload = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#start-video input")))
    upload.send_keys(str(start_video))
    wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#start-video video"))  # the upload is shown
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda _: "from the start video at strength 0.8" in status.get_attribute("value"))
    assert "6 frames of 64x64" in status.get_attribute("value")
    player = browser.find_element(By.CSS_SELECTOR, "#video video")
    with urllib.request.urlopen(player.get_attribute("src"), timeout=10) as response:
        served.write_bytes(response.read())
    assert read_video(served).frames.shape == (6, 64, 64, 3)


@pytest.fixture(scope="module")
def shapes_lora(tmp_path_factory) -> Path:
    """A LoRA of random weights for the built-in `tiny-shapes`, the model the page opens with."""
    transformer = LuminaVideoTransformer3DModel.from_pretrained(tiny_shapes_path(), subfolder="transformer")
    return save_random_lora(tmp_path_factory.mktemp("shapes_lora"), transformer, LuminaVideoPipeline)


def test_page_samples_with_a_lora_and_removes_it(browser, page_url, shapes_lora, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(page_url)
    prompt = wait.until(expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "#prompt textarea")))
    prompt.send_keys("a red circle moving left")
    status = browser.find_element(By.CSS_SELECTOR, "#status textarea")

    def generate(expected_status: str) -> np.ndarray:
        """Clicks Generate and returns the frames the page then plays."""
        old = browser.find_element(By.CSS_SELECTOR, "#video video").get_attribute("src") if videos else None
        browser.find_element(By.ID, "generate").click()
        wait.until(lambda _: expected_status in status.get_attribute("value"))
        player = browser.find_element(By.CSS_SELECTOR, "#video video")
        wait.until(lambda _: player.get_attribute("src") not in (None, "", old))
        served = tmp_path / f"served{len(videos)}.mp4"
        with urllib.request.urlopen(player.get_attribute("src"), timeout=10) as response:
            served.write_bytes(response.read())
        videos.append(read_video(served).frames.astype(np.float32))
        return videos[-1]

    videos = []
    base = generate("with tiny-shapes.")
    lora_box = browser.find_element(By.CSS_SELECTOR, "#lora textarea")
    lora_box.send_keys(str(shapes_lora))
    with_lora = generate(f"with tiny-shapes and LoRA {shapes_lora} at 1.")
    assert np.abs(with_lora - base).max() > 10

    browser.find_element(By.ID, "remove-lora").click()
    wait.until(lambda _: "Unloaded every LoRA (1)." in status.get_attribute("value"))
    assert lora_box.get_attribute("value") == ""
    np.testing.assert_array_equal(generate("with tiny-shapes."), base)

    lora_box.send_keys(str(tmp_path / "nope.safetensors"), Keys.TAB)
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda _: "nope.safetensors does not exist" in browser.find_element(By.TAG_NAME, "body").text)


def test_demo_command_launches_the_page_locally(demo, monkeypatch):
    launched = {}
    monkeypatch.setattr(demo, "launch", lambda page, host, port: launched.update(page=page, host=host, port=port))
    assert main(["demo", "--model", "owner/model", "--audio-model", "owner/v2a", "--port", "7999"]) == 0
    assert launched["host"] == "127.0.0.1" and launched["port"] == 7999
    assert isinstance(launched["page"], demo.gr.Blocks)
    boxes = {
        getattr(block, "elem_id", None): getattr(block, "value", None) for block in launched["page"].blocks.values()
    }
    assert (boxes["model"], boxes["audio-model"]) == ("owner/model", "owner/v2a")


def test_demo_command_refuses_an_unknown_model_before_starting(demo, monkeypatch, capsys):
    monkeypatch.setattr(demo, "launch", lambda *args, **kwargs: pytest.fail("the page must not start"))
    assert main(["demo", "--model", "/does/not/exist"]) == ERROR_EXIT_CODE
    assert "error: `--model` '/does/not/exist' is neither" in capsys.readouterr().err
    assert main(["demo", "--audio-model", "/no/v2a"]) == ERROR_EXIT_CODE
    assert "error: `--audio-model` '/no/v2a' is neither" in capsys.readouterr().err
    assert main(["demo", "--model", "tiny-shapes-v2a"]) == ERROR_EXIT_CODE
    assert "error: `--model` tiny-shapes-v2a is a built-in sound model, not a video one" in capsys.readouterr().err


def test_demo_offers_the_built_in_video_models_own_sound_model(demo, monkeypatch):
    launched = {}
    monkeypatch.setattr(demo, "launch", lambda page, host, port: launched.update(page=page))
    for args, expected in (
        ([], ("tiny-shapes", "tiny-shapes-v2a")),
        (["--model", "tiny-random"], ("tiny-random",) * 2),
    ):
        assert main(["demo", *args]) == 0
        blocks = launched["page"].blocks.values()
        boxes = {getattr(block, "elem_id", None): getattr(block, "value", None) for block in blocks}
        assert (boxes["model"], boxes["audio-model"]) == expected


@pytest.fixture
def start_video(tmp_path) -> Path:
    """6 frames of 48 x 80 at 12 fps."""
    frames = np.random.default_rng(0).random((6, 48, 80, 3)).astype(np.float32)
    path = tmp_path / "start.mp4"
    export_to_video(list(frames), str(path), fps=12)
    return path


def test_generate_from_a_start_video(demo, tmp_path, start_video):
    calls = []
    request = {**GOOD_REQUEST, "steps": 4}  # 9 frames asked, the video has 6
    video, _, status = demo.DemoApp(tmp_path / "out").generate(
        negative_prompt="",
        start_video=str(start_video),
        strength=0.5,
        progress=lambda value, desc=None: calls.append((value, desc)),
        **request,
    )
    assert status.startswith("6 frames of 64x64 in ") and status.endswith("from the start video at strength 0.5.")
    assert [value for value, desc in calls if desc == "Sampling"] == [(1, 2), (2, 2)]  # the last half of 4 steps
    written = read_video(video)
    assert written.frames.shape == (6, 64, 64, 3) and written.fps == 12  # the start video's rate


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start_video": "/no/such.mp4"}, "`video` /no/such.mp4 does not exist"),
        ({"strength": 0.0}, r"`strength` must be a number in \(0, 1\], got 0.0"),
        ({"strength": 0.1}, "`strength=0.1` keeps no step of `num_inference_steps=3`"),
    ],
)
def test_start_video_bad_values_are_a_message(demo, tmp_path, start_video, change, message):
    request = {**GOOD_REQUEST, "start_video": str(start_video), "strength": 0.5, **change}
    with pytest.raises(demo.gr.Error, match=message):
        demo.DemoApp(tmp_path / "out").generate(negative_prompt="", progress=_silent, **request)
    assert not (tmp_path / "out").exists()
