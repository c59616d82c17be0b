"""Outputs are written beside their target and renamed; temporaries of a killed process are found and removed."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from diffusers_lumina_video.utils import atomic
from diffusers_lumina_video.utils.atomic import atomic_output_file, remove_stale_temporaries, replace_folder


# The module needs only the standard library: loaded by path, the writer starts in well under a second.
KILLED_WRITER = """
import importlib.util, sys, time
from pathlib import Path

spec = importlib.util.spec_from_file_location("atomic", sys.argv[2])
atomic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic)
with atomic.atomic_output_file(Path(sys.argv[1])) as temporary:
    temporary.write_text("half")
    print(temporary, flush=True)
    time.sleep(60)
"""


def killed_writer(target: Path) -> Path:
    """Starts writing `target` in a process, SIGKILLs it mid-write, and returns the temporary it left."""
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target), atomic.__file__], stdout=subprocess.PIPE, text=True
    )
    temporary = Path(process.stdout.readline().strip())
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    return temporary


def test_atomic_output_file_appears_only_complete(tmp_path):
    target = tmp_path / "video.mp4"
    with pytest.raises(RuntimeError), atomic_output_file(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("encoder failed")
    assert list(tmp_path.iterdir()) == []
    with atomic_output_file(target) as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".mp4" and temporary.name.startswith(".video.")
        temporary.write_text("whole")
    assert [p.name for p in tmp_path.iterdir()] == ["video.mp4"] and target.read_text() == "whole"


def test_temporary_of_a_killed_writer_is_removed_by_the_next_run(tmp_path):
    (tmp_path / "sub").mkdir()
    temporary = killed_writer(tmp_path / "sub" / "loss.csv")
    assert (
        temporary.is_file() and temporary.parent == tmp_path / "sub" and not (tmp_path / "sub" / "loss.csv").exists()
    )

    with atomic_output_file(tmp_path / "sub" / "mine.csv") as own:  # this process's own are kept
        assert remove_stale_temporaries(tmp_path) == []  # not recursive: the killed one is one level down
        assert remove_stale_temporaries(tmp_path, recursive=True) == [temporary]
        assert own.exists()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["mine.csv"]


def test_temporary_of_a_running_process_is_kept(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path / "x.txt"), atomic.__file__],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        temporary = Path(process.stdout.readline().strip())
        assert remove_stale_temporaries(tmp_path) == [] and temporary.is_file()
    finally:
        process.kill()
        process.wait()


def test_replace_folder_swaps_in_the_new_folder_and_leaves_nothing_else(tmp_path):
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "a").write_text("new")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "a").write_text("old")
    replace_folder(tmp_path / "new", tmp_path / "target")
    assert [p.name for p in tmp_path.iterdir()] == ["target"] and (tmp_path / "target" / "a").read_text() == "new"


# Replaces argv[1] by a new folder and blocks between the swap's two renames (old set aside, new not yet in).
KILLED_SWAP = """
import importlib.util, pathlib, sys, time

spec = importlib.util.spec_from_file_location("atomic", sys.argv[2])
atomic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic)
target = pathlib.Path(sys.argv[1])
rename = pathlib.Path.rename


def blocking_rename(self, destination):
    if pathlib.Path(destination) == target:  # the second rename: the new folder onto the target
        print("between", flush=True)
        time.sleep(60)
    return rename(self, destination)


pathlib.Path.rename = blocking_rename
with atomic.build_folder_atomically(target, overwrite=True) as building:
    (building / "a").write_text("new")
"""


def killed_between_the_renames(target: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_SWAP, str(target), atomic.__file__], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "between"
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not target.exists()  # the old folder is set aside under a hidden name: the moment this test is about


def test_convert_after_a_replacement_killed_between_its_renames_puts_the_old_folder_back(tmp_path, capsys):
    from diffusers_lumina_video.cli import main

    target = tmp_path / "converted"
    target.mkdir()
    (target / "a").write_text("old")
    killed_between_the_renames(target)
    args = ["convert", "--checkpoint_path", str(tmp_path / "missing"), "--output_path", str(target)]
    assert main([*args, "--transformer_only"]) == 1
    assert "already exists and is not empty" in capsys.readouterr().err  # the folder is back, so it is not replaced
    assert (target / "a").read_text() == "old"


@pytest.mark.parametrize("next_call", ["remove_stale_temporaries", "build_folder_atomically", "generate"])
def test_next_call_after_a_killed_swap_restores_the_only_copy_instead_of_deleting_it(tmp_path, next_call, capsys):
    target = tmp_path / "pipeline"
    target.mkdir()
    (target / "a").write_text("old")
    killed_between_the_renames(target)
    if next_call == "remove_stale_temporaries":
        remove_stale_temporaries(tmp_path)
    elif next_call == "build_folder_atomically":
        with pytest.raises(RuntimeError), atomic.build_folder_atomically(target, overwrite=True):
            raise RuntimeError("the new build failed")
    else:
        from diffusers_lumina_video.cli import main

        args = ["generate", "--model", str(target), "--prompt", "x", "--output", str(tmp_path / "x.mp4")]
        assert main(args) == 1  # the folder is back, and is no pipeline
        assert "model_index.json" in capsys.readouterr().err
    assert (target / "a").read_text() == "old"
    if next_call != "generate":
        assert [p.name for p in tmp_path.iterdir()] == ["pipeline"]
