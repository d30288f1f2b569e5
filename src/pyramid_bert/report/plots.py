"""Plots like the paper's Figures 8-9: per task, one panel per method, every configuration as a dot
(mean over seeds) and the Pareto frontier used for the tables as a line; the dense model as a dashed line."""

from __future__ import annotations

from pathlib import Path

from pyramid_bert.report.aggregate import METHOD_COLUMNS, TaskResult
from pyramid_bert.report.tables import SCALE


def plot_task(result: TaskResult, path: str | Path, *, axis: str = "speedup") -> Path:
    """Write ``path`` (PNG) for one task; ``axis`` "speedup" (measured) or "space" (attention-space reduction)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in METHOD_COLUMNS if c != "dense"]
    figure, axes = plt.subplots(1, len(columns), figsize=(2.6 * len(columns), 3.0), sharey=True, squeeze=False)
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
    temporary.replace(path)
    return path
