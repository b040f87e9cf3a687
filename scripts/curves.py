#!/usr/bin/env python3
"""Plot training curves: s2s-plot-curves RUN_DIR [RUN_DIR ...] -o OUT.png [--label NAME ...]

Reads each run folder's metrics.jsonl and draws one figure: training and validation loss,
validation BLEU, validation chrF, learning rate and throughput (target tokens/s), each against
the step; several run folders are overlaid, one colour per run, to compare them.

``CurveWriter`` is the same plot kept up to date during training: s2s-train redraws
<run folder>/curves.png at each validation (and, asked to, logs TensorBoard scalars).
Matplotlib draws without pyplot (a Figure on the Agg canvas), so nothing global changes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METRICS_FILE = "metrics.jsonl"  # s2s/training/run_folder.py (not imported: it loads torch)
CURVES_FILE = "curves.png"
TENSORBOARD_DIR = "tensorboard"

# Panel titles, in drawing order (tests and readers find panels by title).
LOSS = "loss (training solid, validation dashed)"
BLEU = "validation BLEU"
CHRF = "validation chrF"
LR = "learning rate"
THROUGHPUT = "throughput (target tokens/s)"
PANELS = (LOSS, BLEU, CHRF, LR, THROUGHPUT)
NO_DATA = "no data"


class CurvesError(ValueError):
    """A run folder that cannot be plotted (missing, or without a metrics file)."""


# ---- reading ------------------------------------------------------------------------------
def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl; blank lines, a line cut short by a kill (or still being
    written) and records without a kind and step are skipped."""
    records = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "kind" in record and _number(record.get("step")):
                records.append(record)
    return records


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _value(record: dict[str, Any], key: str) -> float:
    """A finite float, else NaN (missing, null, inf: drawn as a gap)."""
    value = record.get(key)
    if not _number(value) or not math.isfinite(value):
        return math.nan
    return float(value)


# per record kind: RunCurves attribute <- metrics.jsonl key (steps go to <kind>_step)
SERIES = {"train": {"train_loss": "loss", "lr": "lr", "tokens_per_s": "tokens_per_s"},
          "valid": {"valid_loss": "valid_loss", "bleu": "bleu", "chrf": "chrf"}}


@dataclass
class RunCurves:
    """One run's series, sorted by step (a step logged twice keeps its last record)."""

    label: str
    train_step: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)
    valid_step: list[float] = field(default_factory=list)
    valid_loss: list[float] = field(default_factory=list)
    bleu: list[float] = field(default_factory=list)
    chrf: list[float] = field(default_factory=list)

    @classmethod
    def from_records(cls, records: Sequence[dict[str, Any]], label: str) -> RunCurves:
        curves = cls(label)
        for kind, fields in SERIES.items():
            by_step = {record["step"]: record for record in records if record["kind"] == kind}
            for step in sorted(by_step):
                getattr(curves, f"{kind}_step").append(float(step))
                for attribute, key in fields.items():
                    getattr(curves, attribute).append(_value(by_step[step], key))
        return curves

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, label: str | None = None) -> RunCurves:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise CurvesError(f"{run_dir}: no such run folder")
        metrics = run_dir / METRICS_FILE
        if not metrics.is_file():
            raise CurvesError(f"{run_dir}: no {METRICS_FILE} (not a run folder, or not started)")
        return cls.from_records(read_metrics(metrics), label or default_label(run_dir))


def default_label(run_dir: str | Path) -> str:
    path = Path(run_dir)
    return path.resolve().name or str(path)


# ---- drawing ------------------------------------------------------------------------------
def make_figure(runs: Sequence[RunCurves]) -> Figure:
    """The comparison figure (not saved): one panel per entry of PANELS, one colour per run,
    and a legend naming the runs in the sixth place of the 3 x 2 grid."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    figure = Figure(figsize=(12, 11), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(3, 2).ravel()
    panels = dict(zip(PANELS, axes))
    colors = [f"C{index % 10}" for index in range(len(runs))]
    for run, color in zip(runs, colors):
        _line(panels[LOSS], run.train_step, run.train_loss, color, f"{run.label} training")
        _line(panels[LOSS], run.valid_step, run.valid_loss, color, f"{run.label} validation",
              valid=True)
        _line(panels[BLEU], run.valid_step, run.bleu, color, run.label, valid=True)
        _line(panels[CHRF], run.valid_step, run.chrf, color, run.label, valid=True)
        _line(panels[LR], run.train_step, run.lr, color, run.label)
        _line(panels[THROUGHPUT], run.train_step, run.tokens_per_s, color, run.label)
    for title, ax in panels.items():
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        if not ax.lines:
            ax.text(0.5, 0.5, NO_DATA, transform=ax.transAxes, ha="center", va="center",
                    color="gray", fontsize=14)
    if panels[LR].lines and all(y > 0 for line in panels[LR].lines for y in line.get_ydata()
                                if math.isfinite(y)):
        panels[LR].set_yscale("log")
    legend_ax = axes[len(PANELS)]
    legend_ax.axis("off")
    handles = [Line2D([], [], color=color, label=run.label) for run, color in zip(runs, colors)]
    handles += [Line2D([], [], color="black", label="training"),
                Line2D([], [], color="black", linestyle="--", marker="o", markersize=4,
                       label="validation")]
    legend_ax.legend(handles=handles, loc="center", frameon=False,
                     title="runs" if len(runs) > 1 else None)
    figure.suptitle("training curves: " + ", ".join(run.label for run in runs))
    return figure


def _line(ax, steps: list[float], values: list[float], color: str, label: str,
          valid: bool = False) -> None:
    """Draw a series unless it holds no finite value; a lone point gets a marker."""
    if not any(math.isfinite(value) for value in values):
        return
    single = sum(math.isfinite(value) for value in values) == 1
    ax.plot(steps, values, color=color, label=label, linestyle="--" if valid else "-",
            marker="o" if valid or single else None, markersize=4 if valid else 5,
            linewidth=1.2)


def save_figure(figure: Figure, out_png: str | Path, dpi: int = 100) -> Path:
    """Write the figure as PNG atomically: a temp file in the same folder, then a rename, so
    a reader (an image viewer refreshing curves.png) never sees half a picture."""
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{out_png.name}.", suffix=".tmp",
                                         dir=out_png.parent)
    try:
        with os.fdopen(handle, "wb") as temp:
            os.fchmod(temp.fileno(), 0o666 & ~_umask())  # mkstemp's 0600 -> as open() would
            figure.savefig(temp, format="png", dpi=dpi)
        os.replace(temp_name, out_png)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return out_png


def _umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plot_runs(run_dirs: Sequence[str | Path], out_png: str | Path,
              labels: Sequence[str] | None = None) -> Path:
    """Plot one or more run folders into one PNG (written atomically); returns its path.
    Raises CurvesError for a missing folder or metrics file, ValueError for a label count
    that does not match."""
    if not run_dirs:
        raise ValueError("no run folder to plot")
    if labels is not None and len(labels) != len(run_dirs):
        raise ValueError(f"{len(labels)} labels for {len(run_dirs)} run folders")
    runs = [RunCurves.from_run_dir(run_dir, labels[index] if labels else None)
            for index, run_dir in enumerate(run_dirs)]
    return save_figure(make_figure(runs), out_png)


# ---- during training ----------------------------------------------------------------------
class CurveWriter:
    """Trainer-event consumer: redraws <run_dir>/curves.png at each "valid" event (the record
    is in metrics.jsonl by then) and, with ``tensorboard``, logs every train and valid record
    as scalars to <run_dir>/tensorboard/.

    Failures never reach the training loop: a call returns the exception it caught (else
    None), ``last_error`` keeps the latest, ``failures`` counts them, and ``warn`` (e.g.
    TrainingProgress.write) is called with a message on the first one only.
    """

    def __init__(self, run_dir: str | Path, tensorboard: bool = False,
                 warn: Callable[[str], None] | None = None, label: str | None = None,
                 out_png: str | Path | None = None):
        self.run_dir = Path(run_dir)
        self.out_png = Path(out_png) if out_png is not None else self.run_dir / CURVES_FILE
        self.label = label
        self.warn = warn
        self.last_error: Exception | None = None
        self.failures = 0
        self.redraws = 0
        self._summary_writer_class = _summary_writer_class() if tensorboard else None
        self._summary = None

    @property
    def tensorboard_dir(self) -> Path:
        return self.run_dir / TENSORBOARD_DIR

    def __call__(self, event: dict[str, Any]) -> Exception | None:
        error = None
        kind = event.get("kind")
        if self._summary_writer_class is not None:
            error = self._guard(self._log_scalars, event)
        if kind == "valid":
            error = self.redraw() or error
        return error

    def redraw(self) -> Exception | None:
        """Draw curves.png now; returns the exception on failure."""
        self.redraws += 1
        return self._guard(plot_runs, [self.run_dir], self.out_png,
                           None if self.label is None else [self.label])

    def _guard(self, action: Callable[..., Any], *args: Any) -> Exception | None:
        try:
            action(*args)
        except Exception as error:  # drawing must never stop training
            self.last_error = error
            self.failures += 1
            if self.failures == 1 and self.warn is not None:
                self.warn(f"warning: training curves not updated ({type(error).__name__}: "
                          f"{error}); training goes on, further failures are not reported")
            return error
        return None

    def _log_scalars(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "resume" and self._summary is None:
            # Hide what an earlier process logged after the checkpoint this run resumes from
            # (metrics.jsonl is cut back the same way).
            self._open_summary(purge_step=int(event["step"]) + 1)
            return
        if kind not in ("train", "valid"):
            return
        if self._summary is None:
            self._open_summary()
        step = int(event["step"])
        for name, value in event.items():
            if name in ("kind", "step", "elapsed_s") or not _number(value):
                continue
            tag = f"{kind}/{name.removeprefix('valid_')}"
            self._summary.add_scalar(tag, float(value), global_step=step)
        if kind == "valid":
            self._summary.flush()

    def _open_summary(self, purge_step: int | None = None) -> None:
        self._summary = self._summary_writer_class(log_dir=str(self.tensorboard_dir),
                                                   purge_step=purge_step)

    def close(self) -> None:
        if self._summary is not None:
            self._guard(self._summary.close)
            self._summary = None


def _summary_writer_class() -> type:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise RuntimeError(
            "TensorBoard logging needs the tensorboard package: pip install tensorboard "
            f"({error})") from error
    return SummaryWriter


# ---- command line -------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from .cli_common import make_parser

    parser = make_parser(__doc__)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run folder holding a metrics.jsonl")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.png",
                        help="PNG file to write")
    parser.add_argument("--label", dest="labels", action="append", metavar="NAME",
                        help="legend name of a run, once per RUN_DIR in the same order "
                             "(default: the folder names)")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        out = plot_runs([Path(run_dir) for run_dir in args.run_dirs], args.output, args.labels)
    except (CurvesError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
