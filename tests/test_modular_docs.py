"""docs/modular.md runs as written: its Python blocks, in order, in one namespace."""

from pathlib import Path

from conftest import python_blocks


DOC = Path(__file__).resolve().parents[1] / "docs" / "modular.md"


def test_modular_docs_code_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 7
    for index, code in enumerate(blocks):
        exec(compile(code, f"{DOC.name} block {index}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "LuminaVideoModularPipeline ['text_encoder', 'denoise', 'decode']" in printed
    assert "uint8 (1, 8, 64, 64, 3)" in printed
    assert "(1, 8, 64, 64, 3) (1, 16000) 16000" in printed
    assert "LuminaVideoSoundModularPipeline LuminaVideoSoundBlocks {'diffusers_lumina_video': '>=0.1.0'}" in printed
    assert type(namespace["reloaded"]).__name__ == "LuminaVideoSoundModularPipeline"
    assert namespace["reloaded"].audio_transformer is not None
