import csv
import json
from pathlib import Path

import pytest

from diffusers_lumina_video.training.av_data import AVItem, load_av_items


def write_manifest(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".csv":
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        path.write_text(json.dumps(rows))
    return path


@pytest.fixture
def vggsound(tmp_path) -> Path:
    """Four clips named by VGGSound clip id, with AV-Align scores around the 0.2 threshold."""
    for clip_id in ("abc_000010", "def_000020", "ghi_000030", "jkl_000040"):
        (tmp_path / f"{clip_id}.mp4").write_bytes(b"video")
    return tmp_path


VGGSOUND_ROWS = [
    {"ytid": "abc_000010", "label": "dog barking", "av_align": "0.35"},
    {"ytid": "def_000020", "label": "playing piano", "av_align": "0.19"},
    {"ytid": "ghi_000030", "label": "car engine", "av_align": "0.2"},
    {"ytid": "jkl_000040", "label": "rain", "av_align": "0.05"},
    {"ytid": "zzz_000050", "label": "thunder", "av_align": "0.9"},  # never downloaded
]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_vggsound_manifest_resolves_clip_ids_and_filters_by_alignment_score(vggsound, suffix):
    manifest = write_manifest(vggsound / f"vggsound{suffix}", VGGSOUND_ROWS)
    items, skipped = load_av_items(manifest, path_column="ytid", caption_column="label", score_column="av_align")
    assert items == [
        AVItem("abc_000010", vggsound / "abc_000010.mp4", "dog barking"),
        AVItem("ghi_000030", vggsound / "ghi_000030.mp4", "car engine"),  # at the threshold: kept
    ]
    assert skipped == {
        "def_000020": "alignment score 0.19 is below 0.2",
        "jkl_000040": "alignment score 0.05 is below 0.2",
        "zzz_000050": f"file {vggsound / 'zzz_000050.mp4'} does not exist",
    }


def test_threshold_is_configurable_and_scores_are_optional(vggsound):
    manifest = write_manifest(vggsound / "m.csv", VGGSOUND_ROWS)
    items, skipped = load_av_items(
        manifest, path_column="ytid", caption_column="label", score_column="av_align", score_threshold=0.1
    )
    assert [i.name for i in items] == ["abc_000010", "def_000020", "ghi_000030"]
    assert list(skipped) == ["jkl_000040", "zzz_000050"]
    items, skipped = load_av_items(manifest, path_column="ytid", caption_column="label")
    assert len(items) == 4 and list(skipped) == ["zzz_000050"]


def test_manifest_paths_are_relative_to_the_manifest(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mov").write_bytes(b"video")
    manifest = write_manifest(tmp_path / "m.jsonl", [{"path": "clips/a.mov", "caption": " a cat meowing "}])
    assert load_av_items(manifest) == ([AVItem("clips/a", tmp_path / "clips" / "a.mov", "a cat meowing")], {})


def test_folder_captions_come_from_text_files_or_the_file_name(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "dog_barking-loud.mp4").write_bytes(b"video")
    (tmp_path / "z.mp4").write_bytes(b"video")
    (tmp_path / "z.txt").write_text("a red square flashing\n")
    (tmp_path / "notes.md").write_text("not a clip")
    items, skipped = load_av_items(tmp_path)
    assert items == [
        AVItem("sub/dog_barking-loud", tmp_path / "sub" / "dog_barking-loud.mp4", "dog barking loud"),
        AVItem("z", tmp_path / "z.mp4", "a red square flashing"),
    ]
    assert skipped == {} and items[0].cache_file == "sub_dog_barking-loud.safetensors"


@pytest.mark.parametrize(
    "rows, kwargs, message",
    [
        ([{"path": "a.mp4", "text": "x"}], {}, r"`caption_column` 'caption' is not a column of .*\['path', 'text'\]"),
        ([{"path": "a.mp4", "caption": "x"}], {"score_column": "score"}, r"`score_column` 'score' is not a column"),
        (
            [{"path": "a.mp4", "caption": "x", "score": "high"}],
            {"score_column": "score"},
            r"row 1: `score` must be a number or empty, got 'high'",
        ),
        ([{"path": "a.mp4", "caption": "x", "score": ""}], {"score_column": "score"}, r"row 1: `score` is empty"),
        (
            [{"path": "a.mp4", "caption": "x"}, {"path": "", "caption": "y"}],
            {},
            r"row 2: `path` is empty; every row needs a file or clip id",
        ),
        ([{"path": "a.mp4", "caption": ""}], {}, r"row 1: `caption` is empty; every clip needs a caption"),
        ([{"path": "a.mp4", "caption": "x"}, {"path": "a", "caption": "y"}], {}, r"these clash: 'a' and 'a'"),
        (
            [{"path": "a.mp4", "caption": "x"}],
            {"score_threshold": 0.3},
            r"`score_threshold` is set but `score_column`",
        ),
        (
            [{"path": "a.mp4", "caption": "x", "s": "1"}],
            {"score_column": "s", "score_threshold": float("nan")},
            r"`score_threshold` must be finite",
        ),
    ],
)
def test_manifest_problems_raise_before_any_file_is_opened(tmp_path, rows, kwargs, message):
    (tmp_path / "a.mp4").write_bytes(b"video")
    with pytest.raises(ValueError, match=message):
        load_av_items(write_manifest(tmp_path / "m.csv", rows), **kwargs)


def test_dataset_must_be_a_folder_of_videos_or_a_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="`dataset` .* does not exist"):
        load_av_items(tmp_path / "missing.csv")
    (tmp_path / "list.txt").write_text("a.mp4")
    with pytest.raises(ValueError, match=r"a folder of videos or a manifest \(.csv, .jsonl, .json\)"):
        load_av_items(tmp_path / "list.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no videos"):
        load_av_items(tmp_path / "empty")
    with pytest.raises(ValueError, match="filter a manifest; `dataset` is a folder"):
        load_av_items(tmp_path, score_column="s")
