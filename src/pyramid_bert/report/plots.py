"""Plots like the paper's Figures 8-9: per task, one panel per method, every configuration as a dot
(mean over seeds) and the Pareto frontier used for the tables as a line; the dense model as a dashed line;
and one overview with every method's frontier overlaid (:func:`plot_overview`)."""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure

from pyramid_bert.io import atomic_write_bytes
from pyramid_bert.report.aggregate import TaskResult, shown_columns
from pyramid_bert.report.stats import mean_ci
from pyramid_bert.report.tables import SCALE


def plot_task(result: TaskResult, path: str | Path, *, axis: str = "speedup") -> Path:
    """Write ``path`` (PNG) for one task; ``axis`` "speedup" (measured) or "space" (attention-space reduction)."""

    columns = [c for c in shown_columns([result]) if c != "dense"]
    figure = Figure(figsize=(2.6 * len(columns), 3.0))
    axes = figure.subplots(1, len(columns), sharey=True, squeeze=False)
    x_label = "measured speedup (X)" if axis == "speedup" else "attention-space reduction (paper's formula)"
    for ax, column in zip(axes[0], columns, strict=True):
        method = result.methods[column]
        if method.points:
            ax.scatter(
                [p.mean(axis) for p in method.points],
                [p.mean("test") * SCALE for p in method.points],
                s=30,
                facecolors="none",
                edgecolors="tab:blue",
                zorder=3,
                label="configurations",
            )
            flagged = [p for p in method.points if p.flagged]
            if flagged:
                ax.scatter([p.mean(axis) for p in flagged], [p.mean("test") * SCALE for p in flagged], marker="x",
                           color="gray", zorder=4, label="constant predictor")  # fmt: skip
            frontier = method.frontier(axis)
            ax.plot(
                [p.mean(axis) for p in frontier],
                [p.mean("test") * SCALE for p in frontier],
                color="tab:red",
                linewidth=1.2,
                marker="o",
                markersize=2,
                zorder=2,
                label="frontier (chosen on dev)",
            )
        if result.dense is not None:
            ax.axhline(result.dense.mean("test") * SCALE, color="gray", linestyle="--", linewidth=0.8, label="dense")
        ax.set_title(column + (f" ({method.failed} failed)" if method.failed else ""), fontsize=9)
        ax.set_xlabel(x_label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"test {result.metric_name or 'metric'} (x100)", fontsize=8)
    axes[0][0].legend(fontsize=6, loc="lower left")
    figure.suptitle(f"{result.task}: metric vs {x_label}", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_overview(result: TaskResult, path: str | Path, *, targets: tuple[float, ...] = (1.5, 2.0, 3.0),
                  speed_axis: str = "padded") -> Path:  # fmt: skip
    """One panel with every method's frontier (test mean, 95% CI band over seeds) against measured speedup,
    the dense model (line and band), the majority-class rate of test, the target speedups, and constant
    predictors as grey crosses."""

    figure = Figure(figsize=(7.5, 4.8))
    ax = figure.subplots()
    colors = colormaps["tab10"]
    for index, column in enumerate(c for c in shown_columns([result]) if c != "dense"):
        frontier = [p for p in result.methods[column].frontier("speedup") if p.method != "dense"]
        if not frontier:
            continue
        xs = [p.mean("speedup") for p in frontier]
        summaries = [mean_ci(list(p.test.values())) for p in frontier]
        ys = [s.mean * SCALE for s in summaries]
        ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.3, color=colors(index), label=column)
        if all(s.low is not None for s in summaries):
            ax.fill_between(xs, [s.low * SCALE for s in summaries], [s.high * SCALE for s in summaries],
                            color=colors(index), alpha=0.12, linewidth=0)  # fmt: skip
    flagged = [p for p in result.points if p.flagged and p.method != "dense"]
    if flagged:
        ax.scatter([p.mean("speedup") for p in flagged], [p.mean("test") * SCALE for p in flagged], marker="x",
                   color="gray", label="constant predictor (excluded)", zorder=4)  # fmt: skip
    if result.dense is not None:
        dense = mean_ci(list(result.dense.test.values()))
        ax.axhline(dense.mean * SCALE, color="black", linestyle="--", linewidth=1.0, label="dense")
        if dense.low is not None:
            ax.axhspan(dense.low * SCALE, dense.high * SCALE, color="black", alpha=0.06, linewidth=0)
        if result.dense.label_majority_share is not None:
            ax.axhline(result.dense.label_majority_share * SCALE, color="firebrick", linestyle=":", linewidth=1.0,
                       label="majority class")  # fmt: skip
    for target in targets:
        ax.axvline(target, color="gray", linestyle=":", linewidth=0.8)
    ax.set_xlabel(f"measured speedup (X), {speed_axis} batches")
    ax.set_ylabel(f"test {result.metric_name or 'metric'} (x100), mean and 95% CI over seeds")
    ax.set_title(f"{result.task}: every method's frontier (chosen on dev)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    figure.tight_layout()
    return save_figure(figure, path)


def save_figure(figure: object, path: str | Path) -> Path:
    """Write a matplotlib ``figure`` to ``path`` as PNG through a uniquely named temporary sibling and a rename
    (nothing left behind if rendering fails)."""
    png = io.BytesIO()
    figure.savefig(png, dpi=110, format="png")
    return atomic_write_bytes(path, png.getvalue())
