"""Writing results so that a crash never leaves a half-written file behind."""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def permissions_from_umask(mode: int) -> int:
    """`mode` less the process umask: what `open`/`mkdir` would have given, for files made with `mkstemp`/`mkdtemp`."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


@contextlib.contextmanager
def atomic_output_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path` (same suffix, so writers pick the right format) and moves it onto
    `path` only when the block succeeds; on failure the temporary file is removed."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
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
    previous = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".previous", dir=target.parent))
    target.rename(previous / target.name)
    try:
        source.rename(target)
    except BaseException:
        (previous / target.name).rename(target)
        raise
    finally:
        if target.exists():
            shutil.rmtree(previous, ignore_errors=True)
