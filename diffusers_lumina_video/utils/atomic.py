"""Writing results so that a crash never leaves a half-written file behind.

Every temporary file or folder is hidden and named `.<target>.tmp-<pid>-...`, beside its target. A killed process
cannot remove its own, so the next run in the same place calls `remove_stale_temporaries`, which deletes those whose
process no longer runs.

A folder being replaced is first set aside as `.<target>.tmp-<pid>-....previous/<target>`: the name says whose copy
it is. A process killed before the new folder is in leaves the target missing and that copy its only one, so the
next run puts it back (`restore_set_aside_folders`) instead of deleting it.
"""

import contextlib
import glob
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


logger = logging.getLogger(__name__)


def permissions_from_umask(mode: int) -> int:
    """`mode` less the process umask: what `open`/`mkdir` would have given, for files made with `mkstemp`/`mkdtemp`."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


_TEMPORARY_NAME = re.compile(r"^\..+\.tmp-(\d+)-")


def temporary_prefix(target_name: str) -> str:
    """The name start of a temporary for `target_name`, marked with this process's id."""
    return f".{target_name}.tmp-{os.getpid()}-"


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def is_abandoned(path: Path) -> bool:
    """Whether `path` is a temporary whose process no longer runs."""
    match = _TEMPORARY_NAME.match(path.name)
    return match is not None and int(match.group(1)) != os.getpid() and not _is_running(int(match.group(1)))


_SET_ASIDE_SUFFIX = ".previous"


def _restore_if_only_copy(set_aside: Path) -> Path | None:
    """Puts the folder inside an abandoned `set_aside` back at its name when nothing is there; returns it then."""
    for inner in set_aside.iterdir() if set_aside.is_dir() else []:
        target = set_aside.parent / inner.name
        if not target.exists() and not target.is_symlink():
            try:
                inner.rename(target)
            except FileNotFoundError:  # another process put it back first
                continue
            logger.warning(f"Restored {target}, which an interrupted run had set aside as {inner}.")
            return target
    return None


def restore_set_aside_folders(folder: Path, name: str | None = None) -> list[Path]:
    """Puts back every folder in `folder` (only `name`, if given) that a killed `replace_folder` left set aside with
    nothing at its own path; returns those restored. Called by every command before it reads or replaces one."""
    pattern = f".{glob.escape(name) if name else '*'}.tmp-*{_SET_ASIDE_SUFFIX}"
    found = sorted(folder.glob(pattern)) if folder.is_dir() else []
    return [target for path in found if is_abandoned(path) and (target := _restore_if_only_copy(path)) is not None]


def restore_folder(path: str | os.PathLike) -> None:
    """Puts `path` back if a killed `replace_folder` left it set aside; for commands about to read or replace it."""
    path = Path(path).expanduser().absolute()
    restore_set_aside_folders(path.parent, path.name)


def remove_stale_temporaries(folder: Path, recursive: bool = False) -> list[Path]:
    """Deletes the temporaries in `folder` (and below, if `recursive`) left by processes that no longer run; returns
    what it deleted. A set-aside folder that is the only copy of its target is put back instead."""
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.rglob(".*") if recursive else folder.glob(".*")):
        if not is_abandoned(path):
            continue
        if path.name.endswith(_SET_ASIDE_SUFFIX):
            _restore_if_only_copy(path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_output_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path` (same suffix, so writers pick the right format) and moves it onto
    `path` only when the block succeeds; on failure the temporary file is removed."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=temporary_prefix(path.stem), suffix=path.suffix, dir=path.parent)
    os.close(descriptor)
    temporary = Path(temporary)
    temporary.chmod(permissions_from_umask(0o666))  # `mkstemp` makes the file private
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def replace_folder(source: Path, target: Path) -> None:
    """Renames `source` to `target`; an existing `target` is set aside first and deleted only once `source` is in."""
    if not target.exists():
        source.rename(target)
        return
    previous = Path(
        tempfile.mkdtemp(prefix=temporary_prefix(target.name), suffix=_SET_ASIDE_SUFFIX, dir=target.parent)
    )
    target.rename(previous / target.name)
    try:
        source.rename(target)
    except BaseException:
        (previous / target.name).rename(target)
        raise
    finally:
        if target.exists():
            shutil.rmtree(previous, ignore_errors=True)


def forget_source_paths(folder: Path) -> None:
    """Removes `_name_or_path` from every json config under `folder`. Diffusers and transformers record there where
    a component was loaded from, which for a local folder is a path of the machine that wrote it; nothing reads it
    back (`DiffusionPipeline.from_pretrained` drops it), so a folder that is shipped or shared carries none."""
    for path in sorted(folder.rglob("*.json")):
        try:
            config = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(config, dict) and "_name_or_path" in config:
            del config["_name_or_path"]
            path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def build_folder_atomically(output_path: Path, overwrite: bool) -> Iterator[Path]:
    """Yields an empty folder beside `output_path` that replaces it when the block completes (a model folder: its
    configs lose the local paths they were loaded from, see `forget_source_paths`). On any error or interruption the
    folder (and any parent created for it) is removed and `output_path` is left as it was; one left by a killed
    process is removed by the next build beside it."""
    first_created = next((p for p in reversed([output_path, *output_path.parents]) if not p.exists()), None)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temporaries(output_path.parent):
        logger.info(f"Removed {stale}, left by an interrupted run.")
    building = Path(
        tempfile.mkdtemp(prefix=temporary_prefix(output_path.name), suffix=".partial", dir=output_path.parent)
    )
    building.chmod(permissions_from_umask(0o777))  # `mkdtemp` makes the folder private
    try:
        yield building
        forget_source_paths(building)
        replace_folder(building, output_path)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        if first_created is not None and first_created != output_path:
            shutil.rmtree(first_created, ignore_errors=True)
        raise
