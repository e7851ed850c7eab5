"""Writing evaluation results: metrics.parquet, metrics.md and auc_by_day.png in one folder, and the
plots of a comparison."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from training.metrics import METRIC_COLUMNS, to_markdown

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METRICS_SCHEMA = pa.schema([("model", pa.string()), ("task", pa.string()), ("date", pa.date32()),
                            ("auc", pa.float64()), ("gauc", pa.float64()), ("logloss", pa.float64()),
                            ("n", pa.int64()), ("users", pa.int64())])


def warning_banner(warnings: Sequence[str]) -> str:
    """Markdown lines that put each warning above a report, where it cannot be missed."""
    return "".join(f"> **WARNING:** {w}\n\n" for w in warnings)


def write_metrics(metrics: pd.DataFrame, out_dir: str | os.PathLike, title: str = "",
                  warnings: Sequence[str] = ()) -> dict[str, Path]:
    """Write the table (Parquet + Markdown, `warnings` above it) and the AUC-per-day plot; returns
    their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"parquet": out / "metrics.parquet", "markdown": out / "metrics.md", "plot": out / "auc_by_day.png"}
    pq.write_table(pa.Table.from_pandas(metrics[METRIC_COLUMNS], schema=METRICS_SCHEMA, preserve_index=False),
                   paths["parquet"])
    header = (f"# {title}\n\n" if title else "") + warning_banner(warnings)
    paths["markdown"].write_text(header + to_markdown(metrics))
    plot_auc_by_day(metrics, paths["plot"])
    return paths


def plot_auc_by_day(metrics: pd.DataFrame, path: str | os.PathLike, spread: Optional[str] = None) -> None:
    """Save `auc_by_day_figure(metrics, spread)` as an image at `path`."""
    auc_by_day_figure(metrics, spread).savefig(path, dpi=100)


def auc_by_day_figure(metrics: pd.DataFrame, spread: Optional[str] = None) -> "Figure":
    """One panel per task, one line per model; n/a days are gaps; `spread` names a column of
    error-bar half-widths (e.g. the std over seeds).

    A bare matplotlib Figure, outside pyplot: no backend is switched and nothing stays open, so a
    notebook can display it and a training run can save it alike.
    """
    from matplotlib.figure import Figure

    tasks = sorted(metrics["task"].unique())
    fig = Figure(figsize=(5 * max(1, len(tasks)), 3.5))
    axes = fig.subplots(1, max(1, len(tasks)), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for model, rows in metrics[metrics["task"] == task].sort_values("date").groupby("model"):
            if spread is None:
                ax.plot(pd.to_datetime(rows["date"]), rows["auc"], marker="o", label=model)
            else:
                ax.errorbar(pd.to_datetime(rows["date"]), rows["auc"], yerr=rows[spread].fillna(0.0), marker="o",
                            capsize=3, label=model)
        ax.set_title(task)
        ax.set_ylabel("AUC")
        ax.tick_params(axis="x", rotation=45)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def lift_by_day_figure(days: pd.DataFrame, baseline: str) -> "Figure":
    """One panel per task: per period, one bar per model of its AUC lift over `baseline` in percent
    (`lift_pct` of training.comparison_tables's per-period summary; n/a periods have no bar), as the
    E2E-GRec paper tabulates it. A bare matplotlib Figure, as `auc_by_day_figure`."""
    from matplotlib.figure import Figure

    tasks = sorted(days["task"].unique())
    fig = Figure(figsize=(5 * max(1, len(tasks)), 3.5))
    axes = fig.subplots(1, max(1, len(tasks)), squeeze=False)
    others = sorted(m for m in days["model"].unique() if m != baseline)
    width = 0.8 / max(1, len(others))
    for ax, task in zip(axes[0], tasks):
        rows = days[days["task"] == task]
        dates = sorted(rows["date"].unique())
        for j, model in enumerate(others):
            lift = rows[rows["model"] == model].set_index("date")["lift_pct"].reindex(dates)
            ax.bar([d + j * width for d in range(len(dates))], lift.to_numpy(dtype=float), width, label=model)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks([d + (len(others) - 1) * width / 2 for d in range(len(dates))],
                      [str(d) for d in dates], rotation=45)
        ax.set_title(task)
        ax.set_ylabel(f"AUC lift vs {baseline} (%)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig

