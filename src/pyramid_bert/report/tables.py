"""Tables laid out like the paper's Tables 1-3: rows are tasks and their mean, columns the methods.

Cells are percentages (metric x 100), ``mean ± h`` over seeds, h the half width of the 95% t interval.
``–`` marks a target outside the measured range (never extrapolated, as in the paper's Table 11), ``n/a`` a method
without successful trials, ``‡`` a cell interpolated from the dense model at 1.0X (no measured configuration of
that method below the target), ``°`` a speedup cell interpolated between two configurations neither of which is
within 15% of the target (no measured point near it), and ``†`` a cell whose method had failed trials on that task
(a gap in the sweep). Columns CS+ and 1st+merge appear when the store has them.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pyramid_bert.report.aggregate import Cell, TaskResult, shown_columns
from pyramid_bert.report.paper_results import PAPER_TABLE_NAMES, PAPER_TASK_NAMES, paper_row

SCALE = 100.0
OUT_OF_RANGE = "–"
NO_TRIALS = "n/a"
FAILED_MARK = "†"
FROM_DENSE_MARK = "‡"
FAR_MARK = "°"


@dataclass(frozen=True)
class TableTarget:
    """A table: the metric at ``target`` on ``axis`` ("speedup": X-fold, "space": fraction reduced)."""

    axis: str
    target: float

    @property
    def title(self) -> str:
        if self.axis == "speedup":
            return f"Test metric at {self.target:g}X measured inference speedup"
        return f"Test metric at {self.target * 100:g}% attention-space reduction (the paper's formula)"

    @property
    def slug(self) -> str:
        return f"speedup_{self.target:g}x" if self.axis == "speedup" else f"space_{self.target * 100:g}pct"


#: The report's tables, in the order they appear (3X and 1.5X first: the paper's Tables 1 and 2).
TABLE_TARGETS = (
    TableTarget("speedup", 3.0),
    TableTarget("speedup", 1.5),
    TableTarget("speedup", 2.0),
    TableTarget("speedup", 3.5),
    TableTarget("space", 0.7),
    TableTarget("space", 0.3),
)


def _format_cell(cell: Cell | None, *, has_points: bool, failed: int) -> str:
    if not has_points:
        text = NO_TRIALS
    elif cell is None:
        text = OUT_OF_RANGE
    else:
        text = f"{cell.mean * SCALE:.1f}"
    if cell is not None and cell.std is not None:
        text += f" ± {cell.ci.half_width * SCALE:.1f}"
    if cell is not None and cell.from_dense:
        text += FROM_DENSE_MARK
    elif cell is not None and cell.target is not None and not cell.near:
        text += FAR_MARK
    return text + (FAILED_MARK if failed else "")


def column_means(results: Sequence[TaskResult], target: TableTarget) -> dict[str, tuple[float, int] | None]:
    """Per column, the mean over tasks that have a value, and how many tasks that is."""
    means: dict[str, tuple[float, int] | None] = {}
    for column in shown_columns(results):
        values = [cell.mean for r in results if (cell := r.cell(column, target.axis, target.target)) is not None]
        means[column] = (statistics.fmean(values), len(values)) if values else None
    return means


def markdown_table(results: Sequence[TaskResult], target: TableTarget, *, with_paper: bool = True) -> str:
    """One Markdown table; the paper's row (BERT-base) follows each GLUE task of the same name."""
    columns = shown_columns(results)
    header = ["task", "metric", *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        cells = [
            _format_cell(
                result.cell(column, target.axis, target.target),
                has_points=result.has_points(column),
                failed=result.failed(column),
            )
            for column in columns
        ]
        lines.append("| " + " | ".join([result.task, result.metric_name or "?", *cells]) + " |")
        paper = paper_row(result.task, target.axis, target.target) if with_paper else None
        if paper is not None:
            paper_cells = [OUT_OF_RANGE if paper.get(c) is None else f"{paper[c]:.1f}" for c in columns]
            name = (
                f"{PAPER_TASK_NAMES[result.task]} (paper, BERT-base, {PAPER_TABLE_NAMES[(target.axis, target.target)]})"
            )
            lines.append("| " + " | ".join([f"*{name}*", "", *[f"*{c}*" for c in paper_cells]]) + " |")
    means = column_means(results, target)
    mean_cells = []
    for column in columns:
        entry = means[column]
        if entry is None:
            mean_cells.append(OUT_OF_RANGE if any(r.has_points(column) for r in results) else NO_TRIALS)
        else:
            value, count = entry
            mean_cells.append(f"{value * SCALE:.1f}" + (f" ({count}/{len(results)})" if count < len(results) else ""))
    lines.append("| " + " | ".join(["**mean**", "", *mean_cells]) + " |")
    return "\n".join(lines)


def csv_table(results: Sequence[TaskResult], target: TableTarget) -> str:
    """The same table as CSV: per column its mean, std and seed count (percent; empty when no value)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = shown_columns(results)
    header = ["task", "metric"]
    for column in columns:
        header += [column, f"{column}_std", f"{column}_ci95", f"{column}_seeds", f"{column}_failed",
                   f"{column}_from_dense"]  # fmt: skip
    header += [f"paper_{column}" for column in columns]
    writer.writerow(header)
    for result in results:
        row: list[object] = [result.task, result.metric_name or ""]
        for column in columns:
            cell = result.cell(column, target.axis, target.target)
            row += [
                "" if cell is None else round(cell.mean * SCALE, 4),
                "" if cell is None or cell.std is None else round(cell.std * SCALE, 4),
                "" if cell is None or cell.std is None else round(cell.ci.half_width * SCALE, 4),
                "" if cell is None else cell.seeds,
                result.failed(column),
                "" if cell is None else int(cell.from_dense),
            ]
        paper = paper_row(result.task, target.axis, target.target)
        row += ["" if paper is None or paper.get(c) is None else paper[c] for c in columns]
        writer.writerow(row)
    means = column_means(results, target)
    row = ["mean", ""]
    for column in columns:
        entry = means[column]
        row += ["" if entry is None else round(entry[0] * SCALE, 4), "", "", "" if entry is None else entry[1], "", ""]
    writer.writerow(row + [""] * len(columns))
    return buffer.getvalue()
