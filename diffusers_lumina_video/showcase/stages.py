"""Stages of a long showcase run, each reused when the run is started again with the settings it was made with.

A stage writes its result into its folder and, once finished, a marker `<name>.done.json` holding the settings its
result depends on (its own and those of the stages before it), the seconds it took and a small report. A rerun skips
the stages whose marker holds the same settings, so a killed run continues where it stopped and a changed setting
redoes only the stages it touches.
"""

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..utils.atomic import atomic_output_file, build_folder_atomically


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One stage: `run(folder)` writes its result into `folder` and returns a report (or None)."""

    name: str
    folder: Path
    settings: dict
    run: Callable[[Path], dict | None]


def check_run_flags(args: Any, positive: Sequence[str], rates: Sequence[str]) -> None:
    """The flags every staged run has (`args`, a script's parsed flags), checked before any work: the ints named
    `positive` (attribute names) >= 1, the learning rates named `rates` > 0, `--seed`, `--threads` (1 or 2) and
    `--output-dir` (not a file)."""
    for name in positive:
        if getattr(args, name) < 1:
            raise ValueError(f"`--{name.replace('_', '-')}` must be >= 1, got {getattr(args, name)}.")
    for name in rates:
        if not getattr(args, name) > 0:
            raise ValueError(f"`--{name.replace('_', '-')}` must be > 0, got {getattr(args, name)}.")
    if not 0 <= args.seed < 2**31:
        raise ValueError(f"`--seed` must be in [0, 2**31), got {args.seed}.")
    if args.threads not in (1, 2):
        raise ValueError(f"`--threads` must be 1 or 2 (the run is sized for two CPU cores), got {args.threads}.")
    if args.output_dir.exists() and not args.output_dir.is_dir():
        raise ValueError(f"`--output-dir` {args.output_dir} is a file, not a folder.")


def run_script(build_parser: Callable[[], Any], run: Callable[[Any], Any], argv: Sequence[str] | None) -> int:
    """The `main` of a showcase script: log at INFO, parse `argv` with the script's parser, run, exit status 0."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    run(build_parser().parse_args(argv))
    return 0


def is_done(marker: Path, settings: dict) -> bool:
    """Whether the stage of `marker` finished with these `settings`."""
    return marker.is_file() and json.loads(marker.read_text())["settings"] == settings


def mark_done(marker: Path, settings: dict, seconds: float, report: dict) -> None:
    """Records, atomically, that the stage of `marker` finished with these `settings`."""
    with atomic_output_file(marker) as temporary:
        temporary.write_text(json.dumps({"settings": settings, "seconds": seconds, **report}, indent=1))


def can_resume(folder: Path, settings: dict) -> bool:
    """Whether `folder` holds the unfinished work of a stage started with these `settings` (a trainer's checkpoints,
    say). If it holds work started with other settings, it is emptied, so that the stage starts afresh; either way
    the settings are recorded in `folder/started.json` for the next try."""
    started = folder / "started.json"
    resume = started.is_file() and json.loads(started.read_text()) == settings
    if not resume and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_output_file(started) as temporary:
        temporary.write_text(json.dumps(settings, indent=1))
    return resume


def export_half_precision(source: Path, target: Path, vae: Path | None = None, **config) -> None:
    """The pipeline folder `source` in half precision (safetensors) in `target`, the form a showcase model ships in,
    with `config` registered in its pipeline config first and, if given, the VAE saved in the folder `vae` instead of
    its own."""
    import torch
    from diffusers import AutoencoderKLCogVideoX, DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(source)
    if vae is not None:
        pipe.vae = AutoencoderKLCogVideoX.from_pretrained(vae)
    if config:
        pipe.register_to_config(**config)
    pipe.to(dtype=torch.float16)
    with build_folder_atomically(target, overwrite=True) as staging:
        pipe.save_pretrained(staging, safe_serialization=True)


def run_stages(stages: Sequence[Stage], markers: Path, stop_after: str | None = None) -> dict[str, dict]:
    """Runs `stages` in order (markers in the folder `markers`), up to and including `stop_after`, reusing those done
    with the same settings; returns each stage's marker contents (its settings, seconds and report)."""
    names = [stage.name for stage in stages]
    if stop_after is not None and stop_after not in names:
        raise ValueError(f"`stop_after` must be one of {names}, got {stop_after!r}.")
    done = {}
    for stage in stages:
        marker = markers / f"{stage.name}.done.json"
        if is_done(marker, stage.settings):
            logger.info(f"Stage {stage.name!r} is done with these settings; reusing {stage.folder}.")
        else:
            start = time.perf_counter()
            report = stage.run(stage.folder) or {}
            seconds = time.perf_counter() - start
            mark_done(marker, stage.settings, seconds, report)
            logger.info(f"Stage {stage.name!r} took {seconds:.0f} s.")
        done[stage.name] = json.loads(marker.read_text())
        if stage.name == stop_after:
            break
    return done
