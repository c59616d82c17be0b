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
