"""Checks that a result can be written where the user asked, done before any model loads so a typo in an output
path costs a second rather than a finished generation or conversion."""

import os
import tempfile
from pathlib import Path

from .atomic import restore_folder, temporary_prefix


def _nearest_existing(path: Path) -> Path:
    return next(p for p in [path, *path.parents] if p.exists())


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be created in `folder`: `os.access` and a real probe, since permission bits say nothing
    for root, a read-only or virtual file system."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        descriptor, probe = tempfile.mkstemp(prefix=temporary_prefix("write-probe"), dir=folder)
    except OSError:
        return False
    os.close(descriptor)
    os.unlink(probe)
    return True


def check_output_file(path: str | os.PathLike, name: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """`path` is a file that can be created or replaced: its folder exists and is writable, and it is not a folder.

    `name` is the argument as the user wrote it (e.g. `"--output"`), so the error points at it.
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise ValueError(f"`{name}` must end in {' or '.join(suffixes)}, got {path}.")
    if path.is_dir():
        raise IsADirectoryError(f"`{name}` {path} is a folder; give the path of a file to write.")
    folder = path.parent
    if not folder.is_dir():
        existing = _nearest_existing(folder.absolute())
        if not existing.is_dir():
            raise NotADirectoryError(f"`{name}` {path} lies under {existing}, which is a file, not a folder.")
        raise FileNotFoundError(f"`{name}` folder {folder} does not exist; create it first.")
    if not _can_create_in(folder):
        raise PermissionError(f"`{name}` folder {folder} is not writable.")
    return path


def check_output_folder(path: str | os.PathLike, name: str) -> Path:
    """`path` is a folder that can be created (parents included) or replaced: it is not a file, and the nearest
    existing folder on its way is writable. A folder a killed replacement set aside is put back first."""
    path = Path(path)
    restore_folder(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"`{name}` {path} is a file; give a folder path.")
    existing = _nearest_existing(path.absolute().parent)
    if not existing.is_dir():
        raise NotADirectoryError(f"`{name}` {path} lies under {existing}, which is a file, not a folder.")
    if not _can_create_in(existing):
        raise PermissionError(f"`{name}` {path} cannot be created: {existing} is not writable.")
    return path
