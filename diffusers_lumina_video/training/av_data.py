"""Reading a Lumina-V2A dataset: which video files with sound to train on, under which names and captions.

A dataset is a folder of videos (each with a same-name `.txt` caption, or its file name as the label) or a
CSV/JSONL/JSON manifest in the VGGSound layout: one row per clip with a path or clip id, a caption or label, and
optionally an audio-visual alignment score (AV-Align); rows scoring below the threshold are dropped, as Lumina-V2A's
data was (at 0.2). Nothing here decodes a file: what a file holds is checked when it is prepared (`av_prepare.py`).
"""

import math
import re
from dataclasses import dataclass
from pathlib import Path

from .data import VIDEO_SUFFIXES, manifest_number, read_manifest_rows, resolve_manifest_path


AV_ALIGN_THRESHOLD = 0.2
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".json")
_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class AVItem:
    """One clip: its `name` (unique; it names the cached file), its video file and its caption."""

    name: str
    path: Path
    caption: str

    @property
    def cache_file(self) -> str:
        """The file name of the clip's cached features: the name with anything a file system may refuse replaced."""
        return _UNSAFE_FILE_CHARACTERS.sub("_", self.name) + ".safetensors"


def load_av_items(
    dataset: str | Path,
    *,
    path_column: str = "path",
    caption_column: str = "caption",
    score_column: str | None = None,
    score_threshold: float | None = None,
) -> tuple[list[AVItem], dict[str, str]]:
    """The clips of `dataset` and those left out `{name: reason}` (below the score threshold, or a listed file
    that does not exist), without opening any file. Problems with the manifest itself (format, columns, values)
    raise a `ValueError` naming the row and column.

    Args:
        dataset: A folder of videos, or a `.csv`/`.jsonl`/`.json` manifest.
        path_column: The manifest column with each clip's file, relative to the manifest's folder, or its clip id
            (VGGSound's `<youtube id>_<start>`), found as `<id>.mp4` (or another video suffix) there.
        caption_column: The manifest column with the caption or class label.
        score_column: An optional manifest column of alignment scores; rows below `score_threshold` are dropped.
        score_threshold: The lowest score kept (default 0.2, Lumina-V2A's); needs `score_column`.
    """
    dataset = Path(dataset)
    threshold = _check_arguments(dataset, score_column, score_threshold)
    if dataset.is_dir():
        return _read_folder(dataset), {}
    columns = {"path_column": path_column, "caption_column": caption_column}
    if score_column is not None:
        columns["score_column"] = score_column
    rows = read_manifest_rows(dataset, columns)
    items, skipped = [], {}
    for number, row in enumerate(rows, start=1):
        value = str(row.get(path_column) or "").strip()
        caption = str(row.get(caption_column) or "").strip()
        if not value:
            raise ValueError(f"{dataset}, row {number}: `{path_column}` is empty; every row needs a file or clip id.")
        if not caption:
            raise ValueError(f"{dataset}, row {number}: `{caption_column}` is empty; every clip needs a caption.")
        path = _clip_file(dataset.parent, value)
        name = _clip_name(value)
        if score_column is not None:
            score = manifest_number(row.get(score_column), dataset, number, score_column)
            if score is None:
                raise ValueError(f"{dataset}, row {number}: `{score_column}` is empty; every row needs a score.")
            if score < threshold:
                skipped[name] = f"alignment score {score:g} is below {threshold:g}"
                continue
        if not path.is_file():
            skipped[name] = f"file {path} does not exist"
            continue
        items.append(AVItem(name=name, path=path, caption=caption))
    check_unique_names(items, dataset)
    return items, skipped


def _check_arguments(dataset: Path, score_column: str | None, score_threshold: float | None) -> float:
    """Checks the arguments before any file is read; returns the threshold to apply."""
    if not dataset.exists():
        raise FileNotFoundError(f"`dataset` {dataset} does not exist.")
    if dataset.is_file() and dataset.suffix.lower() not in MANIFEST_SUFFIXES:
        raise ValueError(
            f"`dataset` {dataset} must be a folder of videos or a manifest ({', '.join(MANIFEST_SUFFIXES)})."
        )
    if dataset.is_dir() and (score_column is not None or score_threshold is not None):
        raise ValueError("`score_column` and `score_threshold` filter a manifest; `dataset` is a folder.")
    if score_threshold is None:
        return AV_ALIGN_THRESHOLD
    if score_column is None:
        raise ValueError("`score_threshold` is set but `score_column` is not; name the column of scores to filter.")
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float)):
        raise ValueError(f"`score_threshold` must be a number, got {score_threshold!r}.")
    if not math.isfinite(score_threshold):
        raise ValueError(f"`score_threshold` must be finite, got {score_threshold!r}.")
    return float(score_threshold)


def _clip_file(root: Path, value: str) -> Path:
    """A manifest's path, or the video file of a clip id (the first existing `<id><video suffix>`)."""
    path = resolve_manifest_path(root, value)
    if path.suffix.lower() in VIDEO_SUFFIXES or path.is_file():
        return path
    candidates = [path.with_name(path.name + suffix) for suffix in VIDEO_SUFFIXES]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _clip_name(value: str) -> str:
    """A manifest row's clip name: its clip id, or its path without the video suffix (the file name alone for an
    absolute path)."""
    path = Path(value)
    path = path.with_suffix("") if path.suffix.lower() in VIDEO_SUFFIXES else path
    return path.name if path.is_absolute() else path.as_posix()


def _read_folder(folder: Path) -> list[AVItem]:
    """Every video below `folder`; its caption is the same-name `.txt` file, else its file name as a label."""
    videos = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise ValueError(f"Dataset folder {folder} holds no videos ({', '.join(VIDEO_SUFFIXES)}).")
    items = []
    for path in videos:
        text = path.with_suffix(".txt")
        caption = text.read_text(encoding="utf-8").strip() if text.is_file() else ""
        label = " ".join(re.split(r"[_\-\s]+", path.stem)).strip()
        name = path.relative_to(folder).with_suffix("").as_posix()
        items.append(AVItem(name=name, path=path, caption=caption or label))
    check_unique_names(items, folder)
    return items


def check_unique_names(items: list[AVItem], dataset: str | Path) -> None:
    """Two clips must not share a cached file."""
    seen: dict[str, str] = {}
    clashes = []
    for item in items:
        if item.cache_file in seen:
            clashes.append(f"{seen[item.cache_file]!r} and {item.name!r}")
        seen.setdefault(item.cache_file, item.name)
    if clashes:
        raise ValueError(
            f"Clip names of {dataset} must be unique (they name the cached files); these clash: {'; '.join(clashes)}."
        )
