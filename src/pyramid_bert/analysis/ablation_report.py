"""Tables and plots of an ablation from its plan and the results store (Tables 5-7, Figure 6).

A cell is (variant, schedule): the test metric over seeds as a mean with a 95% Student-t interval
(:func:`pyramid_bert.report.stats.mean_ci`; one seed is said so), the paired difference of each variant to
the first one on the same seeds, and the measured speedup of the seed that timed it (both padded to N: the
paper's protocol; and length-sorted batches: the realistic one).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from pyramid_bert.io import atomic_write_text, write_csv_atomic
from pyramid_bert.measure.evaluation import speedup_column
from pyramid_bert.report.plots import save_figure
from pyramid_bert.report.stats import MeanCI, PairedDifference, holm, mean_ci, paired_difference, verdict
from pyramid_bert.sweep.ablations import PlannedTrial

SCALE = 100.0


@dataclass
class Cell:
    """One (variant, schedule): per-seed test and dev metrics, speedups, what the FLOPs model predicts."""

    variant: str
    schedule: str
    lengths: tuple[int, ...]
    test: dict[int, float] = field(default_factory=dict)
    dev: dict[int, float] = field(default_factory=dict)
    speedup: float | None = None
    sorted_speedup: float | None = None
    predicted: float | None = None
    failed: int = 0
    missing: int = 0

    def summary(self) -> MeanCI | None:
        return mean_ci(list(self.test.values())) if self.test else None


def collect(rows: Sequence[PlannedTrial], records: Mapping[str, Any]) -> list[Cell]:
    """Cells in plan order from ``records`` (trial key -> :class:`~pyramid_bert.sweep.store.TrialRecord`)."""
    cells: dict[tuple[str, str], Cell] = {}
    for row in rows:
        cell = cells.setdefault((row.variant, row.schedule),
                                Cell(row.variant, row.schedule, tuple(row.trial.lengths or ())))  # fmt: skip
        record = records.get(row.trial.key)
        if record is None:
            cell.missing += 1
            continue
        if not record.ok:
            cell.failed += 1
            continue
        result = record.result
        cell.test[row.trial.seed] = float(result["test_metric"])
        cell.dev[row.trial.seed] = float(result["dev_metric"])
        cell.predicted = result.get("predicted_speedup", cell.predicted)
        if result.get(speedup_column("paper")) is not None and cell.speedup is None:
            cell.speedup = float(result[speedup_column("paper")])
            sorted_value = result.get(speedup_column("sorted"))
            cell.sorted_speedup = None if sorted_value is None else float(sorted_value)
    return list(cells.values())


def cell_rows(cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """One CSV row per cell (metric x 100)."""
    rows = []
    for cell in cells:
        s = cell.summary()
        rows.append({
            "variant": cell.variant, "schedule": cell.schedule, "lengths": " ".join(map(str, cell.lengths)),
            "seeds": len(cell.test), "test_mean": _r(s.mean * SCALE) if s else "",
            "test_low": _r(s.low * SCALE) if s and s.low is not None else "",
            "test_high": _r(s.high * SCALE) if s and s.high is not None else "",
            "test_std": _r(s.std * SCALE) if s and s.std is not None else "",
            "dev_mean": _r(float(np.mean(list(cell.dev.values()))) * SCALE) if cell.dev else "",
            "speedup_padded": _r(cell.speedup), "speedup_sorted": _r(cell.sorted_speedup),
            "predicted_speedup": _r(cell.predicted), "failed": cell.failed, "missing": cell.missing,
            **{f"test_seed{seed}": _r(v * SCALE) for seed, v in sorted(cell.test.items())},
        })  # fmt: skip
    return rows


def _r(value: float | None) -> float | str:
    return "" if value is None else round(float(value), 3)


def _ci_text(s: MeanCI | None) -> str:
    if s is None:
        return "-"
    if s.low is None:
        return f"{s.mean * SCALE:.1f} (one seed)"
    return f"{s.mean * SCALE:.1f} [{s.low * SCALE:.1f}, {s.high * SCALE:.1f}]"


def markdown_table(cells: Sequence[Cell]) -> str:
    """Schedules as rows, variants as columns: test mean [95% CI] and measured speedup padded / sorted; then the
    paired difference of every other variant to the first."""
    variants = list(dict.fromkeys(c.variant for c in cells))
    schedules = list(dict.fromkeys(c.schedule for c in cells))
    by = {(c.variant, c.schedule): c for c in cells}
    head = "| schedule (lengths) | predicted | " + " | ".join(f"{v}: test, speedup padded / sorted" for v in variants)
    lines = [head + " |", "|---|---|" + "---|" * len(variants)]
    for schedule in schedules:
        first = next(by[(v, schedule)] for v in variants if (v, schedule) in by)
        cells_text = []
        for variant in variants:
            cell = by.get((variant, schedule))
            if cell is None:
                cells_text.append("")
                continue
            speed = f"{cell.speedup:.2f}X / {cell.sorted_speedup:.2f}X" if cell.speedup and cell.sorted_speedup else "-"
            own = cell.predicted
            differs = own is not None and first.predicted is not None and abs(own - first.predicted) > 0.005
            cells_text.append(f"{_ci_text(cell.summary())}, {speed}" + (f" (predicted {own:.2f}X)" if differs else ""))
        predicted = f"{first.predicted:.2f}X" if first.predicted else "-"
        lengths = " ".join(map(str, first.lengths))
        lines.append(f"| {schedule} ({lengths}) | {predicted} | " + " | ".join(cells_text) + " |")
    if len(variants) > 1:
        compared = [(schedule, variant, paired_difference(by[(variant, schedule)].test, by[(variants[0], schedule)].test))
                    for schedule in schedules for variant in variants[1:]
                    if (variants[0], schedule) in by and (variant, schedule) in by]  # fmt: skip
        adjusted = holm([d for _, _, d in compared])
        differences = [f"- {schedule}, {variant}: {_difference_text(d)}{verdict(d, other=variants[0])}"
                       for (schedule, variant, _), d in zip(compared, adjusted, strict=True)]  # fmt: skip
        if differences:
            family = max((d.family for d in adjusted if d is not None and d.p_adjusted is not None), default=0)
            lines += [
                "",
                f"Paired differences to `{variants[0]}` (test, same seeds, raw 95% t interval; significance after "
                f"Holm's correction over these {family} comparisons):",
                "",
                *differences,
            ]
    return "\n".join(lines)


def _x(cell: Cell, axis: str) -> float | None:
    return cell.speedup if axis == "measured" else cell.predicted


def plot_cells(
    cells: Sequence[Cell],
    path: Path,
    *,
    title: str,
    fit: bool = False,
    metric: str = "accuracy",
    axis: str = "measured",
) -> Path:
    """Test metric (mean over seeds) against speedup, one colour per variant; with ``fit`` a least-squares line per
    variant (Figure 6). ``axis``: "measured" (padded to N, the paper's protocol) or "predicted" (the FLOPs model:
    the same for variants on one schedule, so their accuracies line up whatever the timing noise)."""

    figure = Figure(figsize=(6.0, 4.2))
    ax = figure.subplots()
    for index, variant in enumerate(dict.fromkeys(c.variant for c in cells)):
        points = [
            (_x(c, axis), c.summary().mean * SCALE) for c in cells if c.variant == variant and _x(c, axis) and c.test
        ]
        if not points:
            continue
        x, y = np.array(points).T
        color = f"C{index}"
        ax.scatter(x, y, color=color, s=22, label=variant, alpha=0.8)
        if fit and len(points) >= 2 and np.ptp(x) > 0:
            slope, intercept = np.polyfit(x, y, 1)
            grid = np.linspace(x.min(), x.max(), 20)
            ax.plot(grid, slope * grid + intercept, color=color, linewidth=1.2)
        elif not fit:
            order = np.argsort(x)
            ax.plot(x[order], y[order], color=color, linewidth=0.8, alpha=0.6)
    ax.set_xlabel(
        "measured speedup (X, both padded to N)" if axis == "measured" else "predicted speedup (X, FLOPs model)"
    )
    ax.set_ylabel(f"test {metric} (x100, mean over seeds)")
    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=9)
    ax.legend(fontsize=8)
    figure.tight_layout()

    return save_figure(figure, path)


def fit_lines(cells: Sequence[Cell]) -> dict[str, tuple[float, float, float, float]]:
    """Per variant: slope and intercept of test x 100 against speedup, and the speedup range (min, max)."""
    fits = {}
    for variant in dict.fromkeys(c.variant for c in cells):
        points = [(c.speedup, c.summary().mean * SCALE) for c in cells if c.variant == variant and c.speedup and c.test]
        if len(points) >= 2:
            x, y = np.array(points).T
            if np.ptp(x) > 0:
                slope, intercept = np.polyfit(x, y, 1)
                fits[variant] = (float(slope), float(intercept), float(x.min()), float(x.max()))
    return fits


def write_ablation(cells: Sequence[Cell], out: Path, *, name: str, heading: str, how: str, fit: bool = False,
                   metric: str = "accuracy", axis: str = "measured") -> dict[str, Path]:  # fmt: skip
    """Write ``<name>.csv``, ``<name>.png`` and ``<name>.md`` into ``out``."""
    files = {"table": out / f"{name}.csv", "figure": out / f"{name}.png", "section": out / f"{name}.md"}
    write_csv_atomic(files["table"], cell_rows(cells))
    plot_cells(cells, files["figure"], title=heading, fit=fit, metric=metric, axis=axis)
    lines = [f"## {heading}", "", how, "", markdown_table(cells), ""]
    if fit:
        lines += ["Linear fits (test x 100 = slope * speedup + intercept, over the family's speedup range):", ""]
        lines += [f"- {v}: slope {s:+.2f}, intercept {i:.1f}, speedups {lo:.2f}-{hi:.2f}X"
                  for v, (s, i, lo, hi) in fit_lines(cells).items()]  # fmt: skip
        lines.append("")
    lines += [f"- {key}: `{path}`" for key, path in files.items()] + [""]
    atomic_write_text(files["section"], "\n".join(lines))
    return files


def _difference_text(difference: PairedDifference | None) -> str:
    """``+1.2 [+0.3, +2.1]: `` (the raw interval), or nothing without a difference."""
    if difference is None:
        return ""
    interval = "" if difference.low is None else f" [{difference.low * SCALE:+.1f}, {difference.high * SCALE:+.1f}]"
    return f"{difference.mean * SCALE:+.1f}{interval}: "
