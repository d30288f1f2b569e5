"""The results tables: every method at 1.5X, 2X and 3X measured speedup, with intervals and paired tests.

Per task and target, one row per method column (and dense; CS+ and 1st+merge when the store has them): the test
metric as mean and 95% t interval over seeds, the paired difference to dense and to the best baseline (each with its
interval) and, in words, whether it is significant (:mod:`pyramid_bert.report.stats`); and where the cell lies on
the measured speed axis: the measured speedups (with their intervals) of the two configurations it is interpolated
between, and whether one of them is within 15% of the target ("measured near") or not ("interpolated"). The *best baseline* at a target is
the baseline column (1st-I, 1st, Rand, Pool, Att) with the best mean **dev** metric there, preferring
cells between two measured configurations; differences are reported on **test**.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from dataclasses import dataclass

from pyramid_bert.report.aggregate import NEAR_TOLERANCE, Cell, ConfigPoint, TaskResult, shown_columns
from pyramid_bert.report.stats import PairedDifference, holm, mean_ci, paired_difference, verdict

#: The targets of the results tables (measured speedup, on the report's speed axis).
RESULT_TARGETS = (1.5, 2.0, 3.0)
#: Columns that are baselines (the paper's five); the best of them is compared with every method.
BASELINE_COLUMNS = ("1st-I", "1st", "Rand", "Pool", "Att")
SCALE = 100.0
FROM_DENSE_MARK = "‡"
OUT_OF_RANGE = "–"


@dataclass(frozen=True)
class ResultRow:
    """One method at one target: its cell, and its paired differences to dense and to the best baseline."""

    column: str
    cell: Cell | None
    vs_dense: PairedDifference | None
    vs_best: PairedDifference | None


def _cell_mean_dev(cell: Cell) -> float:
    return sum(cell.dev.values()) / len(cell.dev) if cell.dev else float("-inf")


def best_baseline(result: TaskResult, target: float) -> str | None:
    """The baseline column with the best mean dev metric at ``target`` (cells not built from dense first)."""
    cells = {c: result.cell(c, "speedup", target) for c in BASELINE_COLUMNS if result.has_points(c)}
    cells = {c: cell for c, cell in cells.items() if cell is not None and cell.dev}
    measured = {c: cell for c, cell in cells.items() if not cell.from_dense} or cells
    return max(measured, key=lambda c: _cell_mean_dev(measured[c])) if measured else None


def result_rows(result: TaskResult, target: float) -> tuple[list[ResultRow], str | None]:
    """The rows of one task at one target, and the name of the best baseline there."""
    dense = result.cell("dense", "speedup", target)
    best = best_baseline(result, target)
    best_cell = result.cell(best, "speedup", target) if best else None
    rows = []
    for column in shown_columns([result]):
        cell = result.cell(column, "speedup", target)
        vs_dense = vs_best = None
        if cell is not None and column != "dense":
            vs_dense = paired_difference(cell.test, dense.test) if dense is not None else None
            if best_cell is not None and column != best:
                vs_best = paired_difference(cell.test, best_cell.test)
        rows.append(ResultRow(column, cell, vs_dense, vs_best))
    return _holm_within_table(rows), best


def _holm_within_table(rows: list[ResultRow]) -> list[ResultRow]:
    """The table's tested differences (cells interpolated from dense are not tested) Holm-adjusted as one family."""
    tested = [index for index, row in enumerate(rows) if row.cell is not None and not row.cell.from_dense]
    adjusted = iter(holm([diff for index in tested for diff in (rows[index].vs_dense, rows[index].vs_best)]))
    rows = list(rows)
    for index in tested:
        rows[index] = dataclasses.replace(rows[index], vs_dense=next(adjusted), vs_best=next(adjusted))
    return rows


def _interval(cell: Cell) -> str:
    summary = mean_ci(list(cell.test.values())) if cell.test else None
    if summary is None:
        return f"{cell.mean * SCALE:.1f}"
    if summary.low is None:
        return f"{summary.mean * SCALE:.1f} (one seed)"
    return f"{summary.mean * SCALE:.1f} [{summary.low * SCALE:.1f}, {summary.high * SCALE:.1f}]"


def _difference(diff: PairedDifference | None) -> str:
    if diff is None:
        return ""
    if diff.low is None:
        return f"{diff.mean * SCALE:+.1f}"
    return f"{diff.mean * SCALE:+.1f} [{diff.low * SCALE:+.1f}, {diff.high * SCALE:+.1f}]"


def _verdict(row: ResultRow, diff: PairedDifference | None, other: str) -> str:
    if row.cell is not None and row.cell.from_dense:
        return f"not tested: interpolated from dense at 1.0X ({FROM_DENSE_MARK})"
    return verdict(diff, other=other)


def _support(result: TaskResult, row: ResultRow) -> str:
    if row.column == "dense":
        share = result.dense.label_majority_share if result.dense is not None else None
        return "" if share is None else f"majority-class rate of test: {share * SCALE:.1f}"
    if row.cell is None or row.cell.ends is None:
        return ""
    first, second = row.cell.ends
    ends = [end for end in ((first,) if first is second else (first, second)) if end.method != "dense"]
    text = " – ".join(point_speed(end) for end in ends)
    text += f" {FROM_DENSE_MARK} dense at 1.0X" if row.cell.from_dense else ""
    return f"{text}; {'measured near' if row.cell.near else f'interpolated (none within {NEAR_TOLERANCE:.0%})'}"


def point_speed(point: ConfigPoint) -> str:
    """A configuration's measured speedup with its interval: ``2.95X [2.90, 3.01]`` (the timing pass's range of
    paired ratios), ``2.42X (IQR 2.41-2.44, one seed)`` (timed in its trial), ``1.00X (dense)``."""
    if point.method == "dense":
        return "1.00X (dense)"
    text = f"{point.mean('speedup'):.2f}X"
    interval = point.speed_interval
    if interval is None:
        return text
    low, high = interval
    return text + (f" [{low:.2f}, {high:.2f}]" if point.speed_source == "pass" else f" (IQR {low:.2f}-{high:.2f}, one seed)")


def results_markdown(result: TaskResult, target: float) -> str:
    """The Markdown table of one task at one target."""
    rows, best = result_rows(result, target)
    header = ["method", "test (95% CI)", "seeds", "Δ vs dense [95% CI]", "vs dense",
              f"Δ vs best baseline ({best or 'none'}) [95% CI]", "vs best baseline",
              "between (measured speedup [interval])"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if not result.has_points(row.column):
            cells = ["n/a"] + [""] * 6
        elif row.cell is None:
            cells = [OUT_OF_RANGE, "", "", "", "", "", "outside the measured range (not extrapolated)"]
        else:
            dense_words = "" if row.column == "dense" else _verdict(row, row.vs_dense, "dense")
            best_words = "(best baseline)" if row.column == best else ("" if row.vs_best is None else
                                                                      _verdict(row, row.vs_best, best))  # fmt: skip
            cells = [_interval(row.cell), str(row.cell.seeds), _difference(row.vs_dense), dense_words,
                     _difference(row.vs_best), best_words, _support(result, row)]  # fmt: skip
        lines.append("| " + " | ".join([row.column, *cells]) + " |")
    return "\n".join(lines)


def significance_lines(result: TaskResult, target: float) -> list[str]:
    """The significant differences at ``target`` in words (one line each; one line saying none)."""
    rows, best = result_rows(result, target)
    if all(row.cell is None or row.cell.seeds < 2 for row in rows):
        return [f"At {target:g}X no cell has two seeds: no significance test."]
    lines, family = [], 0
    for row in rows:
        if row.cell is not None and row.cell.from_dense:
            lines.append(f"{row.column} ({FROM_DENSE_MARK}): interpolated from dense at 1.0X, not tested.")
            continue
        for diff, other in ((row.vs_dense, "dense"), (row.vs_best, best)):
            family = max(family, diff.family if diff is not None and diff.p_value is not None else 0)
            if diff is not None and diff.significant:
                lines.append(f"{row.column} is {verdict(diff, other=other)}.")
    if not any("significantly" in line for line in lines):
        lines.append(f"No difference at {target:g}X is significant at the 95% level (Holm over {family} comparisons).")
    far = [row.column for row in rows if row.cell is not None and row.cell.ends is not None and not row.cell.near
           and not row.cell.from_dense]  # fmt: skip
    if far:
        lines.append(f"Interpolated with no measured configuration within {NEAR_TOLERANCE:.0%} of {target:g}X: "
                     f"{', '.join(far)}.")  # fmt: skip
    return lines


def results_csv(results: Sequence[TaskResult], targets: Sequence[float] = RESULT_TARGETS) -> str:
    """Every (task, target, method) row as CSV: mean, interval, seeds, differences, p values, support."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task", "target", "method", "test_mean", "test_ci_low", "test_ci_high", "seeds",
                     "diff_vs_dense", "diff_vs_dense_low", "diff_vs_dense_high", "p_vs_dense", "p_holm_vs_dense",
                     "best_baseline", "diff_vs_best", "diff_vs_best_low", "diff_vs_best_high", "p_vs_best",
                     "p_holm_vs_best", "holm_family", "support_low", "support_high", "from_dense", "near",
                     "support_low_interval", "support_high_interval", "speed_source"])  # fmt: skip
    for result in results:
        for target in targets:
            rows, best = result_rows(result, target)
            for row in rows:
                writer.writerow([result.task, target, row.column, *_csv_cell(row.cell),
                                 *_csv_diff(row.vs_dense), best or "", *_csv_diff(row.vs_best),
                                 _family(row),
                                 *(_pct(x, 4) for x in (row.cell.support if row.cell and row.cell.support else
                                                       (None, None))),
                                 "" if row.cell is None else int(row.cell.from_dense),
                                 *_csv_speed(row.cell)])  # fmt: skip
    return buffer.getvalue()


def _csv_speed(cell: Cell | None) -> list[object]:
    """near (0/1), each end's speed interval as "low;high", and where the speeds were measured."""
    if cell is None or cell.ends is None:
        return ["", "", "", ""]
    intervals = [";".join(f"{v:.4f}" for v in end.speed_interval) if end.speed_interval else "" for end in cell.ends]
    sources = sorted({end.speed_source for end in cell.ends if end.speed_source})
    return [int(cell.near), *intervals, "+".join(sources)]


def _pct(value: float | None, digits: int = 4, scale: float = 1.0) -> object:
    return "" if value is None else round(value * scale, digits)


def _csv_cell(cell: Cell | None) -> list[object]:
    if cell is None or not cell.test:
        return ["", "", "", "" if cell is None else cell.seeds]
    summary = mean_ci(list(cell.test.values()))
    return [_pct(summary.mean, scale=SCALE), _pct(summary.low, scale=SCALE), _pct(summary.high, scale=SCALE), cell.seeds]


def _csv_diff(diff: PairedDifference | None) -> list[object]:
    if diff is None:
        return ["", "", "", "", ""]
    return [_pct(diff.mean, scale=SCALE), _pct(diff.low, scale=SCALE), _pct(diff.high, scale=SCALE),
            _pct(diff.p_value, 6), _pct(diff.p_adjusted, 6)]  # fmt: skip


def _family(row: ResultRow) -> object:
    """How many comparisons the row's table corrected together (empty when none was tested)."""
    families = [diff.family for diff in (row.vs_dense, row.vs_best) if diff is not None and diff.p_adjusted is not None]
    return max(families) if families else ""


AXIS_WORDS = {
    "sorted": "against the dense model on length-sorted, dynamically padded batches (as users batch it)",
    "padded": "against the dense model with both padded to the task's N (the paper's protocol)",
}


def results_section(results: Sequence[TaskResult], speed_axis: str, targets: Sequence[float] = RESULT_TARGETS) -> str:
    """The report's main section: per task and target the results table and its significant differences."""
    lines = [
        f"Speed axis: **{speed_axis}**, measured speedup {AXIS_WORDS[speed_axis]}. Test metric x 100: mean and "
        "95% Student-t interval over seeds; Δ: paired difference over the same seeds, with its 95% t interval "
        "(significant when its Holm-adjusted p value is below 0.05, Holm over each table's tested comparisons, family size "
        "stated under it; the intervals are the raw ones). The best "
        "baseline is chosen on **dev** at each target, values are **test**. *between*: the measured speedups of "
        f"the two configurations the cell is interpolated between; `{FROM_DENSE_MARK}`: one of them is the dense "
        "model at 1.0X, not a measured pyramid configuration; *measured near*: one of them is within "
        f"{NEAR_TOLERANCE:.0%} of the target, *interpolated*: neither is. Speedup intervals: `[low, high]` is the "
        "lowest and highest of the paired per-repeat ratios of the separate timing pass (every configuration timed "
        "against the dense model with nothing else training, one thread, interleaved repeats; with n repeats a "
        "distribution-free interval for the median ratio of confidence 1 - 2^(1-n), 96.9% for 6); `(IQR ..., one "
        "seed)`: a store from before the pass, whose configurations were timed in one seed's trial while other trials "
        "trained. Constant predictors (more than 95% of **dev** "
        "predictions one class; test in stores recorded before dev shares were) are kept off every frontier and "
        "every dev-based choice.",
    ]
    for result in results:
        for target in targets:
            lines += ["", f"### At {target:g}X: {result.task}", "", results_markdown(result, target), ""]
            lines += [f"- {line}" for line in significance_lines(result, target)]
    return "\n".join(lines)


def flagged_lines(results: Sequence[TaskResult]) -> list[str]:
    """A Markdown table of the configurations flagged as constant predictors (or a line saying none)."""
    rows = []
    for result in results:
        for point in result.points:
            if point.flagged:
                shares = ", ".join(f"seed {s}: {v * SCALE:.1f}%" for s, v in sorted(point.majority_share.items()))
                rows.append(f"| {result.task} | {point.method} | {point.label} | {shares} ({point.flag_split}) |")
    if not rows:
        return ["None: no configuration predicts one class for more than 95% of the dev examples."]
    return ["| task | method | configuration | majority share of predictions (split) |", "|---|---|---|---|", *rows]
