"""The per-step loss log of a training run: a CSV file, and its plot."""

import csv
from pathlib import Path

from ..utils.atomic import atomic_output_file


class LossLog:
    """`loss.csv`, one row per optimizer step. On resume, rows after the checkpoint's step are dropped first, so the
    file always describes one run."""

    def __init__(self, path: Path, columns: list[str], resume_step: int):
        self.path = path
        self.columns = columns
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if path.is_file() and resume_step > 0:
            with path.open(newline="") as file:
                kept = [row for row in csv.DictReader(file) if int(row["step"]) <= resume_step]
        with atomic_output_file(path) as staging, staging.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=columns)
            writer.writeheader()
            writer.writerows(kept)
        self.file = path.open("a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=columns)

    def write(self, row: dict) -> None:
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    def plot(self, png_path: Path) -> None:
        """A loss curve as PNG when matplotlib is installed (it is not a dependency)."""
        try:
            from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
        except ImportError:
            return
        with self.path.open(newline="") as file:
            rows = list(csv.DictReader(file))
        figure = Figure(figsize=(8, 4.5))
        axis = figure.subplots()
        for column in [c for c in self.columns if c.startswith("loss")]:
            axis.plot([int(r["step"]) for r in rows], [float(r[column]) for r in rows], label=column, linewidth=1)
        axis.set_xlabel("step")
        axis.set_ylabel("loss")
        axis.legend()
        with atomic_output_file(png_path) as staging:
            figure.savefig(staging, dpi=120)
